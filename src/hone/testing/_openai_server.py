"""`OpenAIServer`: a mock OpenAI-compatible chat-completions server (aiohttp) with fault injection.

Tokenizer (deterministic, no vocabulary): text splits into pieces matching
`\\s*\\w+ | \\s*[^\\w\\s] | \\s+` (a word or one punctuation mark, with its leading
whitespace), so the pieces concatenate back to the text. A piece's id is its CRC-32 modulo
100,000 and its log-probability is derived from the id, in (-5, 0]. The prompt is each
message as `<|role|>` + content + its tool calls (`name(arguments)`), plus the tools'
JSON; the completion is the content followed by each tool call as `\\nname(arguments)`.
`usage` counts these pieces, so it always equals the length of the token ids returned.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Collection, Iterator
from functools import lru_cache
from typing import Any

from ._policies import Policy, arith_policy

try:
    from aiohttp import web
except ImportError as exc:  # pragma: no cover - aiohttp is the `testing` extra
    raise ImportError("hone.testing needs aiohttp: pip install 'hone[testing]'") from exc

# The vLLM extensions `reject_params=True` refuses, as OpenAI's own API does.
VLLM_PARAMS = frozenset({"return_tokens_as_token_ids", "return_token_ids"})

_PIECE = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 429: "requests"}


@lru_cache(maxsize=65536)
def _token_id(piece: str) -> int:
    return zlib.crc32(piece.encode()) % 100_000


def _logprob(token_id: int) -> float:
    return -((token_id * 2654435761) % 5000) / 1000.0


def tokenize(text: str) -> list[str]:
    """The mock tokenizer's pieces of `text` (they concatenate back to `text`)."""
    return _PIECE.findall(text)


def token_ids(text: str) -> list[int]:
    """The mock tokenizer's ids for `text`."""
    return [_token_id(p) for p in _PIECE.findall(text)]


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _prompt_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages") or ():
        parts.append(f"<|{message.get('role', '')}|>")
        parts.append(_content_text(message.get("content")))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            parts.append(f"{function.get('name', '')}({function.get('arguments', '')})")
    if body.get("tools"):
        parts.append(json.dumps(body["tools"], separators=(",", ":")))
    return "".join(parts)


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _error(status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(error_body(status, message, code)),
        content_type="application/json",
        headers=headers,
    )


class OpenAIServer:
    """A real HTTP server speaking the OpenAI chat-completions protocol, answering from a `Policy`.

    It runs its own event loop in a daemon thread (`start()`/`stop()`, or use it as a
    context manager); `base_url` is the URL to give a client. Faults can be injected from
    any thread while it serves: `fail_next(n, status)`, `fail_rate` (a seeded fraction of
    requests answer 500), `delay_s` (a sleep before each answer), `reject_params`
    (answer 400 to the named extension parameters, as OpenAI's API does; `True` means the
    vLLM ones). It counts requests and the peak number in flight, and keeps the most
    recent `max_recorded` request bodies in `requests` when `record_requests` is true.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        delay_s: float = 0.0,
        fail_rate: float = 0.0,
        seed: int = 0,
        reject_params: bool | Collection[str] = False,
        record_requests: bool = True,
        max_recorded: int = 10_000,
    ) -> None:
        self.policy: Policy = policy or arith_policy()
        self.host = host
        self.port = port
        self.delay_s = delay_s
        self.fail_rate = fail_rate
        self.record_requests = record_requests
        self.reject_params = reject_params
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._failures: deque[tuple[int, float | None, str | None, dict[str, Any] | None]] = deque()
        self._requests: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self.request_count = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._created = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # -- fault injection and inspection (any thread) -------------------------------------

    @property
    def reject_params(self) -> frozenset[str]:
        """Request parameters answered with a 400 "Unrecognized request argument"."""
        return self._reject

    @reject_params.setter
    def reject_params(self, value: bool | Collection[str]) -> None:
        if isinstance(value, bool):
            self._reject = VLLM_PARAMS if value else frozenset()
        else:
            self._reject = frozenset(value)

    def fail_next(
        self,
        n: int,
        status: int = 429,
        *,
        retry_after: float | None = 0.0,
        message: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """The next `n` requests fail with `status` and an OpenAI-style error body.

        A 429 carries a `retry-after` header unless `retry_after` is None; `message`
        replaces the default error message (e.g. to mimic "context length exceeded");
        `fields` are added to the body's `error` object (a `code`, llama.cpp's `n_ctx`...).
        """
        with self._lock:
            self._failures.extend([(status, retry_after, message, fields)] * n)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The recorded request bodies, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset_stats(self) -> None:
        """Forget recorded requests, counts and pending failures."""
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self.request_count = 0
            self.peak_in_flight = self.in_flight

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The `/v1` base URL clients use (the real port once started)."""
        return f"http://{self.host}:{self.port}/v1"

    def app(self) -> web.Application:
        """The aiohttp application (to mount or run elsewhere)."""
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        return app

    async def serve(self, stop: asyncio.Event, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve on the current event loop until `stop` is set; `on_ready(base_url)` once listening."""
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = int(runner.addresses[0][1])
            if on_ready is not None:
                on_ready(self.base_url)
            await stop.wait()
        finally:
            await runner.cleanup()

    def start(self) -> OpenAIServer:
        """Start serving in a background daemon thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop_event = asyncio.Event()
            try:
                loop.run_until_complete(self.serve(self._stop_event, lambda _url: ready.set()))
            except BaseException as exc:
                failure.append(exc)
            finally:
                ready.set()
                loop.close()

        self._thread = threading.Thread(target=run, name="hone-openai-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or event is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(event.set)
        thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handlers (server loop) -----------------------------------------------------------

    def _take_failure(self) -> tuple[int, float | None, str | None, dict[str, Any] | None] | None:
        with self._lock:
            if self._failures:
                return self._failures.popleft()
            if self.fail_rate > 0 and self._rng.random() < self.fail_rate:
                return (500, None, None, None)
        return None

    async def _models(self, request: web.Request) -> web.Response:
        body = {"object": "list", "data": [{"id": "mock", "object": "model", "created": 0, "owned_by": "hone"}]}
        return web.json_response(body)

    async def _chat(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(await request.read())
        finally:
            self.in_flight -= 1

    async def _answer(self, raw: bytes) -> web.Response:
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        with self._lock:
            self.request_count += 1
            if self.record_requests:
                self._requests.append(body)
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        failure = self._take_failure()
        if failure is not None:
            status, retry_after, message, fields = failure
            headers = {"retry-after": f"{retry_after:g}"} if status == 429 and retry_after is not None else None
            if message is None:
                message = "Rate limit reached for requests" if status == 429 else f"injected failure (HTTP {status})"
            response = _error(status, message, "rate_limit_exceeded" if status == 429 else None, headers)
            if fields:
                body = error_body(status, message, "rate_limit_exceeded" if status == 429 else None)
                body["error"].update(fields)
                response.body = json.dumps(body).encode()
            return response
        for name in self._reject:
            if name in body:
                return _error(400, f"Unrecognized request argument supplied: {name}")
        if body.get("stream"):
            return _error(400, "stream=true is not supported by this mock server; use stream=false")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(400, "'messages' must be a non-empty array")
        try:
            reply = self.policy(body)
        except Exception as exc:
            return _error(500, f"policy failed: {type(exc).__name__}: {exc}")
        return web.Response(body=json.dumps(self._completion(body, reply)), content_type="application/json")

    def _completion(self, body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        n_messages = len(body["messages"])
        content = reply.get("content")
        message: dict[str, Any] = {"role": "assistant", "content": content}
        completion = [_content_text(content)]
        calls = []
        for i, call in enumerate(reply.get("tool_calls") or ()):
            arguments = call.get("arguments", "{}")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments)
            name = str(call.get("name", ""))
            calls.append(
                {
                    "id": call.get("id") or f"call_{n_messages}_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
            completion.append(f"\n{name}({arguments})")
        if calls:
            message["tool_calls"] = calls
        pieces = tokenize("".join(completion))
        prompt_pieces = tokenize(_prompt_text(body))
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": reply.get("finish_reason") or ("tool_calls" if calls else "stop"),
        }
        if body.get("logprobs") or body.get("return_token_ids"):
            ids = [_token_id(p) for p in pieces]
            if body.get("logprobs"):
                as_ids = bool(body.get("return_tokens_as_token_ids"))
                choice["logprobs"] = {"content": list(_logprob_entries(pieces, ids, as_ids))}
            if body.get("return_token_ids"):
                choice["token_ids"] = ids
        with self._lock:
            self._created += 1
            serial = self._created
        response: dict[str, Any] = {
            "id": f"chatcmpl-mock{serial}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "mock",
            "choices": [choice],
            "usage": {
                "prompt_tokens": len(prompt_pieces),
                "completion_tokens": len(pieces),
                "total_tokens": len(prompt_pieces) + len(pieces),
            },
        }
        if body.get("return_token_ids"):
            response["prompt_token_ids"] = [_token_id(p) for p in prompt_pieces]
        return response


def _logprob_entries(pieces: list[str], ids: list[int], as_ids: bool) -> Iterator[dict[str, Any]]:
    for piece, tid in zip(pieces, ids, strict=True):
        yield {
            "token": f"token_id:{tid}" if as_ids else piece,
            "logprob": _logprob(tid),
            "bytes": list(piece.encode()),
            "top_logprobs": [],
        }
