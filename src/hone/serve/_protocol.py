"""The chat-completions wire format: request bodies into hone's types.

Requests are validated with pydantic; anything hone cannot honour is refused with a 400
naming it (as OpenAI's API does) rather than silently ignored, so a client never gets a
reply produced under settings it did not ask for. Bodies are untrusted: JSON nested
deeper than `MAX_DEPTH`, lone UTF-16 surrogates and out-of-range numbers are 400s here,
before anything downstream (templates, tokenizers, seeds) could fail on them with a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hone.core import Message, Sampling, ToolCall, ToolSpec, duplicate_tool_name

MAX_DEPTH = 64  # JSON nesting; real tool schemas stay far below it
MAX_CHOICES = 128  # n, as OpenAI's limit
MAX_TOOLS = 128  # tools per request, as OpenAI's limit
_INT64 = 2**63


class RequestError(Exception):
    """A request hone serve cannot answer; becomes an OpenAI-style error body."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


# Strict: "2" is not an n and "yes" is not a stream flag (pydantic's lax mode would coerce them).
class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class _Function(_Lenient):
    name: str
    arguments: str | dict[str, Any] = ""  # a few clients send an object instead of a JSON string


class _ToolCallIn(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: _Function


class _Part(_Lenient):
    type: str
    text: str | None = None


class _MessageIn(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_Part] | None = None
    name: str | None = None
    tool_calls: list[_ToolCallIn] | None = None
    tool_call_id: str | None = None


class _FunctionDef(_Lenient):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class _ToolIn(_Lenient):
    type: Literal["function"]
    function: _FunctionDef


class _ChosenFunction(_Lenient):
    name: str


class _NamedChoice(_Lenient):
    type: Literal["function"]
    function: _ChosenFunction


class _ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"]


class _StreamOptions(_Lenient):
    include_usage: bool | None = None


class ChatRequest(BaseModel):
    """The fields of a chat-completions request that hone serve understands (others are refused)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = None
    messages: list[_MessageIn] = Field(min_length=1)
    tools: list[_ToolIn] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | _NamedChoice | None = None
    response_format: _ResponseFormat | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, lt=_INT64)
    max_completion_tokens: int | None = Field(default=None, ge=1, lt=_INT64)
    seed: int | None = Field(default=None, ge=-_INT64, lt=_INT64)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=MAX_CHOICES)
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
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

    @property
    def choices(self) -> int:
        """How many choices to generate (`n`, default 1)."""
        return self.n or 1

    @property
    def json_object(self) -> bool:
        """Whether the reply's content must be a JSON object."""
        return self.response_format is not None and self.response_format.type == "json_object"

    @property
    def forced_tool(self) -> str | None:
        """The tool named by `tool_choice` (None unless a function is named)."""
        return self.tool_choice.function.name if isinstance(self.tool_choice, _NamedChoice) else None


def decode_body(raw: bytes) -> object:
    """The JSON value of a request body; `RequestError` (400) for anything that is not safe JSON."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise RequestError(400, f"the request body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, oversized integer literals
        raise RequestError(400, f"the request body is not valid JSON: {exc}") from None
    # Nesting never exceeds the count of opening brackets: most bodies skip the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _too_deep(body):
        raise RequestError(400, f"the request body is nested deeper than {MAX_DEPTH} levels")
    # Escaped surrogates are the only way to put one in a str; emoji pairs also match, then pass.
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(body):
        raise RequestError(400, "the request body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text")
    return body


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _too_deep(value: object) -> bool:
    """Whether `value` nests lists/objects deeper than `MAX_DEPTH` (iterative: no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _has_lone_surrogate(value: object) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def parse_request(body: object) -> ChatRequest:
    """Validate a decoded JSON body; `RequestError` (400) says what is wrong."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    try:
        request = ChatRequest.model_validate(body)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    if request.top_logprobs:
        raise RequestError(400, "top_logprobs is not supported; ask logprobs=true alone", param="top_logprobs")
    if request.stream_options is not None and not request.stream:
        raise RequestError(400, "stream_options is only allowed with stream=true", param="stream_options")
    if request.response_format is not None and request.response_format.type == "json_schema":
        raise RequestError(
            400,
            "response_format json_schema is not supported: hone serve does not constrain decoding to a schema; "
            "use {'type': 'json_object'} (the reply's content is then a JSON object) and validate it yourself",
            param="response_format",
        )
    offered = [tool.function.name for tool in request.tools or ()]
    twice = duplicate_tool_name(offered)
    if twice is not None:
        raise RequestError(
            400, f"'tools' names the function {twice!r} twice; give every tool a distinct name", param="tools"
        )
    if request.tool_choice == "required" and not offered:
        raise RequestError(400, "tool_choice 'required' needs at least one tool in 'tools'", param="tool_choice")
    forced = request.forced_tool
    if forced is not None and forced not in offered:
        known = ", ".join(repr(name) for name in offered) or "none"
        message = f"tool_choice names the function {forced!r}, which is not in 'tools' (offered: {known})"
        raise RequestError(400, message, param="tool_choice")
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
        if part.type != "text":
            raise RequestError(
                400, f"messages.{index}: only text content parts are supported, got {part.type!r}", param="messages"
            )
        if part.text is None:
            raise RequestError(400, f"messages.{index}: a text content part has no 'text'", param="messages")
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
    except (ValueError, RecursionError) as exc:
        return ToolCall(id=data.id, name=data.function.name, arguments_raw=raw, parse_error=f"invalid JSON: {exc}")
    if not isinstance(parsed, dict):
        error = f"arguments must be a JSON object, got {type(parsed).__name__}"
        return ToolCall(id=data.id, name=data.function.name, arguments_raw=raw, parse_error=error)
    return ToolCall(id=data.id, name=data.function.name, arguments=parsed, arguments_raw=raw)


def to_tools(request: ChatRequest) -> list[ToolSpec] | None:
    """The tools the model is shown: none for `tool_choice="none"`, only the named one when one is named."""
    if not request.tools or request.tool_choice == "none":
        return None
    forced = request.forced_tool
    specs = []
    for tool in request.tools:
        f = tool.function
        if forced is not None and f.name != forced:
            continue
        extra = {"parameters": f.parameters} if f.parameters is not None else {}
        specs.append(ToolSpec(name=f.name, description=f.description or "", **extra))
    return specs


def to_sampling(request: ChatRequest, index: int = 0) -> Sampling:
    """Sampling for choice `index`; OpenAI's defaults (temperature 1, top_p 1) where the request is silent.

    With `n > 1` and a `seed`, choice `i` is sampled with `seed + i` (wrapped into int64), so
    the choices are distinct samples that a repeated request reproduces.
    """
    stop = [request.stop] if isinstance(request.stop, str) else request.stop
    seed = request.seed
    if seed is not None and index:
        seed = (seed + index + _INT64) % (2 * _INT64) - _INT64
    return Sampling(
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        max_tokens=request.max_completion_tokens or request.max_tokens,
        seed=seed,
        stop=stop or None,
        # Token ids come with logprobs in hone's ModelCall: ask for both when either is wanted.
        logprobs=bool(request.logprobs or request.return_token_ids),
    )
