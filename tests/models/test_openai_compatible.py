import asyncio
import json
import socket
import time
from typing import Any

import pytest

from hone.core import ConfigError, ContextOverflow, Message, ModelError, Sampling, ToolSpec
from hone.models import ChatModel, OpenAICompatible, request_digest
from hone.testing import VLLM_PARAMS, OpenAIServer, scripted_policy, token_ids


def model_for(server: OpenAIServer, **options: object) -> OpenAICompatible:
    options.setdefault("backoff_base_s", 0.001)
    return OpenAICompatible("mock-model", base_url=server.base_url, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_tool_calls_round_trip(
    server: OpenAIServer, tools: list[ToolSpec], question: list[Message], transport: str
) -> None:
    model = model_for(server, transport=transport)
    assert isinstance(model, ChatModel)
    first = await model.generate(question, tools, Sampling(temperature=0, seed=3))
    call = first.message.tool_calls[0]  # type: ignore[index]
    assert (call.name, call.arguments, call.parse_error) == ("calculator", {"expression": "12 * (3 + 4)"}, None)
    assert call.arguments_raw == '{"expression": "12 * (3 + 4)"}'
    assert first.finish_reason == "tool_calls" and first.model == "mock-model"
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0 and first.latency_s > 0
    assert first.request_digest == request_digest("mock-model", question, tools, Sampling(temperature=0, seed=3))

    history = [*question, first.message, Message.tool("84", call.id, name="calculator")]
    second = await model.generate(history, tools, Sampling(temperature=0))
    assert second.message.content == "The answer is 84." and second.finish_reason == "stop"
    sent = server.requests[-1]["messages"]
    assert sent[2]["tool_calls"][0] == {
        "id": call.id,
        "type": "function",
        "function": {"name": "calculator", "arguments": call.arguments_raw},
    }
    assert sent[3] == {"role": "tool", "content": "84", "tool_call_id": call.id}
    await model.aclose()


async def test_broken_tool_json_is_kept_raw_and_sent_back_verbatim(tools: list[ToolSpec]) -> None:
    replies = [
        {"content": None, "tool_calls": [{"name": "calculator", "arguments": '{"expression": "1+1"'}]},
        {"content": None, "tool_calls": [{"name": "calculator", "arguments": "[1, 2]"}]},
        "done",
    ]
    with OpenAIServer(scripted_policy(replies)) as srv:
        model = model_for(srv)
        first = await model.generate([Message.user("hi")], tools)
        broken = first.message.tool_calls[0]  # type: ignore[index]
        assert broken.arguments == {} and broken.arguments_raw == '{"expression": "1+1"'
        assert broken.parse_error is not None and "invalid JSON" in broken.parse_error
        second = await model.generate([Message.user("hi"), first.message, Message.tool("error", broken.id)], tools)
        assert second.message.tool_calls[0].parse_error == "arguments must be a JSON object, got list"  # type: ignore[index]
        await model.generate([Message.user("hi"), first.message, Message.tool("error", broken.id)], tools)
        assert srv.requests[-1]["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"expression": "1+1"'
        await model.aclose()


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_retries_then_succeeds(server: OpenAIServer, question: list[Message], status: int) -> None:
    model = model_for(server)
    server.fail_next(2, status)
    call = await model.generate(question)
    assert call.message.content == "The answer is 0."
    assert model.stats.retries == 2 and model.stats.attempts == 3 and server.request_count == 3
    await model.aclose()


async def test_gives_up_after_max_retries(server: OpenAIServer, question: list[Message]) -> None:
    model = model_for(server, max_retries=2)
    server.fail_next(10, 503)
    with pytest.raises(ModelError) as info:
        await model.generate(question)
    message = str(info.value)
    assert server.base_url in message and "3 attempts" in message and "HTTP 503" in message
    assert model.stats.retries == 2 and model.stats.errors == 1 and server.request_count == 3
    await model.aclose()


async def test_client_error_raises_at_once(server: OpenAIServer, question: list[Message]) -> None:
    model = model_for(server)
    server.fail_next(1, 400, message="Invalid value for 'messages[0].role':\nnot a role.")
    with pytest.raises(
        ModelError, match=r"HTTP 400 from .*Invalid value for 'messages\[0\]\.role': not a role\."
    ) as info:
        await model.generate(question)
    assert "\n" not in str(info.value) and not isinstance(info.value, ContextOverflow)
    assert model.stats.retries == 0 and server.request_count == 1
    await model.aclose()


@pytest.mark.parametrize(
    ("message", "fields", "sizes"),
    [
        (  # OpenAI
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9021 tokens.",
            {"code": "context_length_exceeded"},
            (9021, 8192),
        ),
        (  # vLLM
            "This model's maximum context length is 2048 tokens. However, you requested 2148 tokens (2100 in the "
            "messages, 48 in the completion). Please reduce the length of the messages or completion.",
            {},
            (2100, 2048),
        ),
        (  # vLLM V1
            "The decoder prompt (length 5000) is longer than the maximum model length of 4096.",
            {},
            (5000, 4096),
        ),
        (  # llama.cpp: the sizes are fields, not words
            "the request exceeds the available context size, try increasing it",
            {"type": "exceed_context_size_error", "n_prompt_tokens": 5000, "n_ctx": 4096},
            (5000, 4096),
        ),
        ("Prompt too long.", {"code": "context_length_exceeded"}, (None, None)),  # the code alone
    ],
)
async def test_a_prompt_over_the_servers_context_is_a_typed_context_overflow(
    server: OpenAIServer, question: list[Message], message: str, fields: dict[str, Any], sizes: tuple[Any, Any]
) -> None:
    model = model_for(server)
    server.fail_next(1, 400, message=message, fields=fields)
    with pytest.raises(ContextOverflow, match="context overflow") as info:
        await model.generate(question)
    assert (info.value.prompt_tokens, info.value.context) == sizes
    assert message.split(".")[0] in str(info.value)  # the server's own words are kept
    assert model.stats.retries == 0 and server.request_count == 1  # refused once, never retried
    await model.aclose()


async def test_retry_after_is_respected_and_capped(server: OpenAIServer, question: list[Message]) -> None:
    model = model_for(server)
    server.fail_next(1, 429, retry_after=0.3)
    start = time.perf_counter()
    await model.generate(question)
    assert time.perf_counter() - start >= 0.3
    capped = model_for(server, backoff_max_s=0.05)
    server.fail_next(1, 429, retry_after=30)
    start = time.perf_counter()
    await capped.generate(question)
    assert time.perf_counter() - start < 5
    await model.aclose()
    await capped.aclose()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_timeouts_are_retried_then_fail(server: OpenAIServer, question: list[Message], transport: str) -> None:
    model = model_for(server, timeout_s=0.1, max_retries=1, transport=transport)
    server.delay_s = 0.5
    with pytest.raises(ModelError, match=r"after 2 attempts; last error: timed out after 0\.1s"):
        await model.generate(question)
    assert model.stats.retries == 1
    await model.aclose()


async def test_connection_refused_is_a_model_error(question: list[Message]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = OpenAICompatible("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_base_s=0.001)
    with pytest.raises(ModelError, match=rf"giving up on http://127.0.0.1:{port}/v1 after 2 attempts; .*connect"):
        await model.generate(question)
    await model.aclose()


async def test_concurrency_limit(server: OpenAIServer, question: list[Message]) -> None:
    model = model_for(server, max_concurrency=3)
    server.delay_s = 0.05
    calls = await asyncio.gather(*(model.generate(question, sampling=Sampling(seed=i)) for i in range(12)))
    assert len(calls) == 12 and server.peak_in_flight == 3
    await model.aclose()


async def test_token_data_filled_when_supported(
    server: OpenAIServer, tools: list[ToolSpec], question: list[Message]
) -> None:
    model = model_for(server)
    call = await model.generate(question, tools)
    completion = '\ncalculator({"expression": "12 * (3 + 4)"})'
    assert call.completion_token_ids == token_ids(completion)
    assert call.completion_logprobs is not None and len(call.completion_logprobs) == call.usage.completion_tokens
    assert all(-5 < lp <= 0 for lp in call.completion_logprobs)
    assert call.prompt_token_ids is not None and len(call.prompt_token_ids) == call.usage.prompt_tokens
    sent = server.requests[-1]
    assert sent["logprobs"] is True and sent["return_token_ids"] is True and sent["return_tokens_as_token_ids"] is True
    await model.aclose()


async def test_auto_falls_back_once_when_the_server_rejects_vllm_params(
    server: OpenAIServer, question: list[Message]
) -> None:
    server.reject_params = True  # like OpenAI's API
    model = model_for(server)
    first = await model.generate(question)
    assert model.stats.fallbacks == 1 and model.disabled == {"token_ids"} and model.stats.retries == 0
    assert first.completion_token_ids is None and first.prompt_token_ids is None
    assert first.completion_logprobs is not None  # logprobs are still supported
    await model.generate(question)
    assert model.stats.fallbacks == 1 and server.request_count == 3
    assert not VLLM_PARAMS & set(server.requests[-1]) and server.requests[-1]["logprobs"] is True

    server.reject_params = {"logprobs", *VLLM_PARAMS}
    plain = model_for(server)
    call = await plain.generate(question)
    assert plain.disabled == {"logprobs", "token_ids"} and call.completion_logprobs is None
    await model.aclose()
    await plain.aclose()


async def test_strict_token_ids_raise_when_rejected(server: OpenAIServer, question: list[Message]) -> None:
    server.reject_params = True
    model = model_for(server, token_ids=True)
    with pytest.raises(ModelError, match=r"refused token_ids \(Unrecognized request argument supplied: return_token"):
        await model.generate(question)
    assert server.request_count == 1
    await model.aclose()


async def test_disabled_features_are_not_requested_unless_sampling_asks(
    server: OpenAIServer, question: list[Message]
) -> None:
    model = model_for(server, logprobs=False, token_ids=False)
    call = await model.generate(question)
    assert call.completion_logprobs is None and call.completion_token_ids is None
    assert not {"logprobs", *VLLM_PARAMS} & set(server.requests[-1])
    call = await model.generate(question, sampling=Sampling(logprobs=True))
    assert call.completion_logprobs is not None and call.completion_token_ids is not None
    await model.aclose()


async def test_sampling_mapping_and_cost(server: OpenAIServer, question: list[Message]) -> None:
    model = model_for(server, price=(1.0, 2.0), name="pretty-name")
    sampling = Sampling(temperature=0.7, top_p=0.9, max_tokens=64, seed=11, stop=["\n\n"], extra={"top_k": 5})
    call = await model.generate(question, sampling=sampling)
    sent = server.requests[-1]
    assert (sent["model"], sent["temperature"], sent["top_p"], sent["max_tokens"]) == ("mock-model", 0.7, 0.9, 64)
    assert (sent["seed"], sent["stop"], sent["top_k"]) == (11, ["\n\n"], 5)
    assert "tools" not in sent
    assert call.sampling == sampling and model.name == "pretty-name"
    expected = (call.usage.prompt_tokens * 1.0 + call.usage.completion_tokens * 2.0) / 1e6
    assert call.cost_usd == pytest.approx(expected)
    assert json.loads(call.model_dump_json())["cost_usd"] == pytest.approx(expected)
    await model.aclose()


def test_from_env_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set; export it or use openai-compatible:URL:MODEL"):
        OpenAICompatible.from_env("gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert OpenAICompatible.from_env("gpt-4o-mini").api_key == "sk-test"


def test_sync_callers_on_fresh_loops(server: OpenAIServer, question: list[Message]) -> None:
    model = model_for(server)

    async def once() -> str | None:
        try:
            return (await model.generate(question)).message.content
        finally:
            await model.aclose()

    for _ in range(2):  # each asyncio.run has its own loop, client and semaphore
        assert asyncio.run(once()) == "The answer is 0."


def test_arguments_nested_deeper_than_the_parser_goes_are_a_parse_error() -> None:
    from hone.models._openai import _tool_call

    raw = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    call = _tool_call({"id": "c1", "function": {"name": "f", "arguments": raw}}, 0)
    assert call.parse_error == "invalid JSON: nested too deeply" and call.arguments_raw == raw
