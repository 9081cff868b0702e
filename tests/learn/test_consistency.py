"""Token-exact SFT records and the tokenization-consistency check, with the micro tokenizer."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from _learn_factory import ids, make, render, tool_turn, with_token_ids

from hone.core import ConfigError, Message, Trajectory
from hone.learn.data import (
    MASK_COLUMN,
    chain_mismatches,
    check_tokenization,
    has_token_ids,
    render_ids,
    sft_data,
    token_record,
)
from hone.learn.data._tokens import TokenMismatch
from hone.learn.micro import build_tokenizer
from hone.models._toolformats import detect_format


@pytest.fixture(scope="module")
def tok() -> Any:
    return build_tokenizer()


def _three_turns() -> Trajectory:
    return make(
        "t0",
        turns=[
            (tool_turn("2+2", "c0"), [Message.tool("4", "c0", name="calc")]),
            (tool_turn("4*3", "c1", content="and then"), [Message.tool("12", "c1", name="calc")]),
            (Message.assistant("The answer is 12."), []),
        ],
    )


def _spans(tok: Any, input_ids: list[int], mask: list[int]) -> list[str]:
    spans, current = [], []
    for token, bit in zip(input_ids, mask, strict=True):
        if bit:
            current.append(token)
        elif current:
            spans.append(tok.decode(current))
            current = []
    if current:
        spans.append(tok.decode(current))
    return spans


def test_token_record_masks_exactly_the_generated_tokens(tok: Any) -> None:
    traj = with_token_ids(tok, _three_turns())
    assert has_token_ids(traj) and not chain_mismatches(traj)
    record = token_record(traj)
    assert record is not None and set(record) == {"input_ids", MASK_COLUMN}
    input_ids, mask = record["input_ids"], record[MASK_COLUMN]
    assert len(input_ids) == len(mask)
    # the sequence is the whole conversation as rendered, up to the last end-of-turn token
    whole = render(tok, traj.messages(), traj.tools, generation=False)
    assert tok.decode(input_ids) == whole.removesuffix("\n")
    assert _spans(tok, input_ids, mask) == [
        '<tool_call>{"name": "calc", "arguments": {"x": "2+2"}}</tool_call><|im_end|>',
        'and then<tool_call>{"name": "calc", "arguments": {"x": "4*3"}}</tool_call><|im_end|>',
        "The answer is 12.<|im_end|>",
    ]
    assert sum(mask) == sum(len(s.call.completion_token_ids or []) for s in traj.steps)
    # tool outputs and template tokens are masked out
    masked_out = tok.decode([t for t, bit in zip(input_ids, mask, strict=True) if not bit])
    assert "<|im_start|>tool\n4<|im_end|>" in masked_out and "<|im_start|>tool\n12<|im_end|>" in masked_out


def test_sft_uses_token_records_and_falls_back_on_a_broken_chain(tok: Any) -> None:
    good = with_token_ids(tok, _three_turns())
    broken = with_token_ids(tok, make("t1"))
    stored = broken.steps[1].call.prompt_token_ids
    assert stored is not None
    prev = broken.steps[0].call
    boundary = len(prev.prompt_token_ids or []) + len(prev.completion_token_ids or [])
    stored[boundary - 3] = ids(tok, "#")[0]  # plant: the step-1 prompt no longer extends step 0's tokens
    plain = make("t2")  # no token ids at all
    data = sft_data([good, broken, plain])
    assert data.tokens.sources == [(good.id,)]
    assert data.conversations.sources == [(broken.id,), (plain.id,)]
    assert (data.stats.token_exact, data.stats.conversational, data.stats.chain_broken) == (1, 2, 1)
    [mismatch] = data.mismatches
    assert (mismatch.trajectory_id, mismatch.step_index, mismatch.kind) == (broken.id, 1, "prefix")
    assert mismatch.position == boundary - 3
    assert token_record(broken) is None
    assert not sft_data([good], token_exact=False).tokens


def test_missing_ids_on_one_step_break_the_chain(tok: Any) -> None:
    traj = with_token_ids(tok, _three_turns())
    traj.steps[1].call.completion_token_ids = None
    assert not has_token_ids(traj)
    kinds = [(m.step_index, m.kind) for m in chain_mismatches(traj)]
    assert kinds == [(1, "missing")]
    data = sft_data([traj])
    assert not data.tokens and len(data.conversations) == 1


def test_consistent_trajectories_report_no_mismatch(tok: Any) -> None:
    trajs = [with_token_ids(tok, _three_turns()), with_token_ids(tok, make("t1")), make("t2")]
    report = check_tokenization(trajs, tok)
    assert report.ok and report.mismatches == []
    assert (report.trajectories, report.steps, report.skipped) == (2, 5, 1)
    assert report.summary() == "checked 5 steps of 2 trajectories (1 without token ids): no mismatches"
    assert render_ids(trajs[0], 2, tok) == trajs[0].steps[2].call.prompt_token_ids


def test_re_rendering_that_loses_the_generated_text_is_caught(tok: Any) -> None:
    # The model wrote compact JSON; the ids hold it. A parser that drops `arguments_raw`
    # leaves only the parsed object, which the template re-renders with spaces.
    compact = make(
        "t0",
        turns=[
            (tool_turn("2+2", "c0", raw='{"x":"2+2"}'), [Message.tool("4", "c0", name="calc")]),
            (Message.assistant("The answer is 4."), []),
        ],
    )
    traj = with_token_ids(tok, compact)
    assert check_tokenization([traj], tok).ok
    for call in traj.steps[0].call.message.tool_calls or []:
        call.arguments_raw = None
    report = check_tokenization([traj], tok)
    assert not report.ok and not chain_mismatches(traj)
    [mismatch] = report.mismatches
    assert (mismatch.trajectory_id, mismatch.step_index, mismatch.kind) == (traj.id, 1, "render")
    stored = traj.steps[1].call.prompt_token_ids or []
    expected = render_ids(traj, 1, tok)
    first = next(i for i, (a, b) in enumerate(zip(expected, stored, strict=False)) if a != b)
    assert mismatch.position == first
    assert tok.decode(stored[first : first + 1]) == '"' and tok.decode(expected[first : first + 1]) == " "
    assert '{"x": "2+2"}' in mismatch.expected and '{"x":"2+2"}' in mismatch.stored
    assert "render mismatch at token" in str(mismatch)


def test_every_mismatch_is_reported(tok: Any) -> None:
    a = with_token_ids(tok, _three_turns())
    b = with_token_ids(tok, make("t1"))
    a.steps[0].observations[0].content = "5"  # the stored history said 4: steps 1 and 2 re-render differently
    b_prompt = b.steps[1].call.prompt_token_ids
    assert b_prompt is not None
    b_prompt[5] = ids(tok, "#")[0]  # breaks both the render and the chain at step 1
    report = check_tokenization([a, b], tok)
    found = [(m.trajectory_id, m.step_index, m.kind) for m in report.mismatches]
    assert found == [(a.id, 1, "render"), (a.id, 2, "render"), (b.id, 1, "prefix"), (b.id, 1, "render")]
    assert all(m.position == 5 for m in report.mismatches if m.trajectory_id == b.id)
    assert report.by_kind() == {"render": 3, "prefix": 1}
    assert report.summary().endswith("4 mismatches in 2 trajectories (1 prefix, 3 render)")
    assert "#" in report.mismatches[2].stored and "#" not in report.mismatches[2].expected


def test_a_failing_template_is_reported(tok: Any) -> None:
    class Broken:
        def apply_chat_template(self, *args: Any, **kwargs: Any) -> str:
            raise ValueError("no tool role")

        def decode(self, ids: list[int], **kwargs: Any) -> str:
            return str(tok.decode(ids))

    traj = with_token_ids(tok, make())
    report = check_tokenization([traj], Broken())
    assert [(m.step_index, m.kind) for m in report.mismatches] == [(0, "template"), (1, "template")]
    assert "ValueError: no tool role" in report.mismatches[0].expected
    assert report.mismatches[0] == TokenMismatch(traj.id, 0, "template", -1, "ValueError: no tool role", "")


# --- as HFLocal stores what it generated (written against mutation survivors) ------------------------


def _own_ids(tok: Any, traj: Trajectory) -> Trajectory:
    """A copy holding ids as `HFLocal` keeps a conversation it generated: each completion is the model's
    own ids (here its end-of-turn marker spelled character by character: the same text, not the
    tokenizer's split), and each later prompt is the previous prompt and completion ids, then the rest
    of the rendered conversation tokenized."""
    out = traj.model_copy(deep=True)
    history, previous = list(out.prompt), None
    for step in out.steps:
        before = render(tok, history, out.tools)
        if previous is None:
            step.call.prompt_token_ids = ids(tok, before)
        else:
            head = tok.decode(previous, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            assert before.startswith(head)
            step.call.prompt_token_ids = previous + ids(tok, before[len(head) :])
        after = render(tok, [*history, step.call.message], out.tools, generation=False)
        body = after[len(before) :].removesuffix("\n").removesuffix("<|im_end|>")
        step.call.completion_token_ids = ids(tok, body) + [ids(tok, c)[0] for c in "<|im_end|>"]
        previous = [*step.call.prompt_token_ids, *step.call.completion_token_ids]
        history.append(step.call.message)
        history.extend(step.observations)
    return out


def _strict_tokenizer() -> Any:
    """The micro tokenizer as many real ones behave: decoding cleans up spaces by default (" ?" -> "?")
    and encoding adds a BOS token unless told not to."""
    from tokenizers import processors

    strict = build_tokenizer()
    strict.clean_up_tokenization_spaces = True
    bos = strict.convert_tokens_to_ids("<|im_start|>")
    strict.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", bos)]
    )
    return strict


def test_a_conversation_continued_on_the_models_own_ids_checks_clean() -> None:
    tok = _strict_tokenizer()
    # " ?" would be rewritten by a decode that cleans up spaces; the tools block by a render without tools;
    # a BOS token by an encoding that adds special tokens.
    traj = _own_ids(tok, make("t0", question="what is 2+2 ?"))
    stored = traj.steps[1].call.prompt_token_ids
    assert stored is not None
    assert (
        ids(tok, render(tok, [*traj.prompt, traj.steps[0].call.message, *traj.steps[0].observations], traj.tools))
        != stored
    )
    report = check_tokenization([traj], tok)
    assert report.ok, [str(m) for m in report.mismatches]
    assert render_ids(traj, 1, tok) == stored
    # Without the previous step's completion ids the prompt is rendered afresh (and the chain is reported).
    traj.steps[0].call.completion_token_ids = None
    assert [(m.step_index, m.kind) for m in check_tokenization([traj], tok).mismatches] == [
        (0, "missing"),
        (1, "render"),
    ]


PLAIN_TEMPLATE = (  # ChatML without tool support: hone falls back to its own tool format
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _plain_tokenizer() -> Any:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(["<unk>", "\n", *map(chr, range(32, 127))])}
    t = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    t.decoder = decoders.Fuse()
    t.add_special_tokens([AddedToken(x, special=True, normalized=False) for x in ("<|im_start|>", "<|im_end|>")])
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=t, eos_token="<|im_end|>", unk_token="<unk>", chat_template=PLAIN_TEMPLATE
    )


def test_each_step_is_rendered_in_the_tool_format_it_recorded() -> None:
    plain = _plain_tokenizer()
    traj = make()
    fallback = list(detect_format(plain, "fallback").encode(plain, list(traj.prompt), traj.tools))
    assert render_ids(traj, 0, plain) == fallback  # none recorded: detected (the template drops tools)
    traj.steps[0].call.tool_format = "fallback"
    assert render_ids(traj, 0, plain) == fallback
    traj.steps[0].call.tool_format = "hermes"  # recorded, but this template cannot render it: refused
    with pytest.raises(ConfigError, match="tool_format=hermes was declared"):
        render_ids(traj, 0, plain)


def test_counts_read_past_trajectories_and_steps_without_ids(tok: Any) -> None:
    plain = [make("t8"), make("t9")]
    partial = with_token_ids(tok, _three_turns())
    partial.steps[1].call.prompt_token_ids = None  # step 1 unchecked, step 2 still checked
    report = check_tokenization([*plain, partial, with_token_ids(tok, make("t1"))], tok)
    assert (report.skipped, report.trajectories, report.steps) == (2, 2, 4)


def test_mismatches_in_full(tok: Any) -> None:
    traj = with_token_ids(tok, _three_turns())
    traj.steps[1].call.completion_token_ids = None
    assert chain_mismatches(traj)[0] == TokenMismatch(
        traj.id, 1, "missing", -1, "prompt and completion token ids", "none"
    )
    cut = with_token_ids(tok, make())
    first = cut.steps[0].call
    assert first.prompt_token_ids is not None
    cut.steps[1].call.prompt_token_ids = first.prompt_token_ids[:5]  # a prefix of what it must extend
    [short] = chain_mismatches(cut)  # no tokenizer: the snippets are the ids themselves
    assert (short.kind, short.position) == ("prefix", 5)
    assert short.expected == str(first.prompt_token_ids[:29]) and short.stored == str(first.prompt_token_ids[:5])
    [decoded] = chain_mismatches(cut, tok)
    assert decoded.stored == tok.decode(first.prompt_token_ids[:5])
    assert "<|im_start|>" in decoded.expected  # special tokens are shown, not skipped


def test_sft_counts_every_token_exact_and_every_broken_chain(tok: Any) -> None:
    good = [with_token_ids(tok, _three_turns()), with_token_ids(tok, make("t1"))]
    broken = [with_token_ids(tok, make("t2")), with_token_ids(tok, make("t3"))]
    for traj in broken:
        traj.steps[1].call.prompt_token_ids = [0, *(traj.steps[1].call.prompt_token_ids or [])]
    stats = sft_data([*good, *broken]).stats
    assert (stats.token_exact, stats.chain_broken, stats.conversational) == (2, 2, 2)


def test_the_prompt_after_the_last_step_renders_too(tok: Any) -> None:
    traj = with_token_ids(tok, make())
    after = render_ids(traj, len(traj.steps), tok)  # what a next turn would be shown
    assert tok.decode(after).endswith("The answer is 4.<|im_end|>\n<|im_start|>assistant\n")


def test_snippets_keep_the_text_as_written(tok: Any) -> None:
    traj = make()
    traj.prompt[0] = Message.system("be brief , please")  # a decode that cleans up would write "brief,"
    cut = with_token_ids(tok, traj)
    first = cut.steps[0].call
    assert first.prompt_token_ids is not None
    cut.steps[1].call.prompt_token_ids = first.prompt_token_ids[:5]
    strict = _strict_tokenizer()
    [decoded] = chain_mismatches(cut, strict)
    assert "brief , please" in decoded.expected


def test_only_template_formats_continue_on_the_previous_ids(tok: Any) -> None:
    traj = with_token_ids(tok, make())
    first = traj.steps[0].call
    head = tok.decode([*(first.prompt_token_ids or []), *(first.completion_token_ids or [])])

    class Direct:  # a format that encodes without a chat template (as mistral-common's tokenizers do)
        def render(self, tokenizer: Any, messages: Any, tools: Any) -> str:
            return str(head) + "more"

        def encode(self, tokenizer: Any, messages: Any, tools: Any) -> list[int]:
            return [7, 7, 7]

    assert render_ids(traj, 1, tok, {None: Direct()}) == [7, 7, 7]


def test_a_step_without_ids_does_not_end_the_chain_check(tok: Any) -> None:
    traj = with_token_ids(tok, _three_turns())
    traj.steps[0].call.completion_token_ids = None
    broken = traj.steps[2].call.prompt_token_ids
    assert broken is not None
    broken[3] = ids(tok, "#")[0]  # step 2 no longer extends step 1
    assert [(m.step_index, m.kind) for m in chain_mismatches(traj)] == [(0, "missing"), (2, "prefix")]
