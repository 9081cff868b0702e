"""The calculator parses model text quietly: Python's SyntaxWarnings are not the user's concern."""

from __future__ import annotations

import warnings

import pytest

from hone.envs._calculator import evaluate_expression


def test_typos_raise_value_error_without_syntax_warnings() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="unsupported syntax"):
            evaluate_expression("2or 3")  # parses (with a SyntaxWarning), then is refused
    assert not [w for w in caught if issubclass(w.category, SyntaxWarning)]
