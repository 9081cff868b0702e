"""Token-exact SFT records and the tokenization-consistency check, with the micro tokenizer."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from _learn_factory import ids, make, render, tool_turn, with_token_ids

from hone.core import Message, Trajectory
from hone.learn.data import (
    MASK_COLUMN,
    chain_mismatches,
    check_tokenization,
    has_token_ids,
    render_ids,
    sft_data,
    token_record,
)
from hone.learn.micro import build_tokenizer


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
