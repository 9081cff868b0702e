"""Replies: a model's `ModelCall`s vetted into choices, then written as a `chat.completion` body.

`vet` is where hone serve keeps its promises to clients (see `create_app`): a reply never
carries a tool call that was not offered, is truncated, has no name or has arguments that
are not a JSON object; such a generation goes back as plain content, with finish reason
"length" when truncated and "stop" otherwise.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from hone.core import Message, ModelCall, ToolCall

from ._protocol import ChatRequest, RequestError

INVALID_OUTPUT = "invalid_model_output"
_JSON_STARTS = 64  # candidate '{' positions tried for response_format json_object


@dataclass
class Choice:
    """One vetted choice: what the client gets for one generated sample."""

    index: int
    call: ModelCall
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"


def vet(
    call: ModelCall, request: ChatRequest, index: int, offered: Collection[str], tokenizer: Any, eos_ids: Any
) -> Choice:
    """The choice for `call`, given the tool names the model was shown (`offered`).

    Raises `RequestError` (500, `invalid_model_output`, as OpenAI answers "The model produced
    invalid content") when a finished generation breaks what the request demands: no tool
    call under `tool_choice` "required" or a named function, no JSON object under
    `response_format` json_object. A truncated one goes back as it is, finish reason "length".
    """
    truncated = call.finish_reason == "length"
    calls = list(call.message.tool_calls or ())
    content = call.message.content
    if calls and (truncated or not all(_well_formed(tc, offered) for tc in calls)):
        content, calls = generated_text(call, tokenizer, eos_ids), []
    if calls:
        return Choice(index, call, content, _unique_ids(calls), "tool_calls")
    if truncated:
        return Choice(index, call, content, [], "length")
    if request.tool_choice == "required" or request.forced_tool is not None:
        wanted = "a tool" if request.forced_tool is None else f"the function {request.forced_tool!r}"
        raise RequestError(
            500,
            f"the model did not call {wanted} as tool_choice demands (choice {index}); hone serve does not "
            "constrain decoding, it checks the reply after generation",
            code=INVALID_OUTPUT,
        )
    if request.json_object:
        content = json_object_in(content or "", index)
    finish = "content_filter" if call.finish_reason == "content_filter" else "stop"
    return Choice(index, call, content, [], finish)


def _unique_ids(calls: list[ToolCall]) -> list[ToolCall]:
    """The calls with distinct ids (a client answers each call by its id): empty or repeated ids get `call_<i>`."""
    ids = [tc.id or f"call_{i}" for i, tc in enumerate(calls)]
    if len(set(ids)) < len(ids):
        ids = [f"call_{i}" for i in range(len(calls))]
    return [tc if tc.id == id_ else tc.model_copy(update={"id": id_}) for tc, id_ in zip(calls, ids, strict=True)]


def _well_formed(tc: ToolCall, offered: Collection[str]) -> bool:
    if not tc.name or tc.name not in offered or tc.parse_error is not None:
        return False
    if tc.arguments_raw is None:
        return True
    try:
        return isinstance(json.loads(tc.arguments_raw), dict)
    except (ValueError, RecursionError):
        return False


def generated_text(call: ModelCall, tokenizer: Any, eos_ids: Any = ()) -> str:
    """What the model wrote, tool-call markup included: its tokens decoded, else the calls as Hermes blocks."""
    ids = call.completion_token_ids
    decode = getattr(tokenizer, "decode", None)
    if ids and decode is not None:
        if call.finish_reason != "length" and ids[-1] in (eos_ids or ()):
            ids = ids[:-1]
        try:
            text = decode(ids)
        except Exception:  # a tokenizer that cannot decode these ids: write the calls out instead
            text = None
        if isinstance(text, str):
            return text
    return _as_hermes(call.message)


def _as_hermes(message: Message) -> str:
    parts = [message.content] if message.content else []
    for tc in message.tool_calls or ():
        arguments = tc.arguments_raw if tc.arguments_raw is not None else json.dumps(tc.arguments)
        parts.append(f'<tool_call>\n{{"name": {json.dumps(tc.name)}, "arguments": {arguments}}}\n</tool_call>')
    return "\n".join(parts)


def json_object_in(text: str, index: int = 0) -> str:
    """The first JSON object in `text`, as written (prose and code fences around it dropped)."""
    stripped = text.strip()
    decoder = json.JSONDecoder()
    start = stripped.find("{")
    for _ in range(_JSON_STARTS):
        if start < 0:
            break
        try:
            value, end = decoder.raw_decode(stripped, start)
        except (ValueError, RecursionError):
            value, end = None, start
        if isinstance(value, dict):
            return stripped[start:end]
        start = stripped.find("{", start + 1)
    raise RequestError(
        500,
        f"the model wrote no JSON object (choice {index}) although response_format is json_object; hone serve "
        "does not constrain decoding, it checks the reply after generation",
        code=INVALID_OUTPUT,
    )


def tool_call_out(tc: ToolCall, index: int) -> dict[str, Any]:
    """A vetted tool call in OpenAI's form; `arguments` is the model's exact JSON text."""
    arguments = tc.arguments_raw if tc.arguments_raw is not None else json.dumps(tc.arguments)
    return {"id": tc.id or f"call_{index}", "type": "function", "function": {"name": tc.name, "arguments": arguments}}


def usage(choices: Sequence[Choice]) -> dict[str, int]:
    """Usage over all choices: the prompt counted once (it is shared), completions summed."""
    prompt = choices[0].call.usage.prompt_tokens
    completion = sum(c.call.usage.completion_tokens for c in choices)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(
    choices: Sequence[Choice], request: ChatRequest, model_name: str, tokenizer: Any = None
) -> dict[str, Any]:
    """The `chat.completion` response.

    With `return_token_ids` it carries `prompt_token_ids` and each choice's `token_ids`
    (vLLM's fields); with `logprobs`, each choice's `logprobs.content`, whose `token` is
    `token_id:N` (and `bytes` null) when `return_tokens_as_token_ids` is set, else the
    token's text (decoded with `tokenizer` when the model has one). Fields the model cannot
    provide are null.
    """
    out = []
    for choice in choices:
        reply: dict[str, Any] = {"role": "assistant", "content": choice.content}
        if choice.tool_calls:
            reply["tool_calls"] = [tool_call_out(tc, i) for i, tc in enumerate(choice.tool_calls)]
        elif choice.content is None:
            reply["content"] = ""
        entry: dict[str, Any] = {
            "index": choice.index,
            "message": reply,
            "logprobs": logprobs(choice, request, tokenizer),
            "finish_reason": choice.finish_reason,
        }
        if request.return_token_ids:
            entry["token_ids"] = choice.call.completion_token_ids
        out.append(entry)
    body: dict[str, Any] = {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": out,
        "usage": usage(choices),
    }
    if request.return_token_ids:
        body["prompt_token_ids"] = choices[0].call.prompt_token_ids
    return body


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def logprobs(choice: Choice, request: ChatRequest, tokenizer: Any) -> dict[str, Any] | None:
    """The choice's `logprobs` object when asked for and available, else None."""
    call = choice.call
    if not request.logprobs or call.completion_logprobs is None:
        return None
    return {"content": _logprob_entries(call, bool(request.return_tokens_as_token_ids), tokenizer)}


def _logprob_entries(call: ModelCall, as_ids: bool, tokenizer: Any) -> list[dict[str, Any]]:
    # -inf (a token sampling could not have picked) is not JSON: OpenAI writes -9999.0 for it.
    logprobs = [lp if math.isfinite(lp) else -9999.0 for lp in call.completion_logprobs or []]
    ids = call.completion_token_ids
    if ids is None or len(ids) != len(logprobs):
        return [{"token": "", "logprob": lp, "bytes": None, "top_logprobs": []} for lp in logprobs]
    if as_ids:
        # No decoding: it would cost the server's event loop time for text the client ignores.
        return [
            {"token": f"token_id:{i}", "logprob": lp, "bytes": None, "top_logprobs": []}
            for i, lp in zip(ids, logprobs, strict=True)
        ]
    texts = {i: _decode(tokenizer, i) for i in set(ids)}
    entries = []
    for token_id, logprob in zip(ids, logprobs, strict=True):
        text = texts[token_id]
        entries.append(
            {
                "token": f"token_id:{token_id}" if text is None else text,
                "logprob": logprob,
                "bytes": None if text is None else list(text.encode(errors="replace")),
                "top_logprobs": [],
            }
        )
    return entries


def _decode(tokenizer: Any, token_id: int) -> str | None:
    decode = getattr(tokenizer, "decode", None)
    if decode is None:
        return None
    try:
        text = decode([token_id])
    except Exception:  # a tokenizer that cannot decode one id alone: fall back to the id
        return None
    return text if isinstance(text, str) else None


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; a lone surrogate a model wrote becomes '?' instead of failing the reply."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors="replace")


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    kind = {401: "authentication_error", 404: "not_found_error"}.get(status)
    if kind is None:
        kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
