"""`create_app`: a FastAPI app serving any hone `ChatModel` over OpenAI's chat-completions protocol."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from hone.core import HoneError
from hone.models import ChatModel

from ._protocol import RequestError, completion_body, error_body, parse_request, to_messages, to_sampling, to_tools

log = logging.getLogger("hone.serve")


def create_app(model: ChatModel, model_name: str | None = None) -> FastAPI:
    """An app serving `model` as `model_name` (default: `model.name`).

    Routes: `POST /v1/chat/completions` (non-streaming, native `tool_calls`, vLLM's
    `return_token_ids`), `GET /v1/models`, `GET /v1/models/{name}`, `GET /health`.
    Requests are answered concurrently, each by one `model.generate` call, so a backend
    that batches concurrent calls (`HFLocal`) serves batched. Errors are OpenAI-style JSON
    bodies: a malformed or unsupported request is a 400 naming the problem (404 for another
    model's name), a hone error raised by the model (a `ModelError` such as a prompt longer
    than the context) is a 400 with its message, anything else a 500.
    """
    name = model_name or model.name
    created = int(time.time())
    # Decodes logprob tokens to text; backends without one get `token_id:N` tokens.
    tokenizer = getattr(model, "tokenizer", None)
    card = {"id": name, "object": "model", "created": created, "owned_by": "hone"}
    app = FastAPI(title="hone serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # Unknown routes and methods get OpenAI-style bodies too.
        return _error(RequestError(exc.status_code, str(exc.detail)))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": name}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [card]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str) -> JSONResponse:
        if model_id != name:
            return _error(_unknown_model(model_id, name))
        return JSONResponse(card)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        try:
            try:
                body = json.loads(await request.body())
            except ValueError as exc:
                raise RequestError(400, f"the request body is not valid JSON: {exc}") from None
            chat = parse_request(body)
            if chat.model is not None and chat.model != name:
                raise _unknown_model(chat.model, name)
            messages, tools, sampling = to_messages(chat), to_tools(chat), to_sampling(chat)
        except RequestError as exc:
            return _error(exc)
        try:
            call = await model.generate(messages, tools, sampling)
            return JSONResponse(completion_body(call, chat, name, tokenizer))
        except HoneError as exc:
            return _error(RequestError(400, str(exc), code=_snake(exc.kind)))
        except Exception as exc:
            log.exception("hone serve: %s failed on a request", name)
            return _error(RequestError(500, f"the model failed: {type(exc).__name__}: {exc}", code="internal_error"))

    return app


def _unknown_model(requested: str, name: str) -> RequestError:
    message = f"The model {requested!r} does not exist: this server serves {name!r} (see GET /v1/models)"
    return RequestError(404, message, code="model_not_found", param="model")


def _error(exc: RequestError) -> JSONResponse:
    return JSONResponse(error_body(exc.status, exc.message, exc.code, exc.param), status_code=exc.status)


def _snake(kind: str) -> str:
    """`ModelError` -> `model_error`: hone's error kinds as OpenAI-style codes."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()
