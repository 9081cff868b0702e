"""Tool formats: detection from the chat template, the fallback for templates that ignore tools,
parsing each family's calls, and HFLocal never running a model without its offered tools."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from hone.core import ConfigError, Message, ModelError, Sampling, ToolCall, ToolSpec
from hone.learn.micro import build_tokenizer, new_micro_model
from hone.models import HFLocal
from hone.models._hf_engine import GenResult
from hone.models._toolformats import (
    FallbackFormat,
    calls_text,
    detect_format,
    tools_rendered,
)
from hone.models._toolparse import parse_hermes, parse_llama3_json, parse_mistral

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
NOTE = ToolSpec(name="write_note", description="Save a note.")
TOOLS = [CALCULATOR, WEATHER, NOTE]
GREEDY = Sampling(temperature=0, max_tokens=8)
QUESTION = [Message.system("Be brief."), Message.user("What is 12 * (3 + 4)?")]

# SmolLM2-135M-Instruct's chat template (its GGUF's tokenizer.chat_template): ChatML that ignores `tools`.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def chatml_tokenizer(template: str = SMOLLM2_TEMPLATE) -> Any:
    """A character-level tokenizer with only ChatML's special tokens (no tool tags) and `template`."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from hone.learn.micro._tokenizer import vocabulary

    tok = Tokenizer(models.WordLevel(vocab=vocabulary(), unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True) for t in ("<|pad|>", "<|im_start|>", "<|im_end|>", "<|unk|>")])
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|pad|>", unk_token="<|unk|>", chat_template=template
    )


def tiny(tokenizer: Any) -> Any:
    return new_micro_model(tokenizer, num_hidden_layers=1, hidden_size=32, intermediate_size=64)


@pytest.fixture(scope="module")
def smol_like() -> Iterator[HFLocal]:
    tokenizer = chatml_tokenizer()
    model = HFLocal(tiny(tokenizer), tokenizer, name="smol-like", device="cpu", max_new_tokens=8)
    yield model
    model.close()


def force(hf: HFLocal, text: str) -> None:
    """Make the next call 'generate' exactly `text` (its token ids)."""
    ids = hf.tokenizer(text, add_special_tokens=False)["input_ids"]

    async def forced(prompt: list[int], sampling: Sampling) -> GenResult:
        finish = "eos" if ids[-1] in hf.eos_ids else "length"
        return GenResult(list(ids), [-0.5] * len(ids), finish)  # type: ignore[arg-type]

    hf._generate_ids = forced  # type: ignore[method-assign]


# --- never drop tools ---------------------------------------------------------------------


def test_template_that_ignores_tools_gets_the_fallback(smol_like: HFLocal) -> None:
    plain = smol_like.tokenizer.apply_chat_template(
        [m.to_openai() for m in QUESTION],
        tools=[t.to_openai() for t in TOOLS],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert tools_rendered(plain, TOOLS) == ["calculator", "get_weather", "write_note"]  # what hone used to send
    assert smol_like.tool_format.name == "fallback"
    prompt = smol_like.render(QUESTION, TOOLS)
    assert tools_rendered(prompt, TOOLS) == []
    assert prompt.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert '{"name": "get_weather", "description": "The weather in a city.", "parameters": {' in prompt
    assert prompt.endswith("<|im_start|>user\nWhat is 12 * (3 + 4)?<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("maker", ["micro", "smol-like"])
async def test_every_offered_tool_is_in_the_prompt(maker: str, smol_like: HFLocal) -> None:
    if maker == "micro":
        tokenizer = build_tokenizer()
        hf = HFLocal(tiny(tokenizer), tokenizer, name="micro-like", device="cpu", max_new_tokens=4)
        assert hf.tool_format.name == "hermes"
    else:
        hf = smol_like
    call = await hf.generate(QUESTION, TOOLS, GREEDY)
    assert call.tool_format == hf.tool_format.name
    prompt = hf.tokenizer.decode(call.prompt_token_ids or [], skip_special_tokens=False)
    assert tools_rendered(prompt, TOOLS) == []
    if maker == "micro":
        hf.close()


async def test_a_format_that_drops_tools_is_refused() -> None:
    tokenizer = chatml_tokenizer()
    # Declaring a template format for a template that ignores tools is refused before any work...
    with pytest.raises(ConfigError, match=r"^smol-like: tool_format=hermes was declared, but its chat template"):
        HFLocal(tiny(tokenizer), tokenizer, name="smol-like", device="cpu", tool_format="hermes")
    # ...and a prompt that still lacks an offered tool is refused at generation (the last net).
    hf = HFLocal(tiny(tokenizer), tokenizer, name="smol-like", device="cpu")
    hf.tool_format = detect_format(build_tokenizer(), "hermes")
    with pytest.raises(ModelError, match=r"smol-like: the prompt lacks the offered tools calculator, get_weather"):
        await hf.generate(QUESTION, TOOLS, GREEDY)
    # Without tools there is nothing to drop.
    assert (await hf.generate(QUESTION, None, GREEDY)).tool_format == "hermes"
    hf.close()


def test_strict_tools_refuses_the_fallback() -> None:
    tokenizer = chatml_tokenizer()
    with pytest.raises(ConfigError, match=r"^smol: its chat template does not render tools \(strict_tools\)"):
        HFLocal(tiny(tokenizer), tokenizer, name="smol", device="cpu", strict_tools=True)


def test_fallback_markers_that_are_special_tokens_are_refused() -> None:
    tokenizer = build_tokenizer()  # has <tool_call> and <tools> as added tokens
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    with pytest.raises(
        ConfigError, match=r"^qwenish: its tokenizer has the special token '</tool_call>'.*tool_format="
    ):
        detect_format(tokenizer, name="qwenish")


def test_template_in_an_unknown_tool_format_is_refused() -> None:
    template = (
        "{% for t in tools or [] %}TOOL {{ t.function.name }}\n{% endfor %}{% for m in messages %}{{ m.role }}: "
        "{{ m.content or '' }}{% for c in m.tool_calls or [] %}CALL {{ c.function.name }}{% endfor %}\n{% endfor %}"
    )
    with pytest.raises(ConfigError, match=r"^odd: its chat template renders tool calls in a format hone cannot parse"):
        detect_format(chatml_tokenizer(template), name="odd")
    assert detect_format(chatml_tokenizer(template), "fallback").name == "fallback"
    with pytest.raises(ConfigError, match=r"^odd: unknown tool_format 'json'; known: hermes, llama3_json"):
        detect_format(chatml_tokenizer(template), "json", name="odd")


def test_fallback_without_a_system_role_folds_tools_into_the_first_user_message() -> None:
    template = (
        "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    fmt = detect_format(chatml_tokenizer(template))
    assert isinstance(fmt, FallbackFormat) and not fmt.system_role
    conversation, tools = fmt.prepare([Message.user("hi")], [CALCULATOR])
    assert tools is None and conversation[0]["role"] == "user"
    assert conversation[0]["content"].startswith("# Tools\n") and conversation[0]["content"].endswith("\n\nhi")


async def test_fallback_calls_round_trip_token_for_token(smol_like: HFLocal) -> None:
    generated = (
        'Let me compute.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "12*7"}}\n</tool_call>'
    )
    force(smol_like, generated + "<|im_end|>")
    call = await smol_like.generate(QUESTION, TOOLS, GREEDY)
    assert call.tool_format == "fallback" and call.finish_reason == "tool_calls"
    assert call.message.content == "Let me compute."
    (tc,) = call.message.tool_calls or []
    assert (tc.name, tc.arguments, tc.parse_error) == ("calculator", {"expression": "12*7"}, None)
    history = [*QUESTION, call.message, Message.tool("84", tc.id, tc.name)]
    nxt = smol_like.encode(history, TOOLS)
    assert nxt[: len(call.prompt_token_ids or []) + len(call.completion_token_ids or [])] == [
        *(call.prompt_token_ids or []),
        *(call.completion_token_ids or []),
    ]
    tail = smol_like.tokenizer.decode(nxt[len(call.prompt_token_ids or []) :], skip_special_tokens=False)
    assert tail == (
        f"{generated}<|im_end|>\n<|im_start|>user\n<tool_response>\n84\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_fallback_results_of_one_turn_share_a_user_message() -> None:
    calls = [ToolCall(id="a", name="calculator", arguments={"expression": "1"}), ToolCall(id="b", name="write_note")]
    history = [Message.user("go"), Message.assistant(None, calls), Message.tool("1", "a"), Message.tool("ok", "b")]
    conversation, _ = FallbackFormat().prepare(history, None)
    assert conversation == [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": calls_text(None, calls)},
        {"role": "user", "content": "<tool_response>\n1\n</tool_response>\n<tool_response>\nok\n</tool_response>"},
    ]
    assert calls_text(None, calls).endswith('<tool_call>\n{"name": "write_note", "arguments": {}}\n</tool_call>')


# --- parsing ------------------------------------------------------------------------------


def test_hermes_parse_keeps_malformed_calls() -> None:
    content, calls = parse_hermes('ok <tool_call>{"name": "calculator", "arguments": {"expression": "1 +</tool_call>')
    assert content == "ok" and calls[0].parse_error and "invalid JSON in <tool_call>" in calls[0].parse_error
    assert calls[0].name == "calculator"


def test_llama3_json_calls() -> None:
    assert parse_llama3_json('{"name": "calculator", "parameters": {"expression": "2+2"}}') == (
        None,
        [
            ToolCall(
                id="call_0", name="calculator", arguments={"expression": "2+2"}, arguments_raw='{"expression": "2+2"}'
            )
        ],
    )
    _, calls = parse_llama3_json('<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "arguments": {"x":1}}')
    assert [(c.name, c.arguments, c.arguments_raw) for c in calls] == [("a", {}, "{}"), ("b", {"x": 1}, '{"x":1}')]
    assert parse_llama3_json("The answer is 4.") == ("The answer is 4.", [])
    assert parse_llama3_json('{"answer": 4}') == ('{"answer": 4}', [])  # JSON that is not a call
    _, (bad,) = parse_llama3_json('{"name": "calculator", "parameters": {"expression": ')
    assert bad.name == "calculator" and bad.parse_error and "invalid JSON in a Llama 3 tool call" in bad.parse_error
    _, (_, extra) = parse_llama3_json('{"name": "a", "parameters": {}} and more')
    assert extra.parse_error and "text after a Llama 3 tool call" in extra.parse_error


def test_mistral_calls() -> None:
    text = 'Sure.[TOOL_CALLS] [{"name": "calculator", "arguments": {"expression": "2+2"}, "id": "Ab3dE6gH9"}]'
    content, (call,) = parse_mistral(text)
    assert content == "Sure." and (call.id, call.name, call.arguments) == (
        "Ab3dE6gH9",
        "calculator",
        {"expression": "2+2"},
    )
    _, calls = parse_mistral(
        '[TOOL_CALLS]calculator[ARGS]{"expression": "1"}[TOOL_CALLS]note[CALL_ID]Zz9Yy8Xx7[ARGS]{}'
    )
    assert [(c.id, c.name, c.arguments_raw) for c in calls] == [
        ("call_0", "calculator", '{"expression": "1"}'),
        ("Zz9Yy8Xx7", "note", "{}"),
    ]
    _, (bad,) = parse_mistral('[TOOL_CALLS] [{"name": "calculator", "arguments": {')
    assert bad.name == "calculator" and bad.parse_error and "invalid JSON after [TOOL_CALLS]" in bad.parse_error


# --- declared by the user: hf:DIR?tool_format=... and the CLI's notice ---------------------------


@pytest.fixture(scope="module")
def smol_like_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("smol-like")
    tokenizer = chatml_tokenizer()
    tiny(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_hf_spec_options(smol_like_dir: Any) -> None:
    from hone.models import resolve_model

    model = resolve_model(f"hf:{smol_like_dir}?device=cpu&max_new_tokens=4")
    assert isinstance(model, HFLocal) and model.tool_format.name == "fallback" and model.max_new_tokens == 4
    model.close()
    with pytest.raises(ConfigError, match=r"its chat template does not render tools \(strict_tools\)"):
        resolve_model(f"hf:{smol_like_dir}?strict_tools=true")
    with pytest.raises(ConfigError, match=r"strict_tools must be true or false, got 'maybe'"):
        resolve_model(f"hf:{smol_like_dir}?strict_tools=maybe")
    with pytest.raises(ConfigError, match=r"bad option 'format=hermes'; write hf:PATH\?KEY=VALUE&KEY=VALUE"):
        resolve_model(f"hf:{smol_like_dir}?format=hermes")
    declared = resolve_model(f"hf:{smol_like_dir}?tool_format=fallback&device=cpu")
    assert isinstance(declared, HFLocal) and declared.tool_format.name == "fallback"
    declared.close()
    with pytest.raises(ConfigError, match=r"tool_format=hermes was declared, but its chat template does not render"):
        resolve_model(f"hf:{smol_like_dir}?tool_format=hermes&device=cpu")


def test_cli_says_once_that_tools_are_rendered_in_the_fallback_format(smol_like_dir: Any, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from hone.cli import app

    spec = f"hf:{smol_like_dir}?device=cpu&max_new_tokens=4"
    args = ["eval", "arith", "--model", spec, "-n", "2", "--store", str(tmp_path / "h.db"), "--concurrency", "2"]
    result = CliRunner().invoke(app, args)
    line = (
        f"model {smol_like_dir}: its chat template does not render tools; hone renders them in its fallback "
        "format (docs/tool-formats.md)"
    )
    assert result.stderr.count(line) == 1, result.stderr + result.stdout
    from hone.store import open_store

    trajs = list(open_store(str(tmp_path / "h.db")).query())
    assert len(trajs) == 2 and {s.call.tool_format for t in trajs for s in t.steps} == {"fallback"}


def test_docs_show_the_fallback_format_as_hone_writes_it() -> None:
    from pathlib import Path

    from hone.models._toolformats import tools_prompt

    docs = (Path(__file__).parents[2] / "docs" / "tool-formats.md").read_text()
    call = ToolCall(id="x", name="calculator", arguments={"expression": "12 * 7"})
    assert f"```text\n{tools_prompt([CALCULATOR])}\n```" in docs
    assert f"```text\n{calls_text('Let me compute.', [call])}\n```" in docs
    (result,), _ = FallbackFormat().prepare([Message.tool("84", "x")], None)
    assert f"```text\n{result['content']}\n```" in docs


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("qwen2_5", "HermesFormat(dict_arguments=True)"),
        ("qwen3", "HermesFormat(dict_arguments=False)"),
        ("llama3_1", "Llama3JsonFormat(dict_arguments=True)"),
        ("llama3_2", "Llama3JsonFormat(dict_arguments=True)"),
    ],
)
def test_real_templates_are_detected(template: str, expected: str) -> None:
    """Qwen's and Llama's own templates (as TRL ships them); Qwen2.5 JSON-encodes the arguments
    itself, so it gets objects: a string would come out quoted."""
    from importlib.resources import files

    path = files("trl") / "chat_templates" / f"{template}.jinja"
    if not path.is_file():
        pytest.skip(f"TRL ships no {template}.jinja")
    tokenizer = chatml_tokenizer(path.read_text())
    fmt = detect_format(tokenizer)
    assert repr(fmt) == expected
    call = ToolCall(id="c", name="calculator", arguments={"expression": "1+2"}, arguments_raw='{"expression": "1+2"}')
    text = fmt.render(tokenizer, [*QUESTION, Message.assistant(None, [call]), Message.tool("3", "c")], [CALCULATOR])
    key = '"arguments": ' if fmt.name == "hermes" else '"parameters": '
    assert f'"calculator", {key}{{"expression": "1+2"}}' in text and tools_rendered(text, TOOLS[:1]) == []


# Mistral's template rules (Mistral-Nemo's, shortened): 9-character call ids or an exception.
MISTRAL_LIKE = (
    "{%- for m in messages -%}{%- if m.role == 'user' -%}{%- if tools -%}[AVAILABLE_TOOLS]{{ tools | tojson }}"
    "[/AVAILABLE_TOOLS]{%- endif -%}[INST]{{ m.content }}[/INST]{%- elif m.tool_calls -%}[TOOL_CALLS][{%- for c in "
    "m.tool_calls -%}{%- if c.id | length != 9 -%}{{ raise_exception('Tool call IDs should be alphanumeric strings "
    "with length 9!') }}{%- endif -%}{{ c.function | tojson }}{%- endfor -%}]</s>{%- elif m.role == 'tool' -%}"
    "{%- if m.tool_call_id | length != 9 -%}{{ raise_exception('bad id') }}{%- endif -%}[TOOL_RESULTS]"
    '{"content": {{ m.content }}, "call_id": "{{ m.tool_call_id }}"}[/TOOL_RESULTS]'
    "{%- elif m.role == 'assistant' -%}{{ m.content }}</s>{%- endif -%}{%- endfor -%}"
)


def test_mistral_template_without_mistral_common_files_gets_9_character_ids() -> None:
    from hone.models._toolformats_mistral import MistralTemplateFormat, mistral_call_id

    tokenizer = chatml_tokenizer(MISTRAL_LIKE)
    fmt = detect_format(tokenizer)
    assert isinstance(fmt, MistralTemplateFormat)
    call = ToolCall(id="call_0", name="calculator", arguments={"expression": "1+2"})
    text = fmt.render(tokenizer, [*QUESTION, Message.assistant(None, [call]), Message.tool("3", "call_0")], TOOLS)
    short = mistral_call_id("call_0")
    assert len(short) == 9 and short.isalnum() and mistral_call_id(short) == short
    assert f'[TOOL_RESULTS]{{"content": 3, "call_id": "{short}"}}[/TOOL_RESULTS]' in text
    assert tools_rendered(text, TOOLS) == []


def test_a_tool_named_in_the_conversation_is_not_taken_for_a_rendered_one() -> None:
    spec = TOOLS[0]
    said = [Message.system(f"Use the {spec.name} tool."), Message.user("What is 2 + 2?")]
    # The name occurs once, in the system prompt only: the tool document is missing.
    assert tools_rendered(f"Use the {spec.name} tool.\\nWhat is 2 + 2?", [spec], said) == [spec.name]
    assert tools_rendered(f"<tools>{spec.name}</tools>\\nUse the {spec.name} tool.", [spec], said) == []
