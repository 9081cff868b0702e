"""The micro-tools tokenizer and chat template: round trips on toolgen documents, hone's hermes
format reading the template back, prompt prefixes, held-out names, determinism, plain loading."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")

from hone.core import Message, ToolCall, ToolSpec
from hone.envs import make_env
from hone.envs.build import BuiltEnv
from hone.learn.micro_tools import (
    MARKUP_TOKENS,
    SPECIAL_TOKENS,
    build_tokenizer,
    render,
    toolgen_corpus,
)
from hone.learn.micro_tools._corpus import tool_dict
from hone.models._toolformat_base import tools_rendered
from hone.models._toolparse import parse_hermes

VOCAB = 512  # small corpus, small vocabulary: the real one is built by `build_tokenizer()`


@pytest.fixture(scope="module")
def env() -> BuiltEnv:
    built = make_env("toolgen")
    assert isinstance(built, BuiltEnv)
    return built


@pytest.fixture(scope="module")
def corpus(env: BuiltEnv) -> list[str]:
    return list(toolgen_corpus(env, limit=240))  # every level (tasks come level by level)


@pytest.fixture(scope="module")
def tok(corpus: list[str]) -> Any:
    return build_tokenizer(corpus, VOCAB)


def tiny_model(tokenizer: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def all_tools(env: BuiltEnv) -> list[dict[str, Any]]:
    return [tool_dict(d) for s in env.scenarios.values() for d in s.tools]


NASTY = 'Zoë said "hi"\n\tthen: {"a": [1, 2.5e-3]} \\ ☃ 日本 — ok\r\n'
WEATHER = ToolSpec(
    name="weather_get",
    description="Get the\nweather forecast.",
    parameters={
        "type": "object",
        "properties": {
            "coordinates": {"type": "array", "items": {"type": "number"}, "description": "Latitude, longitude."},
            "unit": {"type": "string", "enum": ["C", "F"], "description": "The unit."},
            "days": {"type": "integer", "default": 7},
            "where": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "A city."}},
                "required": ["city"],
            },
        },
        "required": ["coordinates", "unit"],
    },
)
NOTE = ToolSpec(
    name="note_add",
    description="Add a note.",
    parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
)


def test_round_trip_every_toolgen_document_and_unicode_calls(env: BuiltEnv, tok: Any) -> None:
    for tool in all_tools(env):  # held-out scenarios' too: unseen text still encodes exactly
        text = render([], [tool])
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text, tool["function"]["name"]
    args = json.dumps({"text": NASTY}, ensure_ascii=False)
    messages = [
        {"role": "user", "content": NASTY},
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "note_add", "arguments": args}}]},
        {"role": "tool", "content": NASTY},
        {"role": "assistant", "content": NASTY},
    ]
    text = render(messages, [NOTE.to_openai()])
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert tok.unk_token_id is None or tok.unk_token_id not in ids  # bytes: nothing is unknown


def test_special_and_markup_tokens_are_single_ids(tok: Any) -> None:
    ids = [tok.encode(t, add_special_tokens=False) for t in (*SPECIAL_TOKENS, *MARKUP_TOKENS)]
    assert ids == [[i] for i in range(7)]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|pad|>" and len(tok) == VOCAB
    text = '<|im_start|>assistant\n<tool_call>{"name": "x"}</tool_call><|im_end|>'
    # Control tokens drop out when asked; the markup a parser reads stays.
    assert tok.decode(tok.encode(text, add_special_tokens=False), skip_special_tokens=True) == (
        'assistant\n<tool_call>{"name": "x"}</tool_call>'
    )
    # Nothing learned to spell a markup token out of plain text.
    learned = [t for t in tok.get_vocab() if t not in (*SPECIAL_TOKENS, *MARKUP_TOKENS)]
    assert len(learned) == VOCAB - 7 and not [t for t in learned if re.search(r"tool_call>|<tools|\|im_", t)]


DOCS = (
    "<|im_start|>system\n<tools>\n"
    "* Get the weather forecast.\n"
    "weather_get\n"
    "- coordinates (array of number): Latitude, longitude.\n"
    '- unit (string, one of "C", "F"): The unit.\n'
    "- days (integer, optional, default 7)\n"
    "- where (object, optional)\n"
    "  - city (string): A city.\n"
    "* Add a note.\n"
    "note_add\n"
    "- text (string)\n"
    "</tools><|im_end|>\n"
)


def test_template_renders_documents_completely() -> None:
    tools = [WEATHER.to_openai(), NOTE.to_openai()]
    assert (
        render([{"role": "system", "content": "Be brief."}], tools)
        == "<|im_start|>system\nBe brief.<|im_end|>\n" + DOCS
    )
    bare = {"type": "function", "function": {"name": "ping", "description": "", "parameters": {"type": "object"}}}
    assert render([], [bare]) == "<|im_start|>system\n<tools>\nping\n</tools><|im_end|>\n"  # no description line


def test_documents_follow_the_first_request_and_stay_there() -> None:
    """A causal model reads the documents after the request (so it reads them knowing what was asked); later
    turns are appended after them, so every turn's prompt extends the previous one."""
    tools = [WEATHER.to_openai(), NOTE.to_openai()]
    first = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Rain in Oslo?"}]
    assert render(first, tools) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nRain in Oslo?<|im_end|>\n" + DOCS
    )
    later = [*first, {"role": "assistant", "content": "Which day?"}, {"role": "user", "content": "Monday."}]
    text = render(later, tools)
    assert text.startswith(render(first, tools)) and text.count("<tools>") == 1
    assert render(first[1:], tools) == "<|im_start|>user\nRain in Oslo?<|im_end|>\n" + DOCS  # no system prompt
    assert render(first, []) == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nRain in Oslo?<|im_end|>\n"


@pytest.fixture(scope="module")
def hf(tok: Any) -> Any:
    from hone.models import HFLocal

    return HFLocal(tiny_model(tok), tok, name="micro-tools-test", device="cpu")


def test_hone_detects_hermes_and_finds_every_offered_tool(env: BuiltEnv, hf: Any) -> None:
    import asyncio

    assert hf.tool_format.name == "hermes"
    assert hf.tool_format.dict_arguments is False  # string arguments are rendered verbatim

    async def openings() -> list[Any]:
        return [await env.reset(t) for t in env.tasks("heldout", n=60) + env.tasks("train", n=60)]

    for opening in asyncio.run(openings()):
        text = hf.render(opening.messages, opening.tools)  # raises ModelError if a tool is missing
        assert tools_rendered(text, opening.tools, opening.messages) == []


def test_multi_turn_calls_parse_back_and_prompts_chain(hf: Any) -> None:
    """Play a tool conversation as a model would write it: each prompt plus the generated ids is a
    prefix of the next prompt, and hone's hermes parser reads every call back exactly."""
    tok, fmt = hf.tokenizer, hf.tool_format
    tools = [WEATHER, NOTE]
    replies = [
        '<tool_call>{"name": "weather_get", "arguments": {"coordinates": [48.85, 2.35], "unit": "C"}}</tool_call>',
        'Two notes.<tool_call>{"name": "note_add", "arguments": {"text": "Zoë \\"quoted\\"\\nline"}}</tool_call>'
        '<tool_call>{"name": "note_add", "arguments": {"text": "☃ 2"}}</tool_call>',
        "Answer: 21 C",
    ]
    expected: list[list[tuple[str, dict[str, Any]]]] = [
        [("weather_get", {"coordinates": [48.85, 2.35], "unit": "C"})],
        [("note_add", {"text": 'Zoë "quoted"\nline'}), ("note_add", {"text": "☃ 2"})],
        [],
    ]
    history = [Message.system("Be brief."), Message.user("Weather in Paris, then note it twice.")]
    results = iter(['{"temp": 21}', '"ok"', '"ok ☃"'])
    for reply, want in zip(replies, expected, strict=True):
        prompt = hf.encode(history, tools)
        generated = [*tok.encode(reply, add_special_tokens=False), tok.eos_token_id]
        content, calls = fmt.parse(fmt.decode(tok, generated[:-1]))
        assert [(c.name, c.arguments, c.parse_error) for c in calls] == [(n, a, None) for n, a in want]
        assert content == ("Two notes." if len(want) == 2 else (reply if not want else None))
        assert (content, calls) == parse_hermes(reply)
        calls = [
            ToolCall(id=f"c{i}", name=c.name, arguments=c.arguments, arguments_raw=c.arguments_raw)
            for i, c in enumerate(calls)
        ]
        history.append(Message.assistant(content, calls or None))
        history += [Message.tool(next(results), c.id, c.name) for c in calls]
        following = hf.encode(history, tools)
        assert following[: len(prompt) + len(generated)] == prompt + generated, reply


def test_heldout_names_reach_the_vocabulary_only_as_pieces(env: BuiltEnv, corpus: list[str], tok: Any) -> None:
    shared = {d.name for s in env.scenarios.values() if not s.heldout for d in s.tools}  # find_customer, ...
    heldout = [d.name for s in env.scenarios.values() if s.heldout for d in s.tools if d.name not in shared]
    text = "\n".join(corpus)
    assert heldout and not [n for n in heldout if n in text]  # no held-out text in the corpus
    assert not [n for n in heldout if n in words(tok)]
    # Nor are their words the corpus never holds (van, vintage, ...), as they would be had the
    # held-out documents been in it.
    unseen = {w for n in heldout for w in n.split("_") if w not in text}
    assert unseen and not unseen & words(tok)
    docs = [render([], [tool_dict(d) for d in s.tools]) for s in env.scenarios.values() if s.heldout]
    assert unseen & words(build_tokenizer(corpus + docs * 10, VOCAB))


def words(tokenizer: Any) -> set[str]:
    """The vocabulary as text, a leading space or underscore dropped."""
    return {tokenizer.convert_tokens_to_string([t]).lstrip(" _") for t in tokenizer.get_vocab()}


def test_training_is_deterministic(corpus: list[str], tok: Any, tmp_path: Path) -> None:
    again = build_tokenizer(corpus, VOCAB)
    tok.save_pretrained(tmp_path / "a")
    again.save_pretrained(tmp_path / "b")
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    other = build_tokenizer(corpus[:100], VOCAB)
    assert other.backend_tokenizer.to_str() != tok.backend_tokenizer.to_str()


def test_saved_tokenizer_loads_with_plain_transformers(tok: Any, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    messages = [m.to_openai() for m in (Message.system("Be brief."), Message.user(NASTY))]
    tools = [WEATHER.to_openai()]
    for kwargs in ({"tokenize": False}, {"tokenize": False, "add_generation_prompt": True}):
        assert loaded.apply_chat_template(messages, tools=tools, **kwargs) == tok.apply_chat_template(
            messages, tools=tools, **kwargs
        )
    text = render(messages, tools)
    assert loaded.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    assert (loaded.eos_token, loaded.pad_token, loaded.padding_side) == ("<|im_end|>", "<|pad|>", "left")


def test_assistant_mask_covers_replies_only(tok: Any) -> None:
    call = {"function": {"name": "note_add", "arguments": '{"text": "x"}'}}
    messages = [
        {"role": "user", "content": "Note x."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": '"ok"'},
        {"role": "assistant", "content": "Done."},
    ]
    out = tok.apply_chat_template(
        messages, tools=[NOTE.to_openai()], return_dict=True, return_assistant_tokens_mask=True
    )
    # What TRL trains on (transformers' own tokenization of the chat) is what hone encodes from the text.
    assert out["input_ids"] == tok.encode(render(messages, [NOTE.to_openai()]), add_special_tokens=False)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert (
        tok.decode(masked)
        == '<tool_call>{"name": "note_add", "arguments": {"text": "x"}}</tool_call><|im_end|>Done.<|im_end|>'
    )


def test_vocab_size_below_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="vocab_size 200"):
        build_tokenizer(["hello"], 200)


def _contains(seq: list[int], part: list[int]) -> bool:
    return any(seq[i : i + len(part)] == part for i in range(len(seq) - len(part) + 1))


def test_values_and_names_are_the_same_tokens_in_the_request_and_in_the_call(tok: Any, env: BuiltEnv) -> None:
    # The model copies ids, numbers, names and enum values from the request into the call's JSON, and
    # tool names from request words: each must be the same token sequence at both ends (GPT-2's split
    # makes `TI` one token after a space and two after a quote, and the model never learned to copy).
    request = "Quick request: set title list price with title ID TI-105 to 15 for Aiko Haddad, tier basic."
    args = {"title_id": "TI-105", "list_price": 15, "customer": "Aiko Haddad", "tier": "basic"}
    call = json.dumps({"name": "set_title_list_price", "arguments": args})
    req_ids, call_ids = tok(request).input_ids, tok(f"<tool_call>{call}</tool_call>").input_ids
    for value in ("TI-105", "15", "Aiko Haddad", "basic"):
        assert _contains(call_ids, tok(value).input_ids) and _contains(req_ids, tok(value).input_ids), value
    words = [tok(w).input_ids for w in ("set", "title", "list", "price")]
    underscore = tok("_").input_ids
    name = [i for w in words for i in (*w, *underscore)][: -len(underscore)]
    assert _contains(call_ids, name) and all(_contains(req_ids, w) for w in words)
    # and on real toolgen tasks: every string argument the request spells out is copied token for token
    checked = 0
    for task in env.tasks("test")[:200]:
        built = env.built_task(task.id)
        text_ids = tok(built.prompt).input_ids
        for step in built.reference:
            for c in step:
                for v in c.arguments.values():
                    if isinstance(v, str | int) and not isinstance(v, bool) and f" {v}" in built.prompt:
                        rendered = tok(json.dumps({"v": v})).input_ids
                        assert _contains(rendered, tok(str(v)).input_ids) and _contains(text_ids, tok(str(v)).input_ids)
                        checked += 1
    assert checked > 100


def test_a_malformed_call_renders_back_as_written_so_prompts_still_chain(hf: Any) -> None:
    """GRPO and `hone data check` need the next prompt to extend the tokens the model generated, also
    when a call did not parse: the template writes the malformed object back verbatim."""
    tok, fmt = hf.tokenizer, hf.tool_format
    tools = [WEATHER, NOTE]
    history = [Message.system("Be brief."), Message.user("Note it.")]
    for reply in (
        '<tool_call>{"name": "note_add", "arguments": {"text": "oops}</tool_call>',
        '<tool_call>{"name": "note_add", "arguments": {"text": 1}, }</tool_call>',
    ):
        prompt = hf.encode(history, tools)
        generated = [*tok.encode(reply, add_special_tokens=False), tok.eos_token_id]
        content, calls = fmt.parse(fmt.decode(tok, generated[:-1]))
        assert len(calls) == 1 and calls[0].parse_error is not None and calls[0].name == "note_add"
        history.append(Message.assistant(content, calls))
        history.append(Message.tool("error: the tool call is not valid JSON", calls[0].id, calls[0].name))
        following = hf.encode(history, tools)
        assert following[: len(prompt) + len(generated)] == prompt + generated, reply


async def test_a_generated_split_the_tokenizer_would_not_make_still_chains(hf: Any, tok: Any) -> None:
    """A sampled completion need not be the tokenizer's own split of its text (constrained decoding makes
    this common): the next prompt must still extend the generated ids exactly (GRPO refused such episodes),
    `hone data check` must agree, and a conversation rebuilt from stored messages is tokenized afresh."""
    from hone.core import Sampling, Step, Trajectory
    from hone.learn.data import check_tokenization
    from hone.models._hf_engine import GenResult

    tools = [WEATHER, NOTE]
    history = [Message.system("Be brief."), Message.user("Note hello.")]
    reply = '<tool_call>{"name": "note_add", "arguments": {"text": "hello"}}</tool_call>'
    canonical = tok.encode(reply, add_special_tokens=False)
    # One multi-character token of the name, written one byte-level character at a time instead.
    i = next(j for j, t in enumerate(canonical) if len(tok.convert_ids_to_tokens(t)) > 1 and tok.decode([t]).isalpha())
    pieces = tok.convert_tokens_to_ids(list(tok.convert_ids_to_tokens(canonical[i])))
    generated = [*canonical[:i], *pieces, *canonical[i + 1 :], tok.eos_token_id]
    replies = iter([generated, [*tok.encode("Answer: ok", add_special_tokens=False), tok.eos_token_id]])

    async def forced(prompt: list[int], sampling: Sampling) -> GenResult:
        ids = next(replies)
        return GenResult(list(ids), [-0.5] * len(ids), "eos")  # type: ignore[arg-type]

    hf._generate_ids = forced
    first = await hf.generate(history, tools, Sampling(temperature=0))
    assert tok.decode(generated[:-1]) == reply and first.message.tool_calls[0].name == "note_add"
    observation = Message.tool('"ok"', first.message.tool_calls[0].id, "note_add")
    history += [first.message, observation]
    prompt = first.prompt_token_ids or []
    fresh = hf._tokenize(hf.render(history, tools))
    assert fresh[: len(prompt) + len(generated)] != prompt + generated  # re-tokenizing would break the chain
    second = await hf.generate(history, tools, Sampling(temperature=0))
    assert (second.prompt_token_ids or [])[: len(prompt) + len(generated)] == prompt + generated
    assert hf.turns.reused == 1
    # The same conversation rebuilt from stored messages (other objects) is tokenized as the tokenizer does.
    rebuilt = [Message.model_validate(m.model_dump()) for m in history]
    assert hf.encode(rebuilt, tools) == fresh and hf.turns.reused == 1
    # `hone data check` computes prompts the same way: no mismatch; a tampered observation is still caught.
    steps = [Step(call=first, observations=[observation]), Step(call=second, observations=[])]
    traj = Trajectory(
        run_id="r", task_id="t", sample=0, env="toolgen", split="train", model="m", prompt=history[:2], tools=tools,
        steps=steps, status="ok",
    )  # fmt: skip
    assert check_tokenization([traj], tok).ok
    traj.steps[0].observations[0] = Message.tool('"no"', observation.tool_call_id, "note_add")
    assert [m.kind for m in check_tokenization([traj], tok).mismatches] == ["render"]
