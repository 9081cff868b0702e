import json
import os
import signal
import subprocess
import sys
from typing import Any

import openai
import pytest

from hone.testing import OpenAIServer, arith_policy, find_expression, scripted_policy, token_ids

TOOLS = [{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}]


def ask(content: str = "What is 12 * (3 + 4)?") -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


def tool_turn(result: str) -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}
    return [
        *ask(),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": result, "tool_call_id": "c1"},
    ]


def test_tool_call_parses_with_the_official_sdk(server: OpenAIServer) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    response = client.chat.completions.create(model="my-model", messages=ask(), tools=TOOLS)  # type: ignore[arg-type]
    choice = response.choices[0]
    assert response.model == "my-model" and response.object == "chat.completion"
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.type == "function" and call.function.name == "calculator"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"expression": "12 * (3 + 4)"}  # type: ignore[union-attr]
    assert response.usage is not None and response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert [m.id for m in client.models.list()] == ["mock"]
    client.close()


def test_answer_after_tool_and_slips_only_when_sampling(server: OpenAIServer, post: Any) -> None:
    url = server.base_url + "/chat/completions"
    server.policy = arith_policy(slip_rate=0.5)
    greedy = {
        post(url, {"model": "m", "messages": tool_turn("84"), "tools": TOOLS, "temperature": 0, "seed": s})[1][
            "choices"
        ][0]["message"]["content"]
        for s in range(20)
    }
    assert greedy == {"The answer is 84."}
    sampled = [
        post(url, {"model": "m", "messages": tool_turn("84"), "tools": TOOLS, "temperature": 1, "seed": s})[1][
            "choices"
        ][0]["message"]["content"]
        for s in range(20)
    ]
    assert set(sampled) == {"The answer is 84.", "The answer is 85."}
    again = [
        post(url, {"model": "m", "messages": tool_turn("84"), "tools": TOOLS, "temperature": 1, "seed": s})[1][
            "choices"
        ][0]["message"]["content"]
        for s in range(20)
    ]
    assert again == sampled  # reproducible from the seed and the conversation


def test_policy_answers_without_tool_or_expression(server: OpenAIServer, post: Any) -> None:
    url = server.base_url + "/chat/completions"
    assert post(url, {"model": "m", "messages": ask()})[1]["choices"][0]["message"]["content"] == "The answer is 0."
    body = {"model": "m", "messages": ask("Tell me a joke."), "tools": TOOLS}
    choice = post(url, body)[1]["choices"][0]
    assert choice["message"]["content"] == "The answer is 0." and choice["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is 12 * (3 + 4)?", "12 * (3 + 4)"),
        ("Compute 7 - 2.5.", "7 - 2.5"),
        ("Q1: what is 2+2", "2+2"),
        ("No maths here, 42 only.", None),
    ],
)
def test_find_expression(text: str, expected: str | None) -> None:
    assert find_expression(text) == expected


def test_logprobs_and_token_ids_like_vllm(server: OpenAIServer, post: Any) -> None:
    url = server.base_url + "/chat/completions"
    status, data, _ = post(url, {"model": "m", "messages": ask(), "tools": TOOLS, "logprobs": True})
    entries = data["choices"][0]["logprobs"]["content"]
    assert status == 200 and len(entries) == data["usage"]["completion_tokens"]
    assert all(-5 < e["logprob"] <= 0 and e["top_logprobs"] == [] for e in entries)
    assert "".join(bytes(e["bytes"]).decode() for e in entries) == "".join(e["token"] for e in entries)
    assert "prompt_token_ids" not in data and "token_ids" not in data["choices"][0]

    body = {
        "model": "m",
        "messages": ask(),
        "logprobs": True,
        "return_tokens_as_token_ids": True,
        "return_token_ids": True,
    }
    _, data, _ = post(url, body)
    choice = data["choices"][0]
    ids = [int(e["token"].removeprefix("token_id:")) for e in choice["logprobs"]["content"]]
    assert ids == choice["token_ids"] == token_ids("The answer is 0.")
    assert len(data["prompt_token_ids"]) == data["usage"]["prompt_tokens"]


def test_stream_bad_json_and_fault_injection(server: OpenAIServer, post: Any) -> None:
    url = server.base_url + "/chat/completions"
    status, data, _ = post(url, {"model": "m", "messages": ask(), "stream": True})
    assert status == 400 and "stream" in data["error"]["message"] and data["error"]["type"] == "invalid_request_error"

    server.fail_next(2, 429)
    status, data, headers = post(url, {"model": "m", "messages": ask()})
    assert status == 429 and data["error"]["code"] == "rate_limit_exceeded" and headers["retry-after"] == "0"
    assert post(url, {"model": "m", "messages": ask()})[0] == 429
    assert post(url, {"model": "m", "messages": ask()})[0] == 200

    server.fail_next(1, 400, message="This model's maximum context length is 8 tokens")
    status, data, _ = post(url, {"model": "m", "messages": ask()})
    assert status == 400 and "maximum context length" in data["error"]["message"]

    server.fail_rate = 1.0
    status, data, _ = post(url, {"model": "m", "messages": ask()})
    assert status == 500 and data["error"]["type"] == "server_error"
    server.fail_rate = 0.0

    server.reject_params = True
    status, data, _ = post(url, {"model": "m", "messages": ask(), "return_token_ids": True})
    assert status == 400 and "return_token_ids" in data["error"]["message"]
    assert server.request_count == 7 and len(server.requests) == 7


def test_requests_not_recorded_when_disabled(post: Any) -> None:
    with OpenAIServer(record_requests=False) as srv:
        post(srv.base_url + "/chat/completions", {"model": "m", "messages": ask()})
        assert srv.request_count == 1 and srv.requests == []


def test_scripted_policy_cycles_or_runs_out(post: Any) -> None:
    replies: list[dict[str, Any] | str] = [
        "one",
        {"content": None, "tool_calls": [{"name": "f", "arguments": "{oops"}]},
    ]
    with OpenAIServer(scripted_policy(replies)) as srv:
        url = srv.base_url + "/chat/completions"
        got = [post(url, {"model": "m", "messages": ask()})[1]["choices"][0]["message"] for _ in range(3)]
        assert [m["content"] for m in got] == ["one", None, "one"]
        assert got[1]["tool_calls"][0]["function"]["arguments"] == "{oops"
    with OpenAIServer(scripted_policy(["only"], cycle=False)) as srv:
        url = srv.base_url + "/chat/completions"
        assert post(url, {"model": "m", "messages": ask()})[0] == 200
        status, data, _ = post(url, {"model": "m", "messages": ask()})
        assert status == 500 and "ran out" in data["error"]["message"]


def test_command_line_server_prints_ready_and_stops_on_sigterm(post: Any) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hone.testing.openai_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("READY http://127.0.0.1:") and line.endswith("/v1")
        status, data, _ = post(line.split()[1] + "/chat/completions", {"model": "m", "messages": ask(), "tools": TOOLS})
        assert status == 200 and data["choices"][0]["finish_reason"] == "tool_calls"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
