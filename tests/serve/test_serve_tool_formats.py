"""`hone serve` returns native OpenAI `tool_calls` whatever the model's tool format.

Through the real HTTP server (uvicorn in a thread): a tiny random Llama with SmolLM2-135M-Instruct's
real tokenizer, under its own template (tools ignored: hone's fallback format), Qwen2.5's template
(Hermes `<tool_call>`) and Llama 3.2's (JSON calls), as TRL ships them; and with the real Mistral
tokenizers mistral-common ships (SentencePiece v3 through transformers' `MistralCommonBackend`, Tekken
converted by transformers), whose prompts mistral-common encodes (`[TOOL_CALLS]`). Replies are forced
(`ForcedReplies`: the real engine runs, only the argmax is fixed) to what each format's model writes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _serve_helpers import CALCULATOR, serving

pytest.importorskip("torch")
pytest.importorskip("transformers")

from hone.models import HFLocal
from hone.testing.local import ForcedReplies

CALL = {"expression": "3 + 11"}
MISTRAL_ID = "a1B2c3D4e"  # the 9-character call id a Mistral model writes
MISTRAL_CALL = '[TOOL_CALLS][{"name": "calculator", "arguments": {"expression": "3 + 11"}, "id": "' + MISTRAL_ID + '"}]'
# What a model of each format writes to call the calculator.
CALL_TEXT = {
    "fallback": '<tool_call>\n{"name": "calculator", "arguments": {"expression": "3 + 11"}}\n</tool_call>',
    "hermes": '<tool_call>\n{"name": "calculator", "arguments": {"expression": "3 + 11"}}\n</tool_call>',
    "llama3_json": '{"name": "calculator", "parameters": {"expression": "3 + 11"}}',
    "mistral_v3": MISTRAL_CALL,
    "mistral_tekken": MISTRAL_CALL,
}
TEMPLATE = {"fallback": None, "hermes": "qwen2_5.jinja", "llama3_json": "llama3_2.jinja"}
# mistral-common's tokenizer files, and the Hugging Face tokenizer kind each is paired with.
MISTRAL = {
    "mistral_v3": ("mistral_instruct_tokenizer_240323.model.v3", "mistral-common"),
    "mistral_tekken": ("tekken_240718.json", "converted"),
}
QUESTION = [{"role": "system", "content": "Use the calculator."}, {"role": "user", "content": "Compute: 3 + 11"}]
CACHE = Path.home() / ".cache" / "hone" / "tests" / "mistral"  # shared with tests/models/test_encoders.py


@dataclass
class Served:
    case: str
    model: ForcedReplies
    url: str
    mistral: Any = None  # mistral-common's MistralTokenizer on the same file (Mistral cases)

    @property
    def format(self) -> str:
        return "mistral" if self.case in MISTRAL else self.case


class MistralForced(ForcedReplies):
    """`ForcedReplies` for a Mistral model: text is encoded by mistral-common, `[TOOL_CALLS]` as its
    control token (a Hugging Face Mistral tokenizer may read it as plain text)."""

    def __init__(self, model: Any, mistral: Any) -> None:
        super().__init__(model)
        self.mistral = mistral

    def ids(self, text: str) -> list[int]:
        inner = self.mistral.instruct_tokenizer.tokenizer
        marker = (getattr(inner, "get_special_token", None) or inner.get_control_token)("[TOOL_CALLS]")
        out: list[int] = []
        for i, part in enumerate(text.split("[TOOL_CALLS]")):
            out += [marker] if i else []
            out += inner.encode(part, bos=False, eos=False) if part else []
        return [*out, inner.eos_id]


@pytest.fixture(scope="module")
def smol_tokenizer() -> Any:
    pytest.importorskip("gguf", reason="the SmolLM2 tokenizer comes from a GGUF file: pip install 'hone[gguf]'")
    from transformers import AutoTokenizer

    from hone.models._gguf import convert
    from hone.testing.local import smollm2_gguf

    file, why = smollm2_gguf()
    if file is None:
        pytest.skip(f"SmolLM2 GGUF unavailable: {why}")
    folder, _ = convert(file)  # cached under ~/.cache/hone/gguf after the first run
    return AutoTokenizer.from_pretrained(folder)


def mistral_tokenizers(case: str) -> tuple[Any, Any]:
    """The Hugging Face tokenizer of a Mistral model folder holding mistral-common's file, and
    mistral-common's own `MistralTokenizer` on that file."""
    common = pytest.importorskip("mistral_common", reason="Mistral cases need mistral-common: pip install -e '.[dev]'")
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    name, kind = MISTRAL[case]
    file = Path(common.__file__).parent / "data" / name
    if not file.is_file():
        pytest.skip(f"mistral-common {common.__version__} ships no {name}")
    folder = CACHE / f"{name}-{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ("tekken.json" if file.suffix == ".json" else "tokenizer.model.v3")
    if not target.is_file() or target.read_bytes() != file.read_bytes():
        target.write_bytes(file.read_bytes())
    if kind == "mistral-common":
        from transformers.tokenization_mistral_common import MistralCommonBackend

        tokenizer = MistralCommonBackend.from_pretrained(folder)
    else:  # transformers' conversion of tekken.json (slow: kept in the folder); hone finds the file beside it
        from transformers import AutoTokenizer

        if not (folder / "tokenizer.json").is_file():
            converted = AutoTokenizer.from_pretrained(folder)
            converted.bos_token, converted.eos_token = "<s>", "</s>"  # a model's tokenizer_config.json names them
            converted.save_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    return tokenizer, MistralTokenizer.from_file(str(file))


@pytest.fixture(scope="module", params=list(CALL_TEXT))
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    case = request.param
    mistral = None
    if case in MISTRAL:
        tokenizer, mistral = mistral_tokenizers(case)
    else:
        tokenizer = request.getfixturevalue("smol_tokenizer")
    if TEMPLATE.get(case) is not None:
        from importlib.resources import files

        path = files("trl") / "chat_templates" / TEMPLATE[case]
        if not path.is_file():
            pytest.skip(f"TRL ships no {TEMPLATE[case]} in this version")
        tokenizer = copy.deepcopy(tokenizer)
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
    hf = HFLocal(LlamaForCausalLM(config), tokenizer, name=case, device="cpu", max_new_tokens=64)
    model = ForcedReplies(hf) if mistral is None else MistralForced(hf, mistral)
    served = Served(case, model, "", mistral)
    assert hf.tool_format.name == served.format
    with serving(model, name="tiny") as server:
        served.url = server.base_url
        yield served
    hf.close()


def post_raw(url: str, **body: Any) -> httpx.Response:
    payload = {"model": "tiny", "temperature": 0, "max_tokens": 64, "tools": [CALCULATOR], **body}
    return httpx.post(url + "/chat/completions", json=payload, timeout=120)


def post(url: str, **body: Any) -> dict[str, Any]:
    response = post_raw(url, **body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def mistral_call() -> Any:
    """The calculator call as mistral-common's assistant message."""
    from mistral_common.protocol.instruct.messages import AssistantMessage
    from mistral_common.protocol.instruct.tool_calls import FunctionCall, ToolCall

    call = ToolCall(id=MISTRAL_ID, function=FunctionCall(name="calculator", arguments=json.dumps(CALL)))
    return AssistantMessage(content=None, tool_calls=[call])


def mistral_prompt(mistral: Any, with_result: bool) -> list[int]:
    """mistral-common's prompt ids for the question (and the call and its result), built from its own types."""
    from mistral_common.protocol.instruct.messages import SystemMessage, ToolMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.tool_calls import Function, Tool

    messages: list[Any] = [SystemMessage(content=QUESTION[0]["content"]), UserMessage(content=QUESTION[1]["content"])]
    if with_result:
        messages += [mistral_call(), ToolMessage(content="14", tool_call_id=MISTRAL_ID)]
    tools = [Tool(function=Function(**CALCULATOR["function"]))]
    return list(mistral.encode_chat_completion(ChatCompletionRequest(messages=messages, tools=tools)).tokens)


def test_tool_call_comes_back_native_and_its_result_is_rendered(served: Served) -> None:
    model, url = served.model, served.url
    model.replies = [CALL_TEXT[served.case]]
    data = post(url, messages=QUESTION, return_token_ids=True)
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and not choice["message"].get("content")
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "calculator"
    assert json.loads(call["function"]["arguments"]) == CALL and call["id"]
    if served.mistral is not None:
        # The model's own call id comes back; the prompt and the reply are mistral-common's ids.
        assert call["id"] == MISTRAL_ID
        assert data["prompt_token_ids"] == mistral_prompt(served.mistral, with_result=False)
        written = served.mistral.instruct_tokenizer.encode_assistant_message(mistral_call(), False)
        assert choice["token_ids"] == list(written)
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
    prompt = model.tool_format.decode(model.tokenizer, data["prompt_token_ids"])
    assert "calculator" in prompt and "3 + 11" in prompt and "14" in prompt.split("Compute: 3 + 11")[-1]
    if served.mistral is not None:
        assert data["prompt_token_ids"] == mistral_prompt(served.mistral, with_result=True)


def test_a_malformed_call_comes_back_as_text(served: Served) -> None:
    model, url = served.model, served.url
    broken = CALL_TEXT[served.case].replace('"3 + 11"}', '"3 + 11"')  # the arguments' object is never closed
    model.replies = [broken]
    choice = post(url, messages=QUESTION)["choices"][0]
    assert choice["finish_reason"] == "stop" and not choice["message"].get("tool_calls")
    assert choice["message"]["content"] == broken


def test_a_malformed_call_under_tool_choice_required_is_a_typed_error(served: Served) -> None:
    model, url = served.model, served.url
    model.replies = [CALL_TEXT[served.case].replace('"3 + 11"}', '"3 + 11"')]
    response = post_raw(url, messages=QUESTION, tool_choice="required")
    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_model_output" and "did not call a tool" in error["message"]
