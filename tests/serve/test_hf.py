"""`hone serve --model hf:PATH` as a subprocess, serving a tiny random micro-architecture model.

A random model does not call tools; the tool-call path is covered with scripted models in
test_app.py. Here: a well-formed completion, token-exact data, concurrent requests (batched
by HFLocal) and a prompt longer than the context mapped to a 400.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _serve_helpers import CALCULATOR, ServeProcess

pytest.importorskip("torch")
pytest.importorskip("transformers")
if importlib.util.find_spec("hone.models._hf") is None:
    pytest.skip("HFLocal (hone.models._hf, the hf:PATH spec) is not built yet", allow_module_level=True)

from hone.core import ContextOverflow, Message, Sampling, ToolSpec
from hone.models import OpenAICompatible

QUESTION = [{"role": "system", "content": "Use the calculator."}, {"role": "user", "content": "What is 2 + 3?"}]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hone.learn.micro import build_tokenizer, new_micro_model

    tokenizer = build_tokenizer()
    model = new_micro_model(tokenizer, num_hidden_layers=1, hidden_size=64, intermediate_size=128)
    path = tmp_path_factory.mktemp("micro-tiny")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def served(tiny_model: Path) -> Iterator[ServeProcess]:
    args = ["--model", f"hf:{tiny_model}", "--port", "0", "--model-name", "tiny"]
    # One torch thread: two spin-wait against each other on a small CPU shared with other work.
    with ServeProcess(args, env={"OMP_NUM_THREADS": "1"}) as process:
        yield process
        assert process.stop() == 0


def chat(served: ServeProcess, timeout: float = 60, **body: Any) -> httpx.Response:
    payload = {"model": "tiny", "messages": QUESTION, "temperature": 0, "max_tokens": 12, **body}
    return httpx.post(served.url + "/chat/completions", json=payload, timeout=timeout)


def test_well_formed_completion_with_token_ids(served: ServeProcess, tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    response = chat(served, tools=[CALCULATOR], logprobs=True, return_token_ids=True)
    assert response.status_code == 200, response.text
    data = response.json()
    choice = data["choices"][0]
    assert data["object"] == "chat.completion" and data["model"] == "tiny"
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in ("stop", "length", "tool_calls")
    ids, usage = choice["token_ids"], data["usage"]
    assert 0 < len(ids) <= 12 and usage["completion_tokens"] == len(ids)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert len(choice["logprobs"]["content"]) == len(ids)
    assert all(entry["logprob"] <= 0 for entry in choice["logprobs"]["content"])
    # The prompt is the model's own chat template over the messages and tools: token-exact.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    expected = tokenizer.apply_chat_template(QUESTION, tools=[CALCULATOR], add_generation_prompt=True, tokenize=True)
    expected = expected["input_ids"] if isinstance(expected, dict) or hasattr(expected, "keys") else expected
    assert data["prompt_token_ids"] == list(expected) and usage["prompt_tokens"] == len(expected)


def test_hone_client_gets_token_exact_calls_concurrently(served: ServeProcess) -> None:
    async def go() -> list[Any]:
        model = OpenAICompatible("tiny", base_url=served.url)
        tools = [ToolSpec.model_validate(CALCULATOR["function"])]
        try:
            return await asyncio.gather(
                *[
                    model.generate([Message.user(f"What is {i} + {i}?")], tools, Sampling(temperature=0, max_tokens=8))
                    for i in range(8)
                ]
            )
        finally:
            assert not model.disabled  # the server took return_token_ids and logprobs
            await model.aclose()

    calls = asyncio.run(go())
    for call in calls:
        assert call.prompt_token_ids and call.completion_token_ids and call.completion_logprobs
        assert len(call.completion_token_ids) == call.usage.completion_tokens <= 8
        assert len(call.prompt_token_ids) == call.usage.prompt_tokens


def test_prompt_longer_than_the_context_is_a_400(served: ServeProcess) -> None:
    response = chat(served, messages=[{"role": "user", "content": "7 + " * 400}])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    # OpenAI's code for it, so clients that know OpenAI's errors recognise it
    assert error["type"] == "invalid_request_error" and error["code"] == "context_length_exceeded"
    assert "context overflow" in error["message"]

    async def go() -> None:
        model = OpenAICompatible("tiny", base_url=served.url)
        try:
            await model.generate([Message.user("7 + " * 400)], None, Sampling(temperature=0, max_tokens=8))
        finally:
            await model.aclose()

    # hone's client turns it back into the typed error, sizes included, and does not retry it
    with pytest.raises(ContextOverflow, match=r"the prompt is \d+ tokens; tiny has a context of \d+ tokens") as info:
        asyncio.run(go())
    assert info.value.prompt_tokens is not None and info.value.context is not None
    assert info.value.prompt_tokens > info.value.context


def test_a_huge_prompt_blocks_no_other_request(served: ServeProcess) -> None:
    # 5 MB of prompt: seconds of tokenizing (13 s on a loaded 2-core machine), all off the event loop.
    huge = [{"role": "user", "content": "7 + 8 " * (5 * 1024 * 1024 // 6)}]
    done: dict[str, Any] = {}

    def send_huge() -> None:
        done["huge"] = chat(served, messages=huge, timeout=600)
        done["huge_at"] = time.monotonic()

    worker = threading.Thread(target=send_huge)
    worker.start()
    health_url = served.url.removesuffix("/v1") + "/health"
    slowest, answered = 0.0, 0
    small_at = None
    try:
        time.sleep(0.5)  # the body is on its way
        while worker.is_alive():
            start = time.monotonic()
            assert httpx.get(health_url, timeout=60).status_code == 200
            slowest = max(slowest, time.monotonic() - start)
            answered += worker.is_alive()
            if small_at is None:
                assert chat(served, max_tokens=4).status_code == 200
                small_at = time.monotonic()
            time.sleep(0.1)
    finally:
        worker.join()
    assert done["huge"].status_code == 400 and "context" in done["huge"].json()["error"]["message"]
    # /health kept answering while the huge prompt was processed, and a normal request overtook it.
    assert answered >= 3 and slowest < 5.0, (answered, slowest)
    assert small_at is not None and small_at < done["huge_at"]
