"""`OpenAICompatible`: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, ...)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import random
import re
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import openai
from pydantic import ValidationError

from hone.core import ConfigError, ContextOverflow, Message, ModelCall, ModelError, Sampling, ToolCall, ToolSpec, Usage

from ._base import request_digest

Mode = bool | Literal["auto"]

# Request parameters of each optional feature (vLLM names for token ids).
_LOGPROBS_PARAMS = ("logprobs",)
_TOKEN_ID_PARAMS = ("return_token_ids", "return_tokens_as_token_ids")
_RETRYABLE = frozenset({408, 409, 429})
_jitter = random.Random()


@dataclass
class OpenAIStats:
    """Counters of one `OpenAICompatible` (for tests, benchmarks and debugging)."""

    calls: int = 0  # calls that returned a ModelCall
    attempts: int = 0  # HTTP requests sent, retries included
    retries: int = 0  # attempts repeated after a 408/409/429/5xx, a timeout or a connection error
    fallbacks: int = 0  # attempts repeated without a parameter the server refused ("auto" features)
    errors: int = 0  # calls that raised ModelError


@dataclass
class _LoopState:
    client: openai.AsyncOpenAI
    semaphore: asyncio.Semaphore


class OpenAICompatible:
    """A `ChatModel` served over the OpenAI chat-completions protocol, with native tool calls.

    Calls go through the official `openai.AsyncOpenAI` client with its own retries off:
    hone retries 408/409/429/5xx, timeouts and connection errors itself, with exponential
    backoff and jitter (`backoff_base_s * 2**n`, capped at `backoff_max_s`), honouring a
    `retry-after` header up to the same cap, at most `max_retries` times; other errors
    raise `ModelError` at once. At most `max_concurrency` requests are in flight.

    `logprobs` and `token_ids` ask for per-token log-probabilities and for token ids (vLLM's
    `return_token_ids` / `return_tokens_as_token_ids`). `"auto"` asks, and if the server
    answers 400 naming the parameter (as OpenAI's API does for the vLLM ones) turns the
    feature off for this instance and repeats the call; `True` always asks and raises if
    refused; `False` asks only when a call's `Sampling.logprobs` is true.

    `transport` is the HTTP stack under the SDK: `"auto"` takes the SDK's aiohttp client
    when aiohttp is installed (several times faster than httpx at high concurrency).
    `price` is USD per million (prompt, completion) tokens and fills `cost_usd`.
    `latency_s` is the time of the successful HTTP request (no queueing or backoff).
    Token limits are sent as `max_tokens`. Sampling `extra` is merged into the body.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 64,
        max_retries: int = 5,
        timeout_s: float = 120.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
        logprobs: Mode = "auto",
        token_ids: Mode = "auto",
        price: tuple[float, float] | None = None,
        name: str | None = None,
        default_headers: dict[str, str] | None = None,
        transport: Literal["auto", "aiohttp", "httpx"] = "auto",
    ) -> None:
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.model = model
        self.name = name or model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        if api_key is None:
            api_key = _key_from_env(official=base_url is None)
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.logprobs: Mode = logprobs
        self.token_ids: Mode = token_ids
        self.price = price
        self.default_headers = default_headers
        self.transport = _pick_transport(transport)
        self.stats = OpenAIStats()
        # Features an "auto" mode turned off after the server refused them.
        self.disabled: set[str] = set()
        # httpx pools and semaphores belong to one event loop; keep one of each per loop.
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    @classmethod
    def from_env(cls, model: str, **options: Any) -> OpenAICompatible:
        """The OpenAI API with the key in `OPENAI_API_KEY` (`ConfigError` if it is not set)."""
        return cls(model, api_key=_key_from_env(official=True), **options)

    def __repr__(self) -> str:
        return f"OpenAICompatible({self.model!r}, base_url={self.base_url!r})"

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        sampling: Sampling | None = None,
    ) -> ModelCall:
        """Send one chat-completions request (with retries) and return its `ModelCall`."""
        sampling = sampling or Sampling()
        state = self._state()
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_openai(tool_name=False) for m in messages],
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if tools:
            body["tools"] = [t.to_openai() for t in tools]
        if sampling.max_tokens is not None:
            body["max_tokens"] = sampling.max_tokens
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.stop:
            body["stop"] = sampling.stop
        try:
            data, latency = await self._request(state, body, sampling)
            call = self._parse(data, messages, tools, sampling, latency)
        except ModelError:
            self.stats.errors += 1
            raise
        self.stats.calls += 1
        return call

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop."""
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.client.close()

    async def arelease_loop(self) -> None:
        """The same: this model holds nothing but the running loop's client (see `arelease_loop`)."""
        await self.aclose()

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            client = openai.AsyncOpenAI(
                api_key=self.api_key,
                base_url=self.base_url,
                max_retries=0,
                timeout=self.timeout_s,
                default_headers=self.default_headers,
                http_client=openai.DefaultAioHttpClient() if self.transport == "aiohttp" else None,
            )
            state = _LoopState(client, asyncio.Semaphore(self.max_concurrency))
            self._states[loop] = state
        return state

    def _wants(self, feature: str, mode: Mode, sampling: Sampling) -> bool:
        if mode == "auto":
            return feature not in self.disabled
        return bool(mode) or sampling.logprobs

    async def _request(
        self, state: _LoopState, body: dict[str, Any], sampling: Sampling
    ) -> tuple[dict[str, Any], float]:
        post = state.client.post
        retries = 0
        while True:
            want_logprobs = self._wants("logprobs", self.logprobs, sampling)
            want_ids = self._wants("token_ids", self.token_ids, sampling)
            request = dict(body)
            if want_logprobs:
                request["logprobs"] = True
            if want_ids:
                request["return_token_ids"] = True
                if want_logprobs:
                    request["return_tokens_as_token_ids"] = True
            if sampling.extra:
                request.update(sampling.extra)
            self.stats.attempts += 1
            try:
                async with state.semaphore:
                    start = time.perf_counter()
                    # The client's generic `post` skips the SDK's per-call parameter transform and
                    # response models: hone builds the body and reads the JSON itself.
                    content = await post("/chat/completions", body=request, cast_to=bytes)
                    latency = time.perf_counter() - start
            except openai.APIStatusError as exc:
                status = exc.status_code
                message = _error_message(exc)
                # 400 is OpenAI's answer to unknown parameters; 422 is FastAPI's (transformers serve).
                if status in (400, 422) and self._fall_back(message, want_logprobs, want_ids):
                    self.stats.fallbacks += 1
                    continue
                overflow = _context_overflow(self.name, status, exc.body, message)
                if overflow is not None:  # typed, so an episode records it as such and nothing retries it
                    raise overflow from None
                if status not in _RETRYABLE and status < 500:
                    raise ModelError(f"{self.name}: HTTP {status} from {self.base_url}: {message}") from None
                reason, retry_after = f"HTTP {status}: {message}", _retry_after(exc)
            except openai.APITimeoutError as exc:
                # The aiohttp transport reports a refused connection as a connect timeout.
                refused = exc.__cause__ is not None and "Cannot connect" in str(exc.__cause__)
                reason = f"connection error: {exc.__cause__}" if refused else f"timed out after {self.timeout_s:g}s"
                retry_after = None
            except openai.APIConnectionError as exc:
                reason, retry_after = f"connection error: {exc.__cause__ or exc}", None
            except openai.OpenAIError as exc:
                raise ModelError(f"{self.name}: request to {self.base_url} failed: {exc}") from exc
            else:
                try:
                    data = json.loads(content)
                except ValueError as exc:
                    raise ModelError(f"{self.name}: {self.base_url} answered with invalid JSON: {exc}") from None
                if not isinstance(data, dict):
                    raise ModelError(f"{self.name}: {self.base_url} answered with JSON that is not an object")
                return data, latency
            if retries >= self.max_retries:
                raise ModelError(
                    f"{self.name}: giving up on {self.base_url} after {retries + 1} attempt{'s' if retries else ''}; "
                    f"last error: {reason}"
                )
            retries += 1
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(retries, retry_after))

    def _fall_back(self, message: str, want_logprobs: bool, want_ids: bool) -> bool:
        """Turn off the auto features a 400 names; False when there is none to turn off."""
        changed = False
        for feature, mode, wanted, params in (
            ("logprobs", self.logprobs, want_logprobs, _LOGPROBS_PARAMS),
            ("token_ids", self.token_ids, want_ids, _TOKEN_ID_PARAMS),
        ):
            if not wanted or not any(p in message for p in params):
                continue
            if mode != "auto":
                raise ModelError(
                    f"{self.name}: {self.base_url} refused {feature} ({message}); use {feature}='auto' or False"
                )
            self.disabled.add(feature)
            changed = True
        return changed

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max_s)
        delay = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (retry - 1))
        return delay / 2 + _jitter.uniform(0, delay / 2)

    def _cost(self, usage: Usage) -> float | None:
        if self.price is None:
            return None
        return (usage.prompt_tokens * self.price[0] + usage.completion_tokens * self.price[1]) / 1e6

    def _parse(
        self,
        data: dict[str, Any],
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        sampling: Sampling,
        latency: float,
    ) -> ModelCall:
        try:
            choice = data["choices"][0]
            reply = choice["message"]
            calls = [_tool_call(tc, i) for i, tc in enumerate(reply.get("tool_calls") or ())]
            message = Message(role="assistant", content=reply.get("content"), tool_calls=calls or None)
            usage = Usage.model_validate(
                {k: v for k, v in (data.get("usage") or {}).items() if k in ("prompt_tokens", "completion_tokens")}
            )
            logprobs, ids = _token_data(choice)
            return ModelCall(
                model=data.get("model") or self.model,
                request_digest=request_digest(self.model, messages, tools, sampling),
                sampling=sampling,
                message=message,
                finish_reason=choice.get("finish_reason"),
                usage=usage,
                latency_s=latency,
                cost_usd=self._cost(usage),
                prompt_token_ids=data.get("prompt_token_ids") or choice.get("prompt_token_ids"),
                completion_token_ids=ids,
                completion_logprobs=logprobs,
            )
        except (KeyError, IndexError, TypeError, AttributeError, ValidationError) as exc:
            detail = f"{type(exc).__name__}: {_one_line(str(exc))[:200]}"
            raise ModelError(f"{self.name}: unexpected response from {self.base_url} ({detail})") from None


def _pick_transport(transport: str) -> str:
    if transport not in ("auto", "aiohttp", "httpx"):
        raise ConfigError(f"transport must be 'auto', 'aiohttp' or 'httpx', got {transport!r}")
    # Older openai releases have no aiohttp client; aiohttp itself is an optional extra.
    if transport != "httpx" and (
        importlib.util.find_spec("aiohttp") is None or not hasattr(openai, "DefaultAioHttpClient")
    ):
        if transport == "aiohttp":
            raise ConfigError("transport='aiohttp' needs aiohttp: pip install 'hone[fast]' (and openai>=1.86)")
        return "httpx"
    return "aiohttp" if transport == "auto" else transport


def _key_from_env(*, official: bool) -> str:
    if official:
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigError("OPENAI_API_KEY is not set; export it or use openai-compatible:URL:MODEL")
        return key
    return os.environ.get("HONE_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"


def _tool_call(data: dict[str, Any], index: int) -> ToolCall:
    function = data.get("function") or {}
    call_id = data.get("id") or f"call_{index}"
    name = function.get("name") or ""
    raw = function.get("arguments")
    if isinstance(raw, dict):  # a few servers send an object instead of a string
        return ToolCall(id=call_id, name=name, arguments=raw, arguments_raw=json.dumps(raw))
    raw = "" if raw is None else str(raw)
    if not raw.strip():
        return ToolCall(id=call_id, name=name, arguments={}, arguments_raw=raw)
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        return ToolCall(id=call_id, name=name, arguments_raw=raw, parse_error=f"invalid JSON: {exc}")
    except RecursionError:  # JSON nested deeper than the parser goes: broken output, not a failed call
        return ToolCall(id=call_id, name=name, arguments_raw=raw, parse_error="invalid JSON: nested too deeply")
    if not isinstance(parsed, dict):
        error = f"arguments must be a JSON object, got {type(parsed).__name__}"
        return ToolCall(id=call_id, name=name, arguments_raw=raw, parse_error=error)
    return ToolCall(id=call_id, name=name, arguments=parsed, arguments_raw=raw)


def _token_data(choice: dict[str, Any]) -> tuple[list[float] | None, list[int] | None]:
    """Completion logprobs and token ids, from `token_ids` or from `token_id:N` tokens."""
    ids: list[int] | None = choice.get("token_ids")
    try:
        entries = (choice.get("logprobs") or {}).get("content")
        if not entries:
            return None, ids
        logprobs = [float(e["logprob"]) for e in entries]
        if ids is None and all(str(e.get("token", "")).startswith("token_id:") for e in entries):
            ids = [int(e["token"].removeprefix("token_id:")) for e in entries]
    except (KeyError, TypeError, ValueError, AttributeError):  # odd logprobs must not lose the reply
        return None, ids
    return logprobs, ids


# How servers word "the prompt does not fit": OpenAI and vLLM ("maximum context length is N tokens"),
# vLLM V1 ("longer than the maximum model length"), llama.cpp ("exceeds the available context size"),
# hone serve ("context overflow"), and OpenAI's code.
_OVERFLOW = re.compile(
    r"context_length_exceeded|maximum context length|maximum model length|context size|context overflow|"
    r"context window|exceed_context_size",
    re.IGNORECASE,
)
_CONTEXT_IS = re.compile(r"(?:maximum context length is|maximum model length (?:of|is)|has a context of) (\d+)")
_PROMPT_IS = re.compile(
    r"(?:resulted in|prompt is|prompt \(length) (\d+)|(?:you requested) \d+ tokens \((\d+) in the messages"
)


def _context_overflow(model: str, status: int, body: object, message: str) -> ContextOverflow | None:
    """The typed error for a server's "the prompt does not fit" refusal (a 400 or 413), else None; the
    sizes come from llama.cpp's fields or the message where it says them."""
    if status not in (400, 413, 422):
        return None
    fields = body if isinstance(body, dict) else {}
    said = " ".join(str(fields.get(k, "")) for k in ("code", "type")) + " " + message
    if not _OVERFLOW.search(said):
        return None

    def number(key: str, pattern: re.Pattern[str]) -> int | None:
        value = fields.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        found = pattern.search(message)
        return int(next(g for g in found.groups() if g)) if found else None

    return ContextOverflow(model, number("n_prompt_tokens", _PROMPT_IS), number("n_ctx", _CONTEXT_IS), message)


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = str(body) if body else exc.message
    return _one_line(message)[:500]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _retry_after(exc: openai.APIStatusError) -> float | None:
    for header, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return float(exc.response.headers[header]) / scale
        except (KeyError, ValueError):  # absent, or an HTTP date: use our own backoff
            continue
    return None
