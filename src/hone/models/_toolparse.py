"""Tool calls out of generated text, for backends that generate raw text (local HF models).

One parser per tool-call format (`hone.models._toolformats` picks the format of a model):
Hermes/Qwen `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (also hone's
fallback format), Llama 3.x JSON `{"name": ..., "parameters": {...}}` (after an optional
`<|python_tag|>`), and Mistral `[TOOL_CALLS]` (a JSON list in v2/v3 tokenizers,
`name[ARGS]{...}` or `name[CALL_ID]id[ARGS]{...}` in v11+). Nothing the model wrote is lost:
malformed calls become `ToolCall`s with `parse_error` and the exact text in `arguments_raw`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

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
        calls.append(json_call(raw, f"call_{i}", "<tool_call>", "" if closed else " (no closing </tool_call>)"))
    return content, calls


def json_call(
    raw: str, call_id: str, where: str, note: str = "", *, keys: tuple[str, ...] = ("arguments",)
) -> ToolCall:
    """One `{"name": ..., <key>: {...}}` call; `keys` are the accepted names of the arguments field."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON in {where}: {exc}{note}"
        return ToolCall(id=call_id, name=_guess_name(raw), arguments_raw=raw, parse_error=problem)
    return object_call(obj, raw, call_id, keys)


def object_call(obj: Any, raw: str, call_id: str, keys: tuple[str, ...] = ("arguments",)) -> ToolCall:
    """A decoded call object as a `ToolCall` (arguments kept exactly as written when they parse)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return ToolCall(id=call_id, name=_guess_name(raw), arguments_raw=raw, parse_error="tool call has no 'name'")
    key = next((k for k in keys if k in obj), keys[0])
    return arguments_call(obj["name"], obj.get(key, {}), call_id, _exact_field(raw, key))


def arguments_call(name: str, args: Any, call_id: str, exact: str | None) -> ToolCall:
    """A call of `name` with decoded `args`; `exact` is the arguments' text as the model wrote it."""
    if isinstance(args, str):  # some models double-encode the arguments
        try:
            args = json.loads(args)
        except json.JSONDecodeError as exc:
            return ToolCall(id=call_id, name=name, arguments_raw=args, parse_error=f"invalid JSON: {exc}")
    if not isinstance(args, dict):
        return ToolCall(
            id=call_id, name=name, arguments_raw=json.dumps(args), parse_error="arguments are not an object"
        )
    return ToolCall(id=call_id, name=name, arguments=args, arguments_raw=exact or json.dumps(args))


def _exact_field(raw: str, key: str) -> str | None:
    """The value of `key` exactly as the model wrote it (spacing included)."""
    match = re.search(rf'"{re.escape(key)}"\s*:\s*', raw)
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


PYTHON_TAG = "<|python_tag|>"


def parse_llama3_json(text: str) -> tuple[str | None, list[ToolCall]]:
    """Llama 3.x JSON calls: the whole message is `{"name": ..., "parameters": {...}}` (`;`-separated
    for several), optionally after `<|python_tag|>`. JSON that is not a call stays content."""
    body = text.strip()
    tagged = body.startswith(PYTHON_TAG)
    if tagged:
        body = body[len(PYTHON_TAG) :].lstrip()
    if not body.startswith("{"):
        return (text.strip() or None), []
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    pos = 0
    while pos < len(body):
        try:
            obj, end = decoder.raw_decode(body, pos)
        except json.JSONDecodeError as exc:
            if not calls and not tagged and '"name"' not in body:
                return body, []  # prose that opens with a brace
            raw = body[pos:].strip()
            problem = f"invalid JSON in a Llama 3 tool call: {exc}"
            calls.append(
                ToolCall(id=f"call_{len(calls)}", name=_guess_name(raw), arguments_raw=raw, parse_error=problem)
            )
            break
        raw = body[pos:end]
        if not calls and not tagged and not (isinstance(obj, dict) and "name" in obj):
            return body, []  # a JSON answer, not a call
        calls.append(object_call(obj, raw, f"call_{len(calls)}", ("parameters", "arguments")))
        rest = body[end:].lstrip()
        if not rest:
            break
        if not rest.startswith(";"):
            raw = rest.strip()
            problem = "text after a Llama 3 tool call (several calls are separated by ';')"
            calls.append(
                ToolCall(id=f"call_{len(calls)}", name=_guess_name(raw), arguments_raw=raw, parse_error=problem)
            )
            break
        pos = len(body) - len(rest) + 1
        while pos < len(body) and body[pos].isspace():
            pos += 1
    return None, calls


TOOL_CALLS = "[TOOL_CALLS]"
_MISTRAL_NAMED = re.compile(r"\s*([A-Za-z0-9_.\-]+)(?:\[CALL_ID\]([A-Za-z0-9]+))?\[ARGS\]", re.DOTALL)


def parse_mistral(text: str) -> tuple[str | None, list[ToolCall]]:
    """Mistral `[TOOL_CALLS]`: a JSON list of `{"name", "arguments"[, "id"]}` (v2/v3 tokenizers) or
    one `name[ARGS]{json}` / `name[CALL_ID]id[ARGS]{json}` per `[TOOL_CALLS]` (v11+).
    A model's own 9-character call id is kept (the next turn must render it back)."""
    start = text.find(TOOL_CALLS)
    if start < 0:
        return (text.strip() or None), []
    content = text[:start].strip() or None
    calls: list[ToolCall] = []
    for chunk in text[start:].split(TOOL_CALLS)[1:]:
        named = _MISTRAL_NAMED.match(chunk)
        if named is not None:
            calls.append(_mistral_named(chunk[named.end() :].strip(), named.group(1), named.group(2), len(calls)))
        else:
            calls.extend(_mistral_list(chunk.strip(), len(calls)))
    return content, calls


def _mistral_named(raw: str, name: str, given_id: str | None, index: int) -> ToolCall:
    call_id = given_id or f"call_{index}"
    try:
        args, end = json.JSONDecoder().raw_decode(raw)
    except json.JSONDecodeError as exc:
        return ToolCall(id=call_id, name=name, arguments_raw=raw, parse_error=f"invalid JSON in [ARGS]: {exc}")
    return arguments_call(name, args, call_id, raw[:end] if isinstance(args, dict) else None)


def _mistral_list(raw: str, first: int) -> list[ToolCall]:
    try:
        obj, _ = json.JSONDecoder().raw_decode(raw)
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON after [TOOL_CALLS]: {exc}"
        return [ToolCall(id=f"call_{first}", name=_guess_name(raw), arguments_raw=raw, parse_error=problem)]
    items = obj if isinstance(obj, list) else [obj]
    calls: list[ToolCall] = []
    for item in items:
        index = first + len(calls)
        item_raw = json.dumps(item) if len(items) > 1 else raw
        call = object_call(item, item_raw, f"call_{index}")
        given = item.get("id") if isinstance(item, dict) else None
        calls.append(call.model_copy(update={"id": given}) if isinstance(given, str) and given else call)
    return calls


PARSERS: dict[str, ToolCallParser] = {
    "hermes": parse_hermes,
    "llama3_json": parse_llama3_json,
    "mistral": parse_mistral,
    "fallback": parse_hermes,
}
"""The parser of each tool format, by format name."""
