"""`hone serve` returns native OpenAI `tool_calls` whatever the model's tool format.

Through the real HTTP server (uvicorn in a thread): a tiny random Llama with SmolLM2-135M-Instruct's
real tokenizer, under its own template (tools ignored: hone's fallback format), Qwen2.5's template
(Hermes `<tool_call>`) and Llama 3.2's (JSON calls), as TRL ships them. Replies are forced
(`ForcedReplies`: the real engine runs, only the argmax is fixed) to what each format's model writes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _serve_helpers import CALCULATOR, serving

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf", reason="the SmolLM2 tokenizer comes from a GGUF file: pip install 'hone[gguf]'")

from hone.models import HFLocal
from hone.models._gguf import convert
from hone.testing.local import ForcedReplies, smollm2_gguf

CALL = {"expression": "3 + 11"}
# What a model of each format writes to call the calculator.
CALL_TEXT = {
    "fallback": '<tool_call>\n{"name": "calculator", "arguments": {"expression": "3 + 11"}}\n</tool_call>',
    "hermes": '<tool_call>\n{"name": "calculator", "arguments": {"expression": "3 + 11"}}\n</tool_call>',
    "llama3_json": '{"name": "calculator", "parameters": {"expression": "3 + 11"}}',
}
TEMPLATE = {"fallback": None, "hermes": "qwen2_5.jinja", "llama3_json": "llama3_2.jinja"}
QUESTION = [{"role": "system", "content": "Use the calculator."}, {"role": "user", "content": "Compute: 3 + 11"}]


@pytest.fixture(scope="module")
def smol_tokenizer() -> Any:
    file, why = smollm2_gguf()
    if file is None:
        pytest.skip(f"SmolLM2 GGUF unavailable: {why}")
    from transformers import AutoTokenizer

    folder, _ = convert(file)  # cached under ~/.cache/hone/gguf after the first run
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module", params=list(TEMPLATE))
def served(request: pytest.FixtureRequest, smol_tokenizer: Any) -> Iterator[tuple[str, ForcedReplies, str]]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fmt = request.param
    tokenizer = smol_tokenizer
    if TEMPLATE[fmt] is not None:
        from importlib.resources import files

        path = files("trl") / "chat_templates" / TEMPLATE[fmt]
        if not path.is_file():
            pytest.skip(f"TRL ships no {TEMPLATE[fmt]} in this version")
        tokenizer = copy.deepcopy(smol_tokenizer)
        tokenizer.chat_template = path.read_text()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    )
    torch.manual_seed(0)
    hf = HFLocal(LlamaForCausalLM(config), tokenizer, name=fmt, device="cpu", max_new_tokens=64)
    assert hf.tool_format.name == fmt
    model = ForcedReplies(hf)
    with serving(model, name="tiny") as server:
        yield fmt, model, server.base_url
    hf.close()


def post(url: str, **body: Any) -> dict[str, Any]:
    payload = {"model": "tiny", "temperature": 0, "max_tokens": 64, "tools": [CALCULATOR], **body}
    response = httpx.post(url + "/chat/completions", json=payload, timeout=120)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_tool_call_comes_back_native_and_its_result_is_rendered(served: tuple[str, ForcedReplies, str]) -> None:
    fmt, model, url = served
    model.replies = [CALL_TEXT[fmt]]
    data = post(url, messages=QUESTION)
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and not choice["message"].get("content")
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "calculator"
    assert json.loads(call["function"]["arguments"]) == CALL and call["id"]
    # The client sends the call and its result back; the model answers in words.
    history = [
        *QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "14"},
    ]
    model.replies = ["The answer is 14."]
    data = post(url, messages=history, return_token_ids=True)
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["content"] == "The answer is 14."
    assert not choice["message"].get("tool_calls")
    prompt = model.tokenizer.decode(data["prompt_token_ids"])
    assert "calculator" in prompt and "3 + 11" in prompt and "14" in prompt.split("Compute: 3 + 11")[-1]


def test_a_malformed_call_comes_back_as_text(served: tuple[str, ForcedReplies, str]) -> None:
    fmt, model, url = served
    broken = CALL_TEXT[fmt].replace('"3 + 11"}', '"3 + 11"')  # the arguments' object is never closed
    model.replies = [broken]
    choice = post(url, messages=QUESTION)["choices"][0]
    assert choice["finish_reason"] == "stop" and not choice["message"].get("tool_calls")
    assert choice["message"]["content"] == broken
