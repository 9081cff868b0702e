"""`create_app`: a FastAPI app serving any hone `ChatModel` over OpenAI's chat-completions protocol."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from hone.core import ContextOverflow, HoneError, Message, ModelCall, ToolSpec
from hone.models import ChatModel

from ._protocol import ChatRequest, RequestError, decode_body, parse_request, to_messages, to_sampling, to_tools
from ._reply import completion_body, dumps, error_body, vet
from ._stream import stream_events

log = logging.getLogger("hone.serve")

DEFAULT_MAX_BODY_MB = 16.0
# Bodies above this are decoded and validated in a worker thread: a thread hop costs more
# than parsing a normal request, but a multi-megabyte body would hold the event loop.
_INLINE_BYTES = 256 * 1024


@dataclass
class _Prepared:
    chat: ChatRequest
    messages: list[Message]
    tools: list[ToolSpec] | None


def create_app(model: ChatModel, model_name: str | None = None, *, max_body_mb: float = DEFAULT_MAX_BODY_MB) -> FastAPI:
    """An app serving `model` as `model_name` (default: `model.name`).

    Routes: `POST /v1/chat/completions` (`n` choices, `stream` as server-sent events,
    `tool_choice`, `response_format` json_object, native `tool_calls`, vLLM's
    `return_token_ids`), `GET /v1/models`, `GET /v1/models/{name}`, `GET /health`.
    Requests are answered concurrently, each choice by one `model.generate` call, so a
    backend that batches concurrent calls (`HFLocal`) serves batched.

    What a client can rely on: a `tool_calls` entry names a tool the model was shown and
    carries a JSON object as arguments; anything else the model wrote (a malformed,
    truncated or unoffered call) is the reply's plain content, finish reason "length" when
    truncated and "stop" otherwise. `tool_choice` "none" shows the model no tools; "required"
    or a named function makes a finished reply without such a call a 500 with code
    `invalid_model_output` (hone does not constrain decoding), as does a reply with no JSON
    object under `response_format` json_object, whose content is then that object.

    Errors are OpenAI-style JSON bodies: a body over `max_body_mb` is a 413 before it is
    parsed; a malformed or unsupported request a 400 naming the problem (404 for another
    model's name); a hone error raised by the model (a `ModelError` such as a prompt longer
    than the context) a 400 with its message; anything else a 500.
    """
    if not max_body_mb > 0:
        raise ValueError(f"max_body_mb must be positive, got {max_body_mb}")
    name = model_name or model.name
    limit = int(max_body_mb * 1024 * 1024)
    created = int(time.time())
    # Decodes logprob tokens to text; backends without one get `token_id:N` tokens.
    tokenizer = getattr(model, "tokenizer", None)
    generations = _generation_decoder(model, tokenizer)
    eos_ids = getattr(model, "eos_ids", ())
    card = {"id": name, "object": "model", "created": created, "owned_by": "hone"}
    app = FastAPI(title="hone serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # Unknown routes and methods get OpenAI-style bodies too.
        return _error(RequestError(exc.status_code, str(exc.detail)))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": name}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [card]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str) -> Response:
        if model_id != name:
            return _error(_unknown_model(model_id, name))
        return _json(card)

    def prepare(raw: bytes) -> _Prepared:
        chat = parse_request(decode_body(raw))
        if chat.model is not None and chat.model != name:
            raise _unknown_model(chat.model, name)
        try:
            return _Prepared(chat, to_messages(chat), to_tools(chat))
        except ValidationError as exc:  # hone's own types refusing a value the wire format allowed
            raise RequestError(400, f"the request cannot be represented: {exc.errors()[0]['msg']}") from None

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            raw = await _read_body(request, limit, max_body_mb)
            if len(raw) > _INLINE_BYTES:
                prepared = await anyio.to_thread.run_sync(prepare, raw)
            else:
                prepared = prepare(raw)
        except RequestError as exc:
            return _error(exc)
        chat, tools = prepared.chat, prepared.tools
        try:
            calls = await _generate(model, prepared)
            offered = {tool.name for tool in tools or ()}
            choices = [vet(call, chat, i, offered, generations, eos_ids) for i, call in enumerate(calls)]
        except RequestError as exc:
            return _error(exc)
        except ContextOverflow as exc:  # OpenAI's code, which clients (hone's included) recognise
            return _error(RequestError(400, str(exc), code="context_length_exceeded"))
        except HoneError as exc:
            return _error(RequestError(400, str(exc), code=_snake(exc.kind)))
        except Exception as exc:
            log.exception("hone serve: %s failed on a request", name)
            return _error(RequestError(500, f"the model failed: {type(exc).__name__}: {exc}", code="internal_error"))
        if chat.stream:
            events = b"".join(stream_events(choices, chat, name, tokenizer))
            return Response(events, media_type="text/event-stream", headers={"cache-control": "no-cache"})
        return _json(completion_body(choices, chat, name, tokenizer))

    return app


class _FormatDecoder:
    """Decodes a generation as the model's tool format does, which is the text its parser read: a
    Mistral SentencePiece tokenizer's own `decode` writes U+2581 for spaces around `[TOOL_CALLS]`."""

    def __init__(self, fmt: Any, tokenizer: Any) -> None:
        self.fmt, self.tokenizer = fmt, tokenizer

    def decode(self, ids: list[int]) -> str:
        return str(self.fmt.decode(self.tokenizer, ids))


def _generation_decoder(model: ChatModel, tokenizer: Any) -> Any:
    """What decodes raw generations (a malformed call goes back as the text the model wrote)."""
    fmt = getattr(model, "tool_format", None)
    if tokenizer is None or not callable(getattr(fmt, "decode", None)):
        return tokenizer
    return _FormatDecoder(fmt, tokenizer)


async def _generate(model: ChatModel, prepared: _Prepared) -> list[ModelCall]:
    """One `generate` per choice, concurrently (each its own sample)."""
    chat, messages, tools = prepared.chat, prepared.messages, prepared.tools
    if chat.choices == 1:
        return [await model.generate(messages, tools, to_sampling(chat))]
    return list(
        await asyncio.gather(*[model.generate(messages, tools, to_sampling(chat, i)) for i in range(chat.choices)])
    )


async def _read_body(request: Request, limit: int, limit_mb: float) -> bytes:
    """The body, refused with a 413 as soon as it is known to be over `limit` bytes (before parsing)."""
    too_large = RequestError(
        413,
        f"the request body is larger than {limit_mb:g} MB, this server's limit (--max-body-mb)",
        code="request_too_large",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a chunked body, or one longer than it declared
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _unknown_model(requested: str, name: str) -> RequestError:
    message = f"The model {requested!r} does not exist: this server serves {name!r} (see GET /v1/models)"
    return RequestError(404, message, code="model_not_found", param="model")


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json")


def _error(exc: RequestError) -> Response:
    return _json(error_body(exc.status, exc.message, exc.code, exc.param), exc.status)


def _snake(kind: str) -> str:
    """`ModelError` -> `model_error`: hone's error kinds as OpenAI-style codes."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()
