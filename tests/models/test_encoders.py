"""hone's prompt ids for a multi-turn tool conversation against authoritative encoders, token for token.

One script (system, user, assistant tool call, tool result, assistant answer, a second user turn,
another call, result and answer) is played through `HFLocal` on a tiny random Llama paired with a
real tokenizer. At each assistant turn the model is forced (`ForcedTokens`: its real forward pass,
only the argmax fixed) to emit what the authoritative encoder says that model family emits; hone
parses it, and the next prompt is hone's own encoding of the history it built. Every prompt must
equal the authoritative encoding of the reference conversation, and `hone data check`
(`check_tokenization`) must find no mismatch, or exactly the ones the format implies.

Authorities: mistral-common's request encoder (`ChatCompletionRequest`, `MistralTokenizer` from
the tokenizer files the package ships: SentencePiece v3 and Tekken); transformers'
`apply_chat_template` with Qwen2.5's and Llama 3.1's own chat templates (as TRL ships them,
byte-identical to llama.cpp's copies) on SmolLM2's real BPE tokenizer; SmolLM2's own template for
hone's fallback format. Skipped with the reason when a package cannot be had.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from hone.core import Message, Sampling, Step, ToolSpec, Trajectory
from hone.learn.data import check_tokenization
from hone.models import HFLocal
from hone.models._toolformats import tools_prompt
from hone.testing.local import ForcedTokens

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TOOLS = [CALCULATOR, WEATHER]
SCRIPT: list[tuple[str, ...]] = [
    ("system", "You are terse."),
    ("user", "What is 12 * 7?"),
    ("call", "calculator", '{"expression": "12 * 7"}'),
    ("tool", "84"),
    ("answer", "12 * 7 = 84."),
    ("user", "And the weather in Paris?"),
    ("call", "get_weather", '{"city": "Paris"}'),
    ("tool", '{"temp_c": 18, "sky": "clear"}'),
    ("answer", "18 °C, clear."),
]
CACHE = Path.home() / ".cache" / "hone" / "tests"
MISTRAL_IDS = ["a1B2c3D4e", "Z9y8X7w6V"]  # the 9-character call ids a Mistral model writes


@dataclass
class Case:
    """A model under test and its authority: the prompt ids before script item `i`, and the ids the
    model family emits for assistant item `i` (eos included)."""

    hf: HFLocal
    prompt: Callable[[int], list[int]]
    completion: Callable[[int], list[int]]


@dataclass
class Played:
    trajectory: Trajectory
    compared: list[tuple[list[int], list[int]]]  # (authoritative, hone) prompt ids per assistant turn


def tiny_model(tokenizer: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    eos = tokenizer.eos_token_id
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        eos_token_id=eos,
        bos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def local(tokenizer: Any, name: str) -> HFLocal:
    return HFLocal(tiny_model(tokenizer), tokenizer, name=name, device="cpu")


async def play(case: Case) -> Played:
    """Run the script through hone: forced assistant turns, hone-built history, recorded calls."""
    hf = case.hf
    forced = ForcedTokens(hf.model)
    history: list[Message] = []
    steps: list[Step] = []
    compared: list[tuple[list[int], list[int]]] = []
    try:
        for i, item in enumerate(SCRIPT):
            kind = item[0]
            if kind in ("system", "user"):
                message = Message(role=kind, content=item[1])
                history.append(message)
                if steps:
                    steps[-1].observations.append(message)
            elif kind == "tool":
                (call,) = steps[-1].call.message.tool_calls or []
                message = Message.tool(item[1], call.id, call.name)
                history.append(message)
                steps[-1].observations.append(message)
            else:
                completion = case.completion(i)
                prompt = hf.encode(history, TOOLS)
                forced.clear()
                forced.force(len(prompt), completion)
                done = await hf.generate(history, TOOLS, Sampling(temperature=0, max_tokens=len(completion) + 8))
                assert done.completion_token_ids == completion, f"item {i}: the forced tokens were not generated"
                compared.append((case.prompt(i), list(done.prompt_token_ids or [])))
                steps.append(Step(call=done))
                history.append(done.message)
                if kind == "call":
                    (call,) = done.message.tool_calls or []
                    assert (call.name, call.arguments, call.parse_error) == (item[1], json.loads(item[2]), None)
                else:
                    assert done.message.content == item[1] and not done.message.tool_calls
    finally:
        forced.remove()
    traj = Trajectory(task_id="script", env="script", model=hf.name, prompt=history[:2], tools=TOOLS, steps=steps)
    return Played(traj, compared)


def assert_equal_ids(played: Played) -> int:
    """Every hone prompt equals the authority's, token for token; returns how many tokens were compared."""
    for turn, (expected, got) in enumerate(played.compared):
        first = next((k for k, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), None)
        assert (first, len(got)) == (None, len(expected)), f"turn {turn}: first differing token {first}"
    return sum(len(expected) for expected, _ in played.compared)


# --- transformers' apply_chat_template: Qwen2.5 (Hermes) and Llama 3.1 (JSON) --------------------


def openai_reference(ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The script as a transformers user writes it: arguments as objects, results as `tool` messages."""
    out: list[dict[str, Any]] = []
    calls = 0
    for kind, *rest in SCRIPT:
        if kind in ("system", "user"):
            out.append({"role": kind, "content": rest[0]})
        elif kind == "call":
            call_id = ids[calls] if ids else f"call_{calls}"
            function = {"name": rest[0], "arguments": json.loads(rest[1])}
            out.append({"role": "assistant", "tool_calls": [{"id": call_id, "type": "function", "function": function}]})
            calls += 1
        elif kind == "tool":
            out.append({"role": "tool", "tool_call_id": out[-1]["tool_calls"][0]["id"], "content": rest[0]})
        else:
            out.append({"role": "assistant", "content": rest[0]})
    return out


def template_case(tokenizer: Any, name: str, eos: str, reference: list[dict[str, Any]], tools: Any) -> Case:
    def render(upto: int, generation: bool) -> str:
        return str(
            tokenizer.apply_chat_template(
                reference[:upto], tools=tools, add_generation_prompt=generation, tokenize=False
            )
        )

    def prompt(i: int) -> list[int]:
        return list(
            tokenizer.apply_chat_template(
                reference[:i], tools=tools, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )

    def completion(i: int) -> list[int]:
        before, after = render(i, True), render(i + 1, False)
        assert after.startswith(before), f"{name}: the template's assistant turn {i} does not extend its prompt"
        text = after[len(before) :]
        return list(tokenizer(text[: text.index(eos) + len(eos)], add_special_tokens=False)["input_ids"])

    return Case(local(tokenizer, name), prompt, completion)


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


def trl_template(name: str) -> str:
    from importlib.resources import files

    path = files("trl") / "chat_templates" / f"{name}.jinja"
    if not path.is_file():
        pytest.skip(f"TRL ships no {name}.jinja chat template in this version")
    return path.read_text()


def llama3_tokenizer() -> tuple[Any, Any]:
    """Llama 3's real tokenizer: the tiktoken file Meta's `llama-models` package ships, converted with
    transformers' `TikTokenConverter`, and Meta's own `Tokenizer` on the same file (the authority)."""
    pytest.importorskip("tiktoken", reason="the Llama 3 tokenizer needs tiktoken: pip install -e '.[dev]'")
    meta = pytest.importorskip("llama_models.llama3.tokenizer", reason="Llama 3's tokenizer: pip install llama-models")
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    file = Path(meta.__file__).parent / "tokenizer.model"
    reference = meta.Tokenizer(file)
    converted = TikTokenConverter(vocab_file=str(file), pattern=reference.pat_str).converted()
    specials = sorted(reference.special_tokens, key=reference.special_tokens.get)  # ids 128000...
    converted.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=converted, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"
    )
    return tokenizer, reference


@pytest.fixture(scope="module")
def qwen(smol_tokenizer: Any) -> Iterator[Case]:
    tokenizer = copy.deepcopy(smol_tokenizer)
    tokenizer.chat_template = trl_template("qwen2_5")
    case = template_case(tokenizer, "qwen2_5", "<|im_end|>", openai_reference(), [t.to_openai() for t in TOOLS])
    yield case
    case.hf.close()


@pytest.fixture(scope="module")
def llama() -> Iterator[tuple[Case, Any]]:
    tokenizer, meta = llama3_tokenizer()
    tokenizer.chat_template = trl_template("llama3_1")
    case = template_case(tokenizer, "llama3_1", "<|eot_id|>", openai_reference(), [t.to_openai() for t in TOOLS])
    yield case, meta
    case.hf.close()


async def test_qwen2_5_hermes_ids_equal_the_template(qwen: Case) -> None:
    assert qwen.hf.tool_format.name == "hermes"
    played = await play(qwen)
    assert assert_equal_ids(played) > 600
    report = check_tokenization([played.trajectory], qwen.hf.tokenizer)
    assert report.ok and report.steps == 4, report.summary()


async def test_llama3_1_json_ids_equal_the_template(llama: tuple[Case, Any]) -> None:
    case, meta = llama
    assert case.hf.tool_format.name == "llama3_json"
    played = await play(case)
    assert assert_equal_ids(played) > 600
    first = played.trajectory.steps[0].call
    assert case.hf.tokenizer.decode(first.completion_token_ids) == (
        '{"name": "calculator", "parameters": {"expression": "12 * 7"}}<|eot_id|>'
    )
    # The converted tokenizer is Meta's: the last prompt's text encodes to the same ids with tiktoken.
    last = played.trajectory.steps[-1].call.prompt_token_ids or []
    assert meta.model.encode(case.hf.tokenizer.decode(last), allowed_special="all") == last
    report = check_tokenization([played.trajectory], case.hf.tokenizer)
    assert report.ok and report.steps == 4, report.summary()


# --- SmolLM2's own template: hone's fallback format -----------------------------------------------


def fallback_reference() -> list[dict[str, Any]]:
    """The script written out by hand as docs/tool-formats.md describes the fallback format."""
    out: list[dict[str, Any]] = []
    for kind, *rest in SCRIPT:
        if kind == "system":
            out.append({"role": "system", "content": f"{rest[0]}\n\n{tools_prompt(TOOLS)}"})
        elif kind == "user":
            out.append({"role": "user", "content": rest[0]})
        elif kind == "call":
            body = f'{{"name": "{rest[0]}", "arguments": {rest[1]}}}'
            out.append({"role": "assistant", "content": f"<tool_call>\n{body}\n</tool_call>"})
        elif kind == "tool":
            out.append({"role": "user", "content": f"<tool_response>\n{rest[0]}\n</tool_response>"})
        else:
            out.append({"role": "assistant", "content": rest[0]})
    return out


async def test_smollm2_fallback_ids_equal_its_template(smol_tokenizer: Any) -> None:
    case = template_case(smol_tokenizer, "smollm2", "<|im_end|>", fallback_reference(), None)
    try:
        assert case.hf.tool_format.name == "fallback"
        played = await play(case)
    finally:
        case.hf.close()
    assert assert_equal_ids(played) > 800
    report = check_tokenization([played.trajectory], smol_tokenizer)
    assert report.ok and report.steps == 4, report.summary()


# --- mistral-common: SentencePiece v3 and Tekken ---------------------------------------------------


def mistral_file(name: str) -> Path:
    common = pytest.importorskip("mistral_common", reason="Mistral tests need mistral-common: pip install -e '.[dev]'")
    path = Path(common.__file__).parent / "data" / name
    if not path.is_file():
        pytest.skip(f"mistral-common {common.__version__} ships no {name}")
    return path


def mistral_case(file: Path, folder: Path, tokenizer_kind: str) -> tuple[Case, Any]:
    """hone with the model's Hugging Face tokenizer, against mistral-common's encoder on the same file."""
    from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, ToolMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.protocol.instruct.tool_calls import Function, FunctionCall, Tool, ToolCall
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ("tekken.json" if file.suffix == ".json" else "tokenizer.model.v3")
    if not target.is_file() or target.read_bytes() != file.read_bytes():
        target.write_bytes(file.read_bytes())
    if tokenizer_kind == "mistral-common":
        from transformers.tokenization_mistral_common import MistralCommonBackend

        tokenizer = MistralCommonBackend.from_pretrained(folder)
    else:  # transformers' own conversion of tekken.json (slow: kept in the folder); hone finds the file beside it
        from transformers import AutoTokenizer

        if not (folder / "tokenizer.json").is_file():
            converted = AutoTokenizer.from_pretrained(folder)
            converted.bos_token, converted.eos_token = "<s>", "</s>"  # a model's tokenizer_config.json names them
            converted.save_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    mistral = MistralTokenizer.from_file(str(file))
    tools = [Tool(function=Function(name=t.name, description=t.description, parameters=t.parameters)) for t in TOOLS]
    reference: list[Any] = []
    calls = 0
    for kind, *rest in SCRIPT:
        if kind == "system":
            reference.append(SystemMessage(content=rest[0]))
        elif kind == "user":
            reference.append(UserMessage(content=rest[0]))
        elif kind == "call":
            call = ToolCall(id=MISTRAL_IDS[calls], function=FunctionCall(name=rest[0], arguments=rest[1]))
            reference.append(AssistantMessage(content=None, tool_calls=[call]))
            calls += 1
        elif kind == "tool":
            reference.append(ToolMessage(content=rest[0], tool_call_id=MISTRAL_IDS[calls - 1]))
        else:
            reference.append(AssistantMessage(content=rest[0]))

    def prompt(i: int) -> list[int]:
        request = ChatCompletionRequest(messages=reference[:i], tools=tools)
        return list(mistral.encode_chat_completion(request).tokens)

    def completion(i: int) -> list[int]:
        return list(mistral.instruct_tokenizer.encode_assistant_message(reference[i], False))

    return Case(local(tokenizer, file.name), prompt, completion), tokenizer


@pytest.mark.parametrize(
    ("file", "kind"),
    [("mistral_instruct_tokenizer_240323.model.v3", "mistral-common"), ("tekken_240718.json", "converted")],
)
async def test_mistral_ids_equal_mistral_common(file: str, kind: str) -> None:
    path = mistral_file(file)
    folder = CACHE / "mistral" / f"{path.name}-{kind}"  # tokenizer folders only, rebuilt when missing
    case, tokenizer = mistral_case(path, folder, kind)
    try:
        assert case.hf.tool_format.name == "mistral"
        played = await play(case)
    finally:
        case.hf.close()
    assert assert_equal_ids(played) > 600
    calls = [s.call.message.tool_calls for s in played.trajectory.steps]
    assert [c[0].id for c in calls if c] == MISTRAL_IDS  # the model's own ids, rendered back
    report = check_tokenization([played.trajectory], tokenizer)
    # mistral-common moves [AVAILABLE_TOOLS] and the system prompt to the last user message, so the
    # second user turn re-encodes the whole history: exactly one prefix break, at token 1 of step 2.
    assert [(m.step_index, m.kind, m.position) for m in report.mismatches] == [(2, "prefix", 1)], report.summary()
    assert report.steps == 4 and report.by_kind() == {"prefix": 1}
