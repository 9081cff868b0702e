"""Hostile request bodies against hone serve over HTTP: always an OpenAI-style 4xx, never a 500, never a dead server.

A list of known-bad bodies (non-JSON, nesting past any parser's recursion, nested and
oversized tool schemas, wrong types, out-of-range numbers, lone surrogates), a
Hypothesis-generated set of mutated requests, and the body-size limit (413 before parsing,
declared or chunked). After every body the server must still answer `/health`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from _serve_helpers import CALCULATOR
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hone.core import Message, ToolSpec
from hone.models import Scripted, call_tool
from hone.serve import BackgroundServer

BASE: dict[str, Any] = {"model": "fuzz", "messages": [{"role": "user", "content": "What is 2 + 3?"}]}


def fuzz_reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Message | str:
    """A reply that meets any contract a valid request can make: a call when tools are shown, else JSON."""
    if tools:
        return call_tool(tools[0].name, {})
    return '{"ok": true}'


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[BackgroundServer]:
    with BackgroundServer(Scripted(fuzz_reply, name="fuzz"), max_body_mb=2) as server:
        yield server


@pytest.fixture(scope="module")
def http(fuzz_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_server.base_url.removesuffix("/v1"), timeout=60) as client:
        yield client


def nested(depth: int) -> bytes:
    """JSON nested `depth` levels (objects and lists alternating), written out: no encoder recursion."""
    return b'{"a": [' * (depth // 2) + b"1" + b"]}" * (depth // 2)


def schema(depth: int) -> bytes:
    """A tool's parameters schema with `depth` nested object properties (2 JSON levels each)."""
    return b'{"type": "object", "properties": {"x": ' * depth + b'{"type": "string"}' + b"}}" * depth


def splice(field: str, raw: bytes, into: bytes | None = None) -> bytes:
    """A valid request with `field` set to the raw JSON text `raw`."""
    return (into or body()).replace(b'"model"', f'"{field}": '.encode() + raw + b', "model"', 1)


def tool(parameters: Any, name: str = "f") -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


def body(**fields: Any) -> bytes:
    return json.dumps({**BASE, **fields}).encode()


def user(content: Any) -> bytes:
    return body(messages=[{"role": "user", "content": content}])


HOSTILE: dict[str, bytes] = {
    "empty": b"",
    "null": b"null",
    "list": b"[1, 2]",
    "string": b'"hello"',
    "truncated": b'{"model": "fuzz", "messages": [',
    "not utf-8": b'{"model": "\xff\xfe"}',
    "nan": splice("temperature", b"NaN"),
    "infinity": splice("top_p", b"Infinity"),
    "huge integer literal": splice("max_tokens", b"9" * 5000),
    "100k open brackets": b"[" * 100_000,
    "50k open objects": b'{"a":' * 50_000,
    "deep list in metadata": splice("metadata", nested(3000)),
    "deep but parseable metadata": splice("metadata", nested(500)),
    "deep tool schema": splice(
        "tools", b'[{"type": "function", "function": {"name": "f", "parameters": ' + schema(400) + b"}}]"
    ),
    "deep tool schema under the parser limit": splice(
        "tools", b'[{"type": "function", "function": {"name": "f", "parameters": ' + schema(40) + b"}}]"
    ),
    "too many tools": body(tools=[tool({"type": "object"}, name=f"f{i}") for i in range(200)]),
    "tool without function": body(tools=[{"type": "function"}]),
    "tool with empty name": body(tools=[tool({"type": "object"}, name="")]),
    "tool schema not an object": body(tools=[tool([1, 2, 3])]),
    "tools an object": body(tools={"calculator": CALCULATOR}),
    "messages a string": body(messages="hello"),
    "messages of numbers": body(messages=[1, 2]),
    "content a number": user(5),
    "content parts wrong": user([{"type": "text", "text": 5}]),
    "text part without text": user([{"type": "text"}]),
    "image part": user([{"type": "image_url", "image_url": {"url": "http://x"}}]),
    "role unknown": body(messages=[{"role": "root", "content": "x"}]),
    "lone high surrogate": user("abc\ud800"),
    "lone low surrogate": user("\udc00xyz"),
    "temperature a string": body(temperature="hot"),
    "temperature 1e308": body(temperature=1e308),
    "n a string": body(n="2"),
    "n zero": body(n=0),
    "n a million": body(n=1_000_000),
    "max_tokens negative": body(max_tokens=-1),
    "seed 1e30": body(seed=10**30),
    "seed float": body(seed=1.5),
    "max_tokens a float": body(max_tokens=16.0),
    "stop a number": body(stop=5),
    "stop list of numbers": body(stop=[1, 2]),
    "tool_choice a number": body(tools=[CALCULATOR], tool_choice=5),
    "tool_choice unknown name": body(tools=[CALCULATOR], tool_choice={"type": "function", "function": {"name": "x"}}),
    "tool_choice without function": body(tools=[CALCULATOR], tool_choice={"type": "function"}),
    "required without tools": body(tool_choice="required"),
    "response_format a string": body(response_format="json"),
    "response_format xml": body(response_format={"type": "xml"}),
    "response_format json_schema": body(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
    "stream a string": body(stream="yes"),
    "stream_options without stream": body(stream_options={"include_usage": True}),
    "stream_options wrong": body(stream=True, stream_options={"include_usage": "x"}),
    "logprobs a list": body(logprobs=[True]),
    "model a number": body(model=5),
    "unknown field": body(frequency_penalty=0.5),
    "huge tool schema over the limit": body(tools=[tool({"type": "object", "enum": ["x" * 100] * 30_000})]),
}


# Odd but valid: served (200), not failed.
ODD: dict[str, bytes] = {
    "bom": b"\xef\xbb\xbf" + body(),
    "deep tool-call arguments string": body(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[" * 100_000}}]},
            {"role": "user", "content": "hi"},
        ],
    ),
    "emoji as an escaped surrogate pair": user("smile \U0001f600"),
}


@pytest.mark.parametrize("name", list(ODD))
def test_odd_but_valid_body_is_served(http: httpx.Client, name: str) -> None:
    response = http.post("/v1/chat/completions", content=ODD[name])
    assert response.status_code == 200, (name, response.text[:300])


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_body_is_a_client_error(http: httpx.Client, name: str) -> None:
    response = http.post("/v1/chat/completions", content=HOSTILE[name], headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == "invalid_request_error"
    assert http.get("/health").json()["status"] == "ok"


def test_nesting_and_surrogates_are_named(http: httpx.Client) -> None:
    for name in ("100k open brackets", "deep list in metadata", "deep tool schema"):
        response = http.post("/v1/chat/completions", content=HOSTILE[name])
        assert response.status_code == 400 and "nested deeper than 64 levels" in response.json()["error"]["message"]
    surrogate = http.post("/v1/chat/completions", content=HOSTILE["lone high surrogate"])
    assert "lone UTF-16 surrogate" in surrogate.json()["error"]["message"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "model",
    "messages",
    "tools",
    "tool_choice",
    "response_format",
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "stop",
    "n",
    "stream",
    "stream_options",
    "logprobs",
    "return_token_ids",
    "metadata",
    "user",
]
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "x"]), "content": JSON | st.text()}
)
MUTATION = st.one_of(
    st.tuples(st.sampled_from(FIELDS) | st.text(max_size=10), JSON),
    st.tuples(st.just("messages"), st.lists(MESSAGE, max_size=3)),
    st.tuples(st.just("tools"), st.lists(st.builds(tool, JSON, st.text(max_size=8)), max_size=3)),
    st.tuples(st.just("tool_choice"), st.sampled_from(["none", "auto", "required"])),
    st.tuples(st.just("response_format"), st.sampled_from([{"type": "json_object"}, {"type": "text"}])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4), tools=st.booleans(), stream=st.booleans())
def test_fuzzed_requests_never_fail_the_server(
    http: httpx.Client, mutations: list[tuple[str, Any]], tools: bool, stream: bool
) -> None:
    request: dict[str, Any] = {**BASE, **({"tools": [CALCULATOR]} if tools else {}), "stream": stream}
    request.update(dict(mutations))
    response = http.post("/v1/chat/completions", json=request)
    assert response.status_code < 500, (request, response.text[:300])
    if response.status_code != 200:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert http.get("/health").status_code == 200


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzzed_bytes_are_refused_cleanly(http: httpx.Client, raw: bytes) -> None:
    response = http.post("/v1/chat/completions", content=raw)
    assert 400 <= response.status_code < 500 and "error" in response.json()
    assert http.get("/health").status_code == 200


def test_bodies_over_the_limit_are_413_before_parsing(fuzz_server: BackgroundServer, http: httpx.Client) -> None:
    # 3 MB against a 2 MB limit, not even JSON: refused on its size alone.
    big = b"{" + b"x" * (3 * 1024 * 1024)
    declared = http.post("/v1/chat/completions", content=big)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "request_too_large" and "2 MB" in declared.json()["error"]["message"]
    chunked = http.post("/v1/chat/completions", content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]))
    assert chunked.status_code == 413
    # Just under the limit is served.
    near = user("7 + 8 " * ((2 * 1024 * 1024 - 200) // 6))
    assert len(near) < 2 * 1024 * 1024
    assert http.post("/v1/chat/completions", content=near).status_code == 200
    assert http.get("/health").status_code == 200


def test_max_body_mb_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body_mb must be positive"):
        BackgroundServer(Scripted(["x"]), max_body_mb=0).start()
