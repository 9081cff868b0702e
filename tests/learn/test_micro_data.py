"""Trajectories -> TRL conversational data, and the assistant-only loss mask."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")

from hone.core import Message, ToolCall, Trajectory
from hone.envs import make_env
from hone.learn.micro import build_tokenizer, sft_dataset, sft_records


@pytest.fixture(scope="module")
def demos() -> list[Trajectory]:
    return make_env("arith").demonstrations(40, seed=0)


def test_records_are_valid_conversations(demos: list[Trajectory]) -> None:
    records = sft_records(demos)
    assert len(records) == len(demos)
    for record, traj in zip(records, demos, strict=True):
        messages = record["messages"]
        assert [m["role"] for m in messages[:2]] == ["system", "user"]
        assert messages[-1]["role"] == "assistant" and "The answer is" in messages[-1]["content"]
        assert record["tools"] == [t.to_openai() for t in traj.tools]
        pending: set[str] = set()
        for m in messages[2:]:
            if m["role"] == "assistant":
                assert not pending, "every tool call is answered before the next assistant turn"
                for call in m.get("tool_calls", []):
                    assert call["type"] == "function"
                    assert call["function"]["name"] == "calculator"
                    assert isinstance(call["function"]["arguments"], dict)
                    pending.add(call["id"])
            else:
                assert m["role"] == "tool" and m["name"] == "calculator"
                pending.remove(m["tool_call_id"])
    assert sum("tool_calls" in m for r in records for m in r["messages"]) > 0


def test_records_keep_raw_arguments_and_filter_passed(demos: list[Trajectory]) -> None:
    call = ToolCall(id="c1", name="calculator", arguments={"expression": "1+2"}, arguments_raw='{"expression":"1+2"}')
    traj = demos[0].model_copy(deep=True)
    traj.steps[0].call.message = Message.assistant(None, [call])
    [record] = sft_records([traj])
    assert record["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"expression":"1+2"}'
    passed = sft_records(demos, only_passed=True)
    assert 0 < len(passed) == sum(t.passed for t in demos) < len(demos)


def test_dataset_renders_like_the_records(demos: list[Trajectory]) -> None:
    tok = build_tokenizer()
    ds = sft_dataset(demos)
    assert ds.column_names == ["messages", "tools"] and len(ds) == len(demos)
    for row, record in zip(ds, sft_records(demos), strict=True):
        as_stored = tok.apply_chat_template(row["messages"], tools=json.loads(row["tools"]), tokenize=False)
        as_records = tok.apply_chat_template(record["messages"], tools=record["tools"], tokenize=False)
        assert as_stored == as_records


def test_assistant_mask_covers_exactly_the_assistant_turns(demos: list[Trajectory]) -> None:
    tok = build_tokenizer()
    for record in sft_records(demos):
        out = tok.apply_chat_template(
            record["messages"], tools=record["tools"], return_dict=True, return_assistant_tokens_mask=True
        )
        ids, mask = out["input_ids"], out["assistant_masks"]
        spans: list[str] = []
        current: list[int] = []
        for token, bit in zip(ids, mask, strict=True):
            if bit:
                current.append(token)
            elif current:
                spans.append(tok.decode(current))
                current = []
        assert not current, "the last token (a newline) is outside the mask"
        expected = []
        for m in record["messages"]:
            if m["role"] != "assistant":
                continue
            text = m["content"] or ""
            for call in m.get("tool_calls", []):
                args = json.dumps(call["function"]["arguments"])
                text += f'<tool_call>{{"name": "{call["function"]["name"]}", "arguments": {args}}}</tool_call>'
            expected.append(text + "<|im_end|>")
        assert spans == expected
