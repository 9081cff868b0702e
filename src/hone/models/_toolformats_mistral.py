"""Mistral's `[TOOL_CALLS]` format, encoded by Mistral's own request encoder (`mistral-common`)."""

from __future__ import annotations

from typing import Any

from hone.core import ConfigError

from ._toolformat_base import ToolFormat


def mistral_format(tokenizer: Any, who: str) -> ToolFormat:
    """The Mistral format for `tokenizer` (not available yet)."""
    raise ConfigError(f"{who}: the Mistral tool format is not available yet")
