"""hone serve over HTTP (uvicorn in a thread) with scripted models: the official SDK and hone's client."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import openai
import pytest
from _serve_helpers import CALCULATOR, Recorder, SamplingSpy, serving

from hone.core import Message, ModelError, Sampling, ToolSpec
from hone.envs import make_env
from hone.models import OpenAICompatible, Scripted, call_tool
from hone.rollout import run_episode
from hone.serve import BackgroundServer

QUESTION = [{"role": "system", "content": "Use the calculator."}, {"role": "user", "content": "What is 12 * (3 + 4)?"}]


def sdk(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def post(server: BackgroundServer, body: Any, path: str = "/chat/completions") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.base_url + path, content=content, headers={"content-type": "application/json"})


def test_openai_sdk_gets_native_tool_calls(server: BackgroundServer, recorder: Recorder) -> None:
    client = sdk(server)
    first = client.chat.completions.create(model="scripted", messages=QUESTION, tools=[CALCULATOR])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and first.object == "chat.completion" and first.model == "scripted"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "calculator"
    assert json.loads(call.function.arguments) == {"expression": "12 * (3 + 4)"}
    assert first.usage is not None and first.usage.completion_tokens == len(call.function.arguments)

    history = [
        *QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "84"},
    ]
    second = client.chat.completions.create(model="scripted", messages=history, tools=[CALCULATOR])
    assert second.choices[0].message.content == "The answer is 84." and second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.tool_calls is None

    messages, tools = recorder.requests[-1]
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool"]
    sent = messages[2].tool_calls[0]
    assert (sent.id, sent.name, sent.arguments) == (call.id, "calculator", {"expression": "12 * (3 + 4)"})
    assert sent.arguments_raw == call.function.arguments
    assert messages[3].tool_call_id == call.id and messages[3].content == "84"
    assert tools == [ToolSpec.model_validate(CALCULATOR["function"])]


async def test_openai_compatible_runs_an_arith_episode(server: BackgroundServer) -> None:
    env = make_env("arith", levels="1-3")
    task = env.tasks("test", n=3)[2]
    model = OpenAICompatible("scripted", base_url=server.base_url)
    try:
        tr = await run_episode(env, model, task, sampling=Sampling(temperature=0))
    finally:
        await model.aclose()
    assert tr.status == "ok" and tr.passed and tr.tool_call_count == 1
    assert model.stats.fallbacks == 0 and not model.disabled
    first, last = tr.steps[0].call, tr.steps[-1].call
    assert first.message.tool_calls and first.message.tool_calls[0].name == "calculator"
    # vLLM-style token data comes through: token-exact trajectories.
    assert first.completion_token_ids == [ord(c) for c in first.message.tool_calls[0].arguments_raw or ""]
    assert last.completion_token_ids == [ord(c) for c in last.message.text]
    assert last.completion_logprobs == [-0.5] * len(last.message.text)
    assert first.prompt_token_ids and len(first.prompt_token_ids) == first.usage.prompt_tokens


def test_token_ids_and_logprobs_on_request(server: BackgroundServer) -> None:
    base = {"model": "scripted", "messages": [*QUESTION[-1:], {"role": "tool", "content": "8", "tool_call_id": "c"}]}
    plain = post(server, base).json()
    assert "prompt_token_ids" not in plain and "token_ids" not in plain["choices"][0]
    assert plain["choices"][0]["logprobs"] is None

    data = post(server, {**base, "logprobs": True, "return_token_ids": True}).json()
    choice = data["choices"][0]
    assert choice["token_ids"] == [ord(c) for c in "The answer is 8."]
    assert data["prompt_token_ids"] == [ord(c) for c in "What is 12 * (3 + 4)?8"]
    entries = choice["logprobs"]["content"]
    assert [e["token"] for e in entries] == list("The answer is 8.")  # decoded with the model's tokenizer
    assert entries[0] == {"token": "T", "logprob": -0.5, "bytes": [84], "top_logprobs": []}

    as_ids = post(server, {**base, "logprobs": True, "return_tokens_as_token_ids": True}).json()
    assert as_ids["choices"][0]["logprobs"]["content"][0]["token"] == "token_id:84"


def test_sampling_parameters_reach_the_model() -> None:
    model = SamplingSpy(["a", "b", "c"], name="spy")
    with serving(model) as server:
        client = sdk(server)
        client.chat.completions.create(model="spy", messages=QUESTION)
        client.chat.completions.create(
            model="spy", messages=QUESTION, temperature=0.2, top_p=0.9, max_tokens=7, seed=5, stop="\n"
        )
        client.chat.completions.create(model="spy", messages=QUESTION, max_completion_tokens=9, stop=["x", "y"])
    assert model.samplings == [
        Sampling(temperature=1.0, top_p=1.0),
        Sampling(temperature=0.2, top_p=0.9, max_tokens=7, seed=5, stop=["\n"]),
        Sampling(max_tokens=9, stop=["x", "y"]),
    ]


def test_message_forms(server: BackgroundServer, recorder: Recorder) -> None:
    parts = [{"type": "text", "text": "What is "}, {"type": "text", "text": "2 + 2?"}]
    body = {
        "model": "scripted",
        "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": parts}],
    }
    assert post(server, body).status_code == 200
    messages, tools = recorder.requests[-1]
    assert messages == [Message.system("Be brief."), Message.user("What is 2 + 2?")] and tools == []

    image = [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]
    refused = post(server, {"model": "scripted", "messages": [{"role": "user", "content": image}]})
    assert refused.status_code == 400 and "only text content parts" in refused.json()["error"]["message"]


def test_malformed_tool_call_goes_back_as_content() -> None:
    broken = '{"expression": "2 +'
    with serving(Scripted([call_tool("calculator", broken)], name="m")) as server:
        reply = sdk(server).chat.completions.create(model="m", messages=QUESTION, tools=[CALCULATOR])
    choice = reply.choices[0]
    assert choice.message.tool_calls is None and choice.finish_reason == "stop"
    assert choice.message.content == f'<tool_call>\n{{"name": "calculator", "arguments": {broken}}}\n</tool_call>'


async def test_hone_client_gets_a_broken_tool_call_as_text() -> None:
    broken = '{"expression": 2 +}'
    with serving(Scripted([call_tool("calculator", broken)], name="m")) as server:
        model = OpenAICompatible("m", base_url=server.base_url)
        try:
            call = await model.generate([Message.user("2+2?")], [ToolSpec.model_validate(CALCULATOR["function"])])
        finally:
            await model.aclose()
    assert not call.message.tool_calls and broken in (call.message.content or "")
    assert call.finish_reason == "stop"


def test_history_with_broken_arguments_is_accepted(server: BackgroundServer, recorder: Recorder) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "1 +'}}
    history = [
        QUESTION[1],
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "error"},
    ]
    assert post(server, {"model": "scripted", "messages": history}).status_code == 200
    sent = recorder.requests[-1][0][1].tool_calls[0]
    assert sent.arguments_raw == '{"expression": "1 +' and sent.parse_error and sent.arguments == {}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"n": 0}, 400, "n: Input should be greater than or equal to 1"),
        ({"n": 129}, 400, "n: Input should be less than or equal to 128"),
        ({"top_logprobs": 3}, 400, "top_logprobs"),
        ({"tool_choice": "required"}, 400, "tool_choice 'required' needs at least one tool"),
        ({"tool_choice": "sometimes"}, 400, "tool_choice"),
        ({"stream_options": {"include_usage": True}}, 400, "stream_options is only allowed with stream=true"),
        ({"response_format": {"type": "xml"}}, 400, "response_format.type"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, 400, "json_schema is not"),
        ({"seed": 2**64}, 400, "seed"),
        ({"frequency_penalty": 0.5}, 400, "Unrecognized request argument supplied: frequency_penalty"),
        ({"messages": []}, 400, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages.0.role"),
        ({"temperature": 5}, 400, "temperature"),
        ({"model": "gpt-4o"}, 404, "does not exist: this server serves 'scripted'"),
    ],
)
def test_bad_requests_get_openai_style_errors(
    server: BackgroundServer, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = post(server, {"model": "scripted", "messages": QUESTION, **body})
    error = response.json()["error"]
    assert response.status_code == status and fragment in error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def test_transport_level_errors(server: BackgroundServer) -> None:
    not_json = post(server, b"{not json")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
    not_object = post(server, [1, 2])
    assert not_object.status_code == 400 and "JSON object" in not_object.json()["error"]["message"]
    missing = httpx.get(server.base_url + "/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    wrong_method = httpx.get(server.base_url + "/chat/completions")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def failing(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
    text = messages[-1].text
    if text == "long":
        raise ModelError("prompt is 2000 tokens; the context holds 1024")
    raise RuntimeError("boom")


async def test_model_errors_map_to_400_and_crashes_to_500() -> None:
    with serving(Scripted(failing, name="m")) as server:
        long = post(server, {"model": "m", "messages": [{"role": "user", "content": "long"}]})
        assert long.status_code == 400
        assert long.json()["error"] == {
            "message": "prompt is 2000 tokens; the context holds 1024",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_error",
        }
        crash = post(server, {"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert crash.status_code == 500 and crash.json()["error"]["type"] == "server_error"
        assert "RuntimeError: boom" in crash.json()["error"]["message"]

        model = OpenAICompatible("m", base_url=server.base_url, max_retries=0)
        try:
            with pytest.raises(ModelError, match=r"HTTP 400 .* the context holds 1024"):
                await model.generate([Message.user("long")])
        finally:
            await model.aclose()


def test_models_and_health(server: BackgroundServer) -> None:
    listed = sdk(server).models.list()
    assert [m.id for m in listed.data] == ["scripted"] and listed.data[0].owned_by == "hone"
    assert sdk(server).models.retrieve("scripted").id == "scripted"
    assert httpx.get(server.base_url + "/models/other").status_code == 404
    health = httpx.get(server.base_url.removesuffix("/v1") + "/health")
    assert health.json() == {"status": "ok", "model": "scripted"}


async def test_concurrent_requests_are_answered_concurrently() -> None:
    # Each call sleeps 0.3 s: 16 at once finish in about that, not 16 times it (4.8 s).
    with serving(Scripted(lambda m, t: "ok", name="slow", latency_s=0.3)) as server:
        model = OpenAICompatible("slow", base_url=server.base_url)
        try:
            import asyncio
            import time

            start = time.perf_counter()
            calls = await asyncio.gather(*[model.generate([Message.user(str(i))]) for i in range(16)])
            elapsed = time.perf_counter() - start
        finally:
            await model.aclose()
    assert [c.message.content for c in calls] == ["ok"] * 16 and elapsed < 3.0


def test_named_model_and_recorder_default() -> None:
    with serving(Scripted(Recorder(), name="inner"), name="outer") as server:
        reply = sdk(server).chat.completions.create(model="outer", messages=QUESTION)
        assert reply.model == "outer"
        with pytest.raises(openai.NotFoundError):
            sdk(server).chat.completions.create(model="inner", messages=QUESTION)
