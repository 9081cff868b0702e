"""Tool calls out of generated text, for backends that generate raw text (local HF models).

The Hermes/Qwen convention: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
after the assistant's text. Other template families plug in as another `ToolCallParser`.
Nothing the model wrote is lost: malformed calls become `ToolCall`s with `parse_error`
and the exact text in `arguments_raw`.
"""

from __future__ import annotations

import json
import re
from typing import Protocol

from hone.core import ToolCall


class ToolCallParser(Protocol):
    """Splits generated text into the assistant's content and its tool calls."""

    def __call__(self, text: str) -> tuple[str | None, list[ToolCall]]: ...


_HERMES = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


def parse_hermes(text: str) -> tuple[str | None, list[ToolCall]]:
    """Parse `<tool_call>{json}</tool_call>` blocks; content is the text before the first."""
    start = text.find("<tool_call>")
    if start < 0:
        return (text.strip() or None), []
    content = text[:start].strip() or None
    calls: list[ToolCall] = []
    for i, match in enumerate(_HERMES.finditer(text, start)):
        raw = match.group(1).strip()
        closed = match.group(0).endswith("</tool_call>")
        calls.append(_hermes_call(raw, i, closed))
    return content, calls


def _hermes_call(raw: str, index: int, closed: bool) -> ToolCall:
    call_id = f"call_{index}"
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON in <tool_call>: {exc}" + ("" if closed else " (no closing </tool_call>)")
        return ToolCall(id=call_id, name=_guess_name(raw), arguments_raw=raw, parse_error=problem)
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return ToolCall(id=call_id, name=_guess_name(raw), arguments_raw=raw, parse_error="tool call has no 'name'")
    args = obj.get("arguments", {})
    if isinstance(args, str):  # some models double-encode the arguments
        try:
            args = json.loads(args)
        except json.JSONDecodeError as exc:
            return ToolCall(id=call_id, name=obj["name"], arguments_raw=args, parse_error=f"invalid JSON: {exc}")
    if not isinstance(args, dict):
        return ToolCall(
            id=call_id, name=obj["name"], arguments_raw=json.dumps(args), parse_error="arguments are not an object"
        )
    return ToolCall(
        id=call_id, name=obj["name"], arguments=args, arguments_raw=_exact_arguments(raw) or json.dumps(args)
    )


_ARGS_KEY = re.compile(r'"arguments"\s*:\s*')


def _exact_arguments(raw: str) -> str | None:
    """The arguments object exactly as the model wrote it (spacing included)."""
    match = _ARGS_KEY.search(raw)
    if match is None:
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(raw, match.end())
    except json.JSONDecodeError:
        return None
    return raw[match.end() : end]


def _guess_name(raw: str) -> str:
    match = re.search(r'"name"\s*:\s*"([^"]*)"', raw)
    return match.group(1) if match else ""


PARSERS: dict[str, ToolCallParser] = {"hermes": parse_hermes}
