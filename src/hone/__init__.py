"""hone: make LLM agents better from feedback.

import hone
result = hone.evaluate("arith", "openai-compatible:http://127.0.0.1:8000/v1:my-model", n=20, k=4)
print(result.summary.accuracy)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ._api import EvalResult, aevaluate, evaluate

__all__ = ["EvalResult", "__version__", "aevaluate", "evaluate"]


def __getattr__(name: str) -> Any:
    # Lazy: `import hone.core` must stay light (no openai/SQLAlchemy import).
    if name in ("EvalResult", "aevaluate", "evaluate"):
        from . import _api

        return getattr(_api, name)
    raise AttributeError(f"module 'hone' has no attribute {name!r}")
