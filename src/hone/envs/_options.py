"""Option types the built-in environments' option models share (`tools`), checked by pydantic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator

from ._toolenv import BUILTIN_TOOLS
from ._tools import Tool

ToolName = Literal["calculator", "python", "python-session", "none", "no"]
"""A built-in tool (`BUILTIN_TOOLS`), or `none`/`no` for no tool."""


def _names(value: Any) -> Any:
    """`"calculator,python"` as a list; a sequence as it is."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _one_python(names: tuple[ToolName, ...]) -> tuple[ToolName, ...]:
    if "python" in names and "python-session" in names:
        raise ValueError("choose one python mode: tools=python (stateless) or tools=python-session")
    return names


Tools = Annotated[tuple[ToolName, ...], BeforeValidator(_names), AfterValidator(_one_python)]
"""The `tools` option: built-in tool names, as a list or one comma-separated text."""

ToolSpec = str | Sequence[str]
"""What a constructor's `tools` parameter takes: a name, `"calculator,python"`, or a list of names."""


def build_tools(names: Sequence[str]) -> list[Tool]:
    """Fresh instances of the built-in tools `names` (already checked by `Tools`)."""
    return [BUILTIN_TOOLS[n]() for n in names if n not in ("none", "no")]
