"""HFLocal with constrained_tools: llguidance grammars over a tiny random micro-tools-style model.

The random model is biased toward `<tool_call>` so that it starts calls often; unconstrained it
then writes garbage, constrained every finished call must parse, name an offered tool and
satisfy its schema.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")
pytest.importorskip("jsonschema")

import torch

from hone.core import ConfigError, Message, ModelCall, Sampling, ToolSpec
from hone.learn.micro import new_micro_model
from hone.learn.micro_tools import build_tokenizer
from hone.models import HFLocal, resolve_model
from hone.models._hf_constrain import CONSTRAINED_HINT, CallLayout, ToolConstraint, call_layout, tool_grammar
from hone.models._registry import hf_spec_options
from hone.models._toolformats import FallbackFormat, HermesFormat, Llama3JsonFormat

jsonschema = pytest.importorskip("jsonschema")

ORDER = ToolSpec(
    name="take_order",
    description="Create an order.",
    parameters={
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ["bread", "pastry", "cake"]},
            "days": {"type": "integer"},
            "note": {"type": "string", "maxLength": 6},
        },
        "required": ["kind", "days"],
    },
)
WEATHER = ToolSpec(
    name="get_weather",
    description="The weather.",
    parameters={"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}}, "required": ["city"]},
)
TOOLS = [ORDER, WEATHER]
ASK = [Message.user("take order bread cake for days")]
CORPUS = [
    "<|im_start|>user\nhello world take order product kind bread cake days<|im_end|>\n"
    '<tool_call>{"name": "take_order", "arguments": {"kind": "bread", "days": 7}}</tool_call>'
] * 20


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def parts() -> tuple[Any, Any]:
    tokenizer = build_tokenizer(CORPUS, vocab_size=320)
    model = new_micro_model(
        tokenizer,
        vocab_size=len(tokenizer),
        num_hidden_layers=1,
        hidden_size=64,
        intermediate_size=128,
        initializer_range=0.3,
    )
    with torch.no_grad():  # random weights that start calls often: `<tool_call>` (id 3) gets a strong logit
        head = model.lm_head.weight
        head[3] += 0.5 * head.abs().max() * head[3].sign()
    return model, tokenizer


@pytest.fixture(scope="module")
def strict(parts: tuple[Any, Any]) -> Any:
    model = HFLocal(*parts, constrained_tools=True, max_new_tokens=64)
    yield model
    model.close()


@pytest.fixture(scope="module")
def plain(parts: tuple[Any, Any]) -> Any:
    model = HFLocal(*parts, max_new_tokens=64)
    yield model
    model.close()


def run(hf: HFLocal, requests: list[tuple[list[ToolSpec] | None, Sampling]]) -> list[ModelCall]:
    """The requests generated concurrently (one batch)."""

    async def all_of() -> list[ModelCall]:
        return list(await asyncio.gather(*(hf.generate(ASK, tools, sampling) for tools, sampling in requests)))

    return asyncio.run(all_of())


def problems(call: ModelCall, offered: list[ToolSpec], *, cut_ok: bool = True) -> list[str]:
    """What is wrong with a generated message: bad calls, or call markup in an answer (a call cut by the
    token limit is not counted)."""
    found = []
    specs = {t.name: t for t in offered}
    made = list(call.message.tool_calls or [])
    if cut_ok and call.finish_reason == "length" and made and made[-1].parse_error:
        made.pop()
    for tc in made:
        if tc.parse_error or tc.name not in specs:
            found.append(f"{tc.name}: {tc.parse_error or 'not offered'}")
            continue
        schema = specs[tc.name].parameters
        try:
            jsonschema.validate(tc.arguments, schema)
        except jsonschema.ValidationError as exc:
            found.append(f"{tc.name}: {exc.message}")
        if not set(tc.arguments) <= set(schema["properties"]):
            found.append(f"{tc.name}: extra keys {sorted(set(tc.arguments) - set(schema['properties']))}")
        if tc.arguments_raw != json.dumps(tc.arguments, ensure_ascii=False):  # the template's layout
            found.append(f"{tc.name}: layout {tc.arguments_raw!r}")
    if not call.message.tool_calls and "<tool_call>" in (call.message.content or ""):
        found.append("markup in an answer")
    return found


SAMPLINGS = [Sampling(temperature=t, seed=s, max_tokens=64) for t in (0.0, 0.7, 1.0, 1.5) for s in range(6)]


def test_unconstrained_random_model_writes_broken_calls(plain: HFLocal) -> None:
    calls = run(plain, [(TOOLS, s) for s in SAMPLINGS])
    assert sum(bool(problems(c, TOOLS, cut_ok=False)) for c in calls) >= len(calls) // 2


def test_constrained_calls_parse_name_offered_tools_and_fit_their_schemas(strict: HFLocal) -> None:
    calls = run(strict, [(TOOLS, s) for s in SAMPLINGS])
    for call in calls:
        assert problems(call, TOOLS) == [], call.message
        if call.finish_reason != "length":
            assert call.completion_token_ids[-1] in strict.eos_ids
    assert sum(c.finish_reason == "tool_calls" for c in calls) >= 3  # some end after their last call
    made = [tc for c in calls for tc in c.message.tool_calls or [] if not tc.parse_error]
    assert len(made) >= len(calls)
    orders = [tc.arguments for tc in made if tc.name == "take_order"]
    assert orders, "no take_order call to check the enum and integer on"
    for args in orders:
        assert args["kind"] in ("bread", "pastry", "cake") and isinstance(args["days"], int)


def test_one_offered_tool_is_the_only_name(strict: HFLocal) -> None:
    calls = run(strict, [([WEATHER], s) for s in SAMPLINGS[6:14]])
    names = {tc.name for c in calls for tc in c.message.tool_calls or []}
    assert names == {"get_weather"}
    assert all(problems(c, [WEATHER]) == [] for c in calls)


def test_min_new_tokens_keeps_a_constrained_row_valid(strict: HFLocal) -> None:
    longer = [Sampling(temperature=1.0, seed=s, max_tokens=64, extra={"min_new_tokens": 40}) for s in range(4)]
    calls = run(strict, [(TOOLS, s) for s in longer])
    assert all(c.usage.completion_tokens >= 40 for c in calls)
    assert all(problems(c, TOOLS) == [] for c in calls)


def test_requests_without_tools_are_unaffected(strict: HFLocal, plain: HFLocal) -> None:
    greedy = Sampling(temperature=0, max_tokens=24)
    alone = run(plain, [(None, greedy)])[0]
    assert run(strict, [(None, greedy)])[0].completion_token_ids == alone.completion_token_ids
    # One batch mixing constrained and unconstrained rows: the latter are the plain model's tokens.
    mixed = [(TOOLS, s) for s in SAMPLINGS[6:12]] + [(None, greedy), (None, Sampling(temperature=1.0, seed=3))]
    ours, theirs = run(strict, mixed), run(plain, mixed)
    for mine, other in zip(ours[6:], theirs[6:], strict=True):
        assert mine.completion_token_ids == other.completion_token_ids
    assert all(problems(c, TOOLS) == [] for c in ours[:6])
    assert sum(bool(problems(c, TOOLS, cut_ok=False)) for c in theirs[:6]) >= 1


def test_logprobs_are_the_raw_models(strict: HFLocal, parts: tuple[Any, Any]) -> None:
    call = run(strict, [(TOOLS, Sampling(temperature=1.0, seed=1, max_tokens=40))])[0]
    ids = torch.tensor([call.prompt_token_ids + call.completion_token_ids])
    with torch.no_grad():
        logits = parts[0](ids).logits[0, len(call.prompt_token_ids) - 1 : -1].float()
    raw = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(call.completion_token_ids)[:, None]).squeeze(1)
    assert torch.allclose(raw, torch.tensor(call.completion_logprobs), atol=1e-3)
    # Tokens the grammar forced (`{"` after `<tool_call>`...) would read ~0 under the masked distribution.
    assert min(call.completion_logprobs) < -1.0


def test_a_schema_llguidance_cannot_compile_runs_unconstrained_with_one_warning(
    strict: HFLocal, caplog: pytest.LogCaptureFixture
) -> None:
    broken = ToolSpec(name="odd", description="x", parameters={"type": "object", "properties": {"a": {"$ref": "#/x"}}})
    with caplog.at_level(logging.WARNING, logger="hone.models._hf_constrain"):
        calls = run(strict, [([broken], Sampling(temperature=1.0, seed=s, max_tokens=16)) for s in range(3)])
        calls += run(strict, [([broken], Sampling(temperature=1.0, seed=9, max_tokens=16))])
    assert len(calls) == 4
    assert [r.getMessage() for r in caplog.records if "no grammar" in r.getMessage()] != []
    assert len([r for r in caplog.records if "no grammar" in r.getMessage()]) == 1


def test_a_mask_that_fails_leaves_its_row_unconstrained_and_the_batch_running(
    strict: HFLocal, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import llguidance.torch

    def broken(*args: Any) -> None:
        raise RuntimeError("mask size mismatch")

    monkeypatch.setattr(llguidance.torch, "fill_next_token_bitmask", broken)
    with caplog.at_level(logging.WARNING, logger="hone.models._hf_constrain"):
        calls = run(strict, [(TOOLS, Sampling(temperature=1.0, seed=s, max_tokens=16)) for s in range(3)])
    assert [c.usage.completion_tokens for c in calls] != [] and all(c.completion_token_ids for c in calls)
    assert sum("no mask for" in r.getMessage() for r in caplog.records) == 3  # once per row, not per step


def test_grammars_are_cached_per_tool_set_in_schema_order(strict: HFLocal, parts: tuple[Any, Any]) -> None:
    assert strict.constraint is not None
    props = ORDER.parameters["properties"]
    flipped = ORDER.model_copy(update={"parameters": {**ORDER.parameters, "properties": dict(reversed(props.items()))}})
    text = '<tool_call>{"name": "take_order", "arguments": {"days": 2, "kind": "cake"}}</tool_call>'
    ids = parts[1](text, add_special_tokens=False)["input_ids"]
    taken = {}
    for tool in (ORDER, flipped, ORDER.model_copy(update={"description": "other words"})):
        row = strict.constraint.row([tool])
        assert row is not None
        taken[tool.description, tuple(tool.parameters["properties"])] = row.matcher.try_consume_tokens(ids) == len(ids)
    assert list(taken.values()) == [False, True, False]  # written in the schema's order only
    keys = [k for k in strict.constraint._cache if '"take_order"' in k and "pastry" in k and "city" not in k]
    assert len(keys) == 2  # the description is not part of a grammar


def test_without_llguidance_the_option_is_refused_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llguidance", None)
    with pytest.raises(ConfigError) as info:
        HFLocal("/no/such/model", constrained_tools=True)
    assert str(info.value) == CONSTRAINED_HINT and "pip install 'hone[constrained]'" in str(info.value)


def test_spec_options(parts: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hf_spec_options("dir?constrained_tools=true") == ("dir", {"constrained_tools": True})
    with pytest.raises(ConfigError, match="constrained_tools must be true or false"):
        hf_spec_options("dir?constrained_tools=yes")
    model, tokenizer = parts
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    monkeypatch.setenv("HONE_MICRO_TOOLS_PATH", str(tmp_path))
    for spec, on in (("micro-tools?constrained_tools=true", True), ("micro-tools", False)):
        made = resolve_model(spec)
        assert isinstance(made, HFLocal) and (made.constraint is not None) is on and made.name == "micro-tools"
        made.close()
    made = resolve_model(f"hf:{tmp_path}?constrained_tools=1")
    assert isinstance(made, HFLocal) and made.constraint is not None
    made.close()


QWEN_LIKE = (
    "{%- for m in messages -%}{{ '<|im_start|>' + m.role + '\\n' }}{%- if m.content -%}{{ m.content }}{%- endif -%}"
    '{%- for tc in m.tool_calls or [] -%}{{ \'\\n<tool_call>\\n{"name": "\' + tc.function.name + \'", "arguments": \''
    " + (tc.function.arguments | tojson) + '}\\n</tool_call>' }}{%- endfor -%}{{ '<|im_end|>\\n' }}{%- endfor -%}"
    "{%- if tools -%}{%- for t in tools -%}{{ t.function.name }}{%- endfor -%}{%- endif -%}"
)


def test_the_call_layout_is_read_from_the_template(strict: HFLocal, parts: tuple[Any, Any]) -> None:
    assert strict.constraint is not None and strict.constraint.layout == CallLayout("", "", "")
    qwen = copy.deepcopy(parts[1])
    qwen.chat_template = QWEN_LIKE
    assert call_layout(HermesFormat(dict_arguments=True), qwen, "q") == CallLayout("\n", "\n", "\n")
    with pytest.raises(ConfigError, match="supports the hermes and fallback tool formats"):
        call_layout(Llama3JsonFormat(), qwen, "q")
    plain = text_tokenizer()  # hone's fallback format writes its calls itself, one per line
    plain.chat_template = "{%- for m in messages -%}{{ m.role + ': ' + (m.content or '') + '\\n' }}{%- endfor -%}"
    assert call_layout(FallbackFormat(), plain, "f") == CallLayout("\n", "\n", "\n")


def text_tokenizer() -> Any:
    """A byte-level BPE where `<tool_call>` is plain text (as in tokenizers without that token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|im_end|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>")


def test_tags_that_are_not_tokens_are_text(parts: tuple[Any, Any]) -> None:
    plain = text_tokenizer()
    plain.unk_token = "<|im_end|>"  # SmolLM2's way: an unknown token that is special
    plain.chat_template = parts[1].chat_template
    made = ToolConstraint(plain, HermesFormat(), n_vocab=len(plain), eos_ids=[plain.eos_token_id], name="t")
    assert made.tag_ids is None
    mine = ToolConstraint(parts[1], HermesFormat(), n_vocab=len(parts[1]), eos_ids=[2], name="m")
    assert mine.tag_ids == (3, 4)


def test_a_grammar_with_text_tags_and_newlines() -> None:
    import llguidance
    import llguidance.hf

    hf_tok = text_tokenizer()
    tok = llguidance.hf.from_tokenizer(hf_tok, n_vocab=len(hf_tok), eos_token=[hf_tok.eos_token_id])
    grammar = llguidance.LLMatcher.grammar_from_lark(tool_grammar(TOOLS, CallLayout("\n", "\n", "\n")))
    call = '<tool_call>\n{"name": "take_order", "arguments": {"kind": "cake", "days": 2}}\n</tool_call>'
    good = [
        "Sure.\n"
        + call
        + "\n"
        + call.replace("take_order", "get_weather").replace('"kind": "cake", "days": 2', '"city": "Oslo"'),
        call,
        "no call here",
    ]
    bad = [
        call.replace("take_order", "take_orders"),  # a tool not offered
        call.replace('"cake"', '"pie"'),  # not in the enum
        call.replace("2}", '"2"}'),  # a string for an integer
        call.replace(', "days": 2', ""),  # a required key missing
        call.replace('"days": 2', '"days":2'),  # another layout
        call.replace('"days": 2', '"days": 2, "extra": 1'),  # a key the schema lacks
        call + call,  # no newline between calls
        "text <tool_call> in an answer",
    ]
    for text, ok in [(t, True) for t in good] + [(t, False) for t in bad]:
        matcher = llguidance.LLMatcher(tok, grammar, log_level=0)
        ids = hf_tok(text, add_special_tokens=False)["input_ids"]
        taken = matcher.try_consume_tokens(ids)
        assert (taken == len(ids) and matcher.consume_token(hf_tok.eos_token_id)) is ok, text


def test_schemas_with_local_refs_are_constrained_not_dropped() -> None:
    """Pydantic-style `$defs` and `$ref` (also recursive, also `#` itself): each tool's schema sits under `anyOf`
    in the grammar, where a local ref only resolves once its definitions are hoisted (they compiled to nothing before,
    so such tools ran unconstrained)."""
    import llguidance
    import llguidance.hf

    node = {"type": "object", "properties": {"label": {"type": "string"}, "child": {"$ref": "#/$defs/Node"}}}
    tools = [
        ToolSpec(
            name="tree",
            description="A tree.",
            parameters={"$defs": {"Node": node}, "type": "object", "properties": {"root": {"$ref": "#/$defs/Node"}}},
        ),
        ToolSpec(
            name="chain",
            description="A chain.",
            parameters={"type": "object", "properties": {"n": {"type": "integer"}, "next": {"$ref": "#"}}},
        ),
    ]
    hf_tok = text_tokenizer()
    tok = llguidance.hf.from_tokenizer(hf_tok, n_vocab=len(hf_tok), eos_token=[hf_tok.eos_token_id])
    grammar = llguidance.LLMatcher.grammar_from_lark(tool_grammar(tools, CallLayout()))

    def accepted(text: str) -> bool:
        matcher = llguidance.LLMatcher(tok, grammar, log_level=0)
        ids = hf_tok(text, add_special_tokens=False)["input_ids"]
        return bool(matcher.try_consume_tokens(ids) == len(ids) and matcher.consume_token(hf_tok.eos_token_id))

    call = '<tool_call>{"name": "tree", "arguments": {"root": {"label": "a", "child": {"label": "b"}}}}</tool_call>'
    assert accepted(call)
    assert not accepted(call.replace('"label": "b"', '"label": 3'))  # the referenced schema is enforced
    assert not accepted(call.replace('"label": "b"', '"lable": "b"'))  # and strict: no unknown keys
    chain = '<tool_call>{"name": "chain", "arguments": {"n": 1, "next": {"n": 2}}}</tool_call>'
    assert accepted(chain) and not accepted(chain.replace('"n": 2', '"n": "2"'))
