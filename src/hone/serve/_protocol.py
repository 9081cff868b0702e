"""The chat-completions wire format: requests into hone's types, `ModelCall`s into responses.

Requests are validated with pydantic; anything hone cannot honour is refused with a 400
naming it (as OpenAI's API does) rather than silently ignored, so a client never gets a
reply produced under settings it did not ask for.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hone.core import Message, ModelCall, Sampling, ToolCall, ToolSpec


class RequestError(Exception):
    """A request hone serve cannot answer; becomes an OpenAI-style error body."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


class _Function(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    arguments: str | dict[str, Any] = ""  # a few clients send an object instead of a JSON string


class _ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    type: Literal["function"] = "function"
    function: _Function


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class _MessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_Part] | None = None
    name: str | None = None
    tool_calls: list[_ToolCallIn] | None = None
    tool_call_id: str | None = None


class _FunctionDef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class _ToolIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["function"]
    function: _FunctionDef


class ChatRequest(BaseModel):
    """The fields of a chat-completions request that hone serve understands (others are refused)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    messages: list[_MessageIn] = Field(min_length=1)
    tools: list[_ToolIn] | None = None
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    stream: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    # vLLM's extensions, so hone's OpenAICompatible gets token-exact data.
    return_token_ids: bool | None = None
    return_tokens_as_token_ids: bool | None = None
    # Accepted and ignored: they do not change what the model generates.
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    parallel_tool_calls: bool | None = None
    service_tier: str | None = None
    stream_options: dict[str, Any] | None = None


def parse_request(body: object) -> ChatRequest:
    """Validate a decoded JSON body; `RequestError` (400) says what is wrong."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    try:
        request = ChatRequest.model_validate(body)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    if request.stream:
        raise RequestError(400, "stream=true is not supported by hone serve; send stream=false", param="stream")
    if request.n not in (None, 1):
        raise RequestError(400, f"n={request.n} is not supported: hone serve returns one choice (n=1)", param="n")
    if request.top_logprobs:
        raise RequestError(400, "top_logprobs is not supported; ask logprobs=true alone", param="top_logprobs")
    if request.tool_choice not in (None, "auto"):
        raise RequestError(
            400, f"tool_choice={request.tool_choice!r} is not supported; use 'auto'", param="tool_choice"
        )
    return request


def _validation_error(exc: ValidationError) -> RequestError:
    problems: list[str] = []
    param: str | None = None
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"])
        param = param or where
        if error["type"] == "extra_forbidden":
            # OpenAI's wording, which hone's OpenAICompatible matches to turn optional features off.
            problems.append(f"Unrecognized request argument supplied: {where}")
        else:
            problems.append(f"{where or 'body'}: {error['msg']}")
    more = len(exc.errors()) - len(problems)
    return RequestError(400, "; ".join(problems) + (f" (and {more} more)" if more > 0 else ""), param=param)


def to_messages(request: ChatRequest) -> list[Message]:
    """The conversation as hone `Message`s (`developer` turns become `system` turns)."""
    out: list[Message] = []
    for i, m in enumerate(request.messages):
        role = "system" if m.role == "developer" else m.role
        calls = [_tool_call(tc) for tc in m.tool_calls or ()] if role == "assistant" else []
        out.append(
            Message(
                role=role,
                content=_text(m.content, i),
                tool_calls=calls or None,
                tool_call_id=m.tool_call_id if role == "tool" else None,
                name=m.name,
            )
        )
    return out


def _text(content: str | list[_Part] | None, index: int) -> str | None:
    if content is None or isinstance(content, str):
        return content
    for part in content:
        if part.type != "text" or part.text is None:
            raise RequestError(
                400, f"messages.{index}: only text content parts are supported, got {part.type!r}", param="messages"
            )
    return "".join(part.text or "" for part in content)


def _tool_call(data: _ToolCallIn) -> ToolCall:
    """A tool call of the history; arguments that are not a JSON object are kept raw, as written."""
    raw = data.function.arguments
    if isinstance(raw, dict):
        return ToolCall(id=data.id, name=data.function.name, arguments=raw, arguments_raw=json.dumps(raw))
    if not raw.strip():
        return ToolCall(id=data.id, name=data.function.name, arguments_raw=raw)
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        return ToolCall(id=data.id, name=data.function.name, arguments_raw=raw, parse_error=f"invalid JSON: {exc}")
    if not isinstance(parsed, dict):
        error = f"arguments must be a JSON object, got {type(parsed).__name__}"
        return ToolCall(id=data.id, name=data.function.name, arguments_raw=raw, parse_error=error)
    return ToolCall(id=data.id, name=data.function.name, arguments=parsed, arguments_raw=raw)


def to_tools(request: ChatRequest) -> list[ToolSpec] | None:
    """The `tools` as hone `ToolSpec`s (None when there are none)."""
    if not request.tools:
        return None
    specs = []
    for tool in request.tools:
        f = tool.function
        extra = {"parameters": f.parameters} if f.parameters is not None else {}
        specs.append(ToolSpec(name=f.name, description=f.description or "", **extra))
    return specs


def to_sampling(request: ChatRequest) -> Sampling:
    """Sampling parameters; OpenAI's defaults (temperature 1, top_p 1) where the request is silent."""
    stop = [request.stop] if isinstance(request.stop, str) else request.stop
    return Sampling(
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        max_tokens=request.max_completion_tokens or request.max_tokens,
        seed=request.seed,
        stop=stop or None,
        # Token ids come with logprobs in hone's ModelCall: ask for both when either is wanted.
        logprobs=bool(request.logprobs or request.return_token_ids),
    )


def completion_body(call: ModelCall, request: ChatRequest, model_name: str, tokenizer: Any = None) -> dict[str, Any]:
    """The `chat.completion` response for one `ModelCall`.

    With `return_token_ids` it carries `prompt_token_ids` and `choices[0].token_ids` (vLLM's
    fields); with `logprobs`, `choices[0].logprobs.content`, whose `token` is `token_id:N` (and
    `bytes` null) when `return_tokens_as_token_ids` is set, else the token's text (decoded
    with `tokenizer` when the model has one). Fields the model cannot provide are null.
    """
    message = call.message
    reply: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.tool_calls:
        reply["tool_calls"] = [_tool_call_out(tc, i) for i, tc in enumerate(message.tool_calls)]
    elif message.content is None:
        reply["content"] = ""
    choice: dict[str, Any] = {
        "index": 0,
        "message": reply,
        "logprobs": None,
        "finish_reason": _finish_reason(call),
    }
    if request.logprobs and call.completion_logprobs is not None:
        entries = _logprob_entries(call, bool(request.return_tokens_as_token_ids), tokenizer)
        choice["logprobs"] = {"content": entries}
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [choice],
        "usage": {
            "prompt_tokens": call.usage.prompt_tokens,
            "completion_tokens": call.usage.completion_tokens,
            "total_tokens": call.usage.total_tokens,
        },
    }
    if request.return_token_ids:
        choice["token_ids"] = call.completion_token_ids
        body["prompt_token_ids"] = call.prompt_token_ids
    return body


def _tool_call_out(tc: ToolCall, index: int) -> dict[str, Any]:
    # The model's exact text goes back, broken JSON included, as OpenAI itself does: the
    # client's parser then records what the model wrote.
    arguments = tc.arguments_raw if tc.arguments_raw is not None else json.dumps(tc.arguments)
    return {
        "id": tc.id or f"call_{index}",
        "type": "function",
        "function": {"name": tc.name, "arguments": arguments},
    }


def _finish_reason(call: ModelCall) -> str:
    reason = call.finish_reason
    if call.message.tool_calls and reason != "length":
        return "tool_calls"
    if reason is None or reason == "tool_calls":
        return "stop"
    return reason


def _logprob_entries(call: ModelCall, as_ids: bool, tokenizer: Any) -> list[dict[str, Any]]:
    logprobs = call.completion_logprobs or []
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
                "bytes": None if text is None else list(text.encode()),
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


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    kind = {401: "authentication_error", 404: "not_found_error"}.get(status)
    if kind is None:
        kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
