"""hone.learn.data: SFT by rejection sampling, preference pairs, KTO, GRPO groups, exports."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from _learn_factory import CALC, make, tool_turn

from hone.core import ConfigError, Message, ToolCall, Trajectory
from hone.learn.data import (
    MASK_COLUMN,
    Records,
    grpo_groups,
    kto_data,
    load_trajectories,
    preference_pairs,
    sft_data,
    step_pairs,
    step_value,
)
from hone.store import TrajectoryQuery, open_store

# --- sources and filters -------------------------------------------------------------------------


def _mixed() -> list[Trajectory]:
    return [
        make("t0", 0, passed=True),
        make("t0", 1, passed=False, answer="5"),
        make("t1", 0, passed=True, run_id="run-b", env="gsm8k"),
        make("t2", 0, passed=False, status="error"),
        make("t3", 0, passed=None, reward=0.7),
    ]


def test_filters_on_an_iterable_match_the_store(tmp_path: Path) -> None:
    trajs = _mixed()
    with open_store(str(tmp_path / "hone.db")) as store:
        store.put_many(trajs)
        for filters in ({"run_id": "run-a"}, {"env": "gsm8k"}, {"status": "error"}, {"min_reward": 0.5}):
            from_list = sorted(t.id for t in load_trajectories(trajs, **filters))
            from_store = sorted(t.id for t in load_trajectories(store, **filters))
            assert from_list == from_store, filters
        assert len(load_trajectories(trajs, run_id="run-a")) == 4
        assert sorted(t.task_id for t in load_trajectories(store, min_reward=0.5)) == ["t0", "t1", "t3"]
        query = TrajectoryQuery(run_id="run-a", status="ok")
        assert [(t.task_id, t.sample) for t in load_trajectories(trajs, query, max_reward=0.5)] == [("t0", 1)]
        assert len(load_trajectories(trajs, limit=2)) == 2


def test_no_match_and_unknown_filters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"no trajectories match run_id='nope'.*hone runs"):
        load_trajectories(_mixed(), run_id="nope")
    with pytest.raises(ConfigError, match="unknown trajectory filter"):
        load_trajectories(_mixed(), passed=True)
    with pytest.raises(ConfigError, match="no trajectories match"):
        sft_data([])


# --- SFT -----------------------------------------------------------------------------------------


def test_sft_keeps_successes_only() -> None:
    data = sft_data(_mixed())
    kept = [src[0] for src in data.conversations.sources]
    trajs = {t.id: t for t in _mixed()}
    assert data.stats.considered == 5 and data.stats.successful == 2
    assert not data.tokens and len(data.conversations) == 2
    assert len(kept) == 2
    # a reward threshold also admits partial credit (t3 scored 0.7 with no hidden verdict), never errors
    loose = sft_data(_mixed(), success_reward=0.5)
    assert loose.stats.successful == 3
    errored = make("t9", passed=True, status="error")
    assert sft_data([errored, make("t8")]).stats.successful == 1
    assert all(trajs.get(i) is None or trajs[i].passed for i in kept)


def test_sft_record_is_the_whole_conversation() -> None:
    traj = make()
    [row] = sft_data([traj]).conversations
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    call = row["messages"][2]["tool_calls"][0]
    assert call == {"id": "c0", "type": "function", "function": {"name": "calc", "arguments": {"x": "2+2"}}}
    assert row["messages"][3] == {"role": "tool", "content": "4", "tool_call_id": "c0", "name": "calc"}
    assert row["messages"][4]["content"] == "The answer is 4."
    assert row["tools"] == [CALC.to_openai()]


def test_sft_dedups_same_prompt_and_outputs() -> None:
    a = make("t0", 0)
    same_outputs_other_ids = make(
        "t0",
        1,
        turns=[
            (tool_turn(call_id="zz"), [Message.tool("4", "zz", name="calc")]),
            (Message.assistant("The answer is 4."), []),
        ],
    )
    other_answer_text = make("t0", 2, turns=[(Message.assistant("4"), [])])
    other_task = make("t1", 0)
    data = sft_data([a, same_outputs_other_ids, other_answer_text, other_task])
    assert data.stats.duplicates == 1 and len(data.conversations) == 3
    assert [s[0] for s in data.conversations.sources] == [a.id, other_answer_text.id, other_task.id]
    assert len(sft_data([a, same_outputs_other_ids], dedup=False).conversations) == 2


def test_nothing_passed_says_what_to_do() -> None:
    failed = [make("t0", i, passed=False) for i in range(3)]
    with pytest.raises(ConfigError, match=r"none of the 3 matching trajectories passed.*success_reward="):
        sft_data(failed)
    with pytest.raises(ConfigError, match=r"reward >= 0\.9"):
        sft_data(failed, success_reward=0.9)


# --- preference pairs ----------------------------------------------------------------------------


def _answer(text: str) -> list[tuple[Message, list[Message]]]:
    return [(tool_turn(), [Message.tool("4", "c0", name="calc")]), (Message.assistant(text), [])]


def test_multi_turn_pairs_best_vs_worst_with_margin() -> None:
    group = [
        make("t0", 0, reward=0.6, turns=_answer("maybe 4")),
        make("t0", 1, reward=1.0, turns=_answer("The answer is 4.")),
        make("t0", 2, reward=0.2, turns=_answer("The answer is 5.")),
    ]
    close = [make("t1", 0, reward=1.0), make("t1", 1, reward=0.8, turns=_answer("4?"))]
    lonely = [make("t2", 0, reward=1.0)]
    data = preference_pairs(group + close + lonely, margin=0.5)
    assert len(data.records) == 1
    assert data.records.sources == [(group[1].id, group[2].id)]
    [row] = data.records
    assert row["prompt"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "t0: what is 2+2?"}]
    assert [m["role"] for m in row["chosen"]] == ["assistant", "tool", "assistant"]
    assert row["chosen"][-1]["content"] == "The answer is 4."
    assert row["rejected"][-1]["content"] == "The answer is 5."
    assert row["tools"] == [CALC.to_openai()]
    assert (data.stats.groups, data.stats.pairs, data.stats.below_margin) == (2, 1, 1)
    assert len(preference_pairs(group + close, margin=0.2).records) == 2
    with pytest.raises(ConfigError, match=r"no preference pairs: 1 task groups.*1 below the reward margin 0\.9"):
        preference_pairs(close, margin=0.9)


def test_groups_are_per_run_and_task() -> None:
    trajs = [make("t0", 0, run_id="a", reward=1.0), make("t0", 0, run_id="b", reward=0.0, turns=_answer("5"))]
    with pytest.raises(ConfigError, match="no preference pairs"):
        preference_pairs(trajs)


def _tree() -> list[Trajectory]:
    """Root p0 has three children sharing the first tool turn; they differ at the second assistant turn."""
    shared = (tool_turn(), [Message.tool("4", "c0", name="calc")])
    good = make("t0", 1, reward=1.0, parent_ids=["p0"], turns=[shared, (Message.assistant("The answer is 4."), [])])
    bad = make(
        "t0",
        2,
        reward=0.0,
        parent_ids=["p0"],
        turns=[
            shared,
            (tool_turn("4+1", "c1"), [Message.tool("5", "c1", name="calc")]),
            (Message.assistant("The answer is 5."), []),
        ],
    )
    middle = make("t0", 3, reward=0.5, parent_ids=["p0"], turns=[shared, (Message.assistant("4, I think"), [])])
    # siblings of another parent whose first difference is a tool's output: no step-level pair
    flaky_a = make("t1", 0, reward=1.0, parent_ids=["root", "p1"])
    flaky_b = make("t1", 1, reward=0.0, parent_ids=["root", "p1"], turns=_answer("x"))
    flaky_b.steps[0].observations = [Message.tool("error", "c0", name="calc")]
    return [good, bad, middle, flaky_a, flaky_b, make("t0", 0, reward=0.0)]  # the last: no parent


def test_step_pairs_from_siblings() -> None:
    tree = _tree()
    data = step_pairs(tree, margin=0.5)
    assert len(data.records) == 1 and data.records.sources == [(tree[0].id, tree[1].id)]
    [row] = data.records
    assert [m["role"] for m in row["prompt"]] == ["system", "user", "assistant", "tool"]
    assert row["prompt"][2]["tool_calls"][0]["function"]["arguments"] == {"x": "2+2"}
    assert row["chosen"] == [{"role": "assistant", "content": "The answer is 4."}]
    assert len(row["rejected"]) == 1 and row["rejected"][0]["tool_calls"][0]["function"]["arguments"] == {"x": "4+1"}
    assert data.stats.skipped == 1  # p1's siblings first differ in a tool output
    rest = step_pairs(tree, margin=0.5, completion="rest")
    [row] = rest.records
    assert [m["role"] for m in row["rejected"]] == ["assistant", "tool", "assistant"]
    assert row["rejected"][-1]["content"] == "The answer is 5."
    assert row["chosen"] == [{"role": "assistant", "content": "The answer is 4."}]
    with pytest.raises(ConfigError, match="sibling groups"):
        step_pairs(tree[3:], margin=0.5)


def test_step_pairs_prefer_public_values_to_rewards() -> None:
    """An honest search tree: no rewards, the search's public node values (or public scores) decide."""
    tree = _tree()[:3]
    for traj, value in zip(tree, (0.0, 1.0, 0.5), strict=True):  # the reverse of the rewards
        traj.reward = None
        traj.feedback = []
        traj.meta = {"visits": 2, "value": value}
    data = step_pairs(tree, margin=0.5)
    assert data.records.sources == [(tree[1].id, tree[0].id)]  # chosen by value, not by the hidden verdict
    assert [step_value(t) for t in tree] == [0.0, 1.0, 0.5]
    tree[1].meta = {"public_score": 0.25}  # not a search node: its public score
    tree[2].meta = {"visits": 0, "value": 0.0, "public_score": 0.75}  # never visited: no node value yet
    assert step_value(tree[1]) == 0.25 and step_value(tree[2]) == 0.75
    assert step_pairs(tree, margin=0.5).records.sources == [(tree[2].id, tree[0].id)]


def test_kto_labels() -> None:
    trajs = [make("t0", 0), make("t0", 1, passed=False, turns=_answer("5")), make("t0", 2)]  # the last repeats
    records = kto_data(trajs)
    assert records.format == "unpaired_preference"
    assert [r["label"] for r in records] == [True, False]
    assert records[0]["prompt"] == [m.to_openai() for m in trajs[0].prompt]
    assert records[1]["completion"][-1] == {"role": "assistant", "content": "5"}
    partial = make("t1", 0, passed=None, reward=0.7)
    assert [r["label"] for r in kto_data([partial], success_reward=0.5)] == [True]
    assert [r["label"] for r in kto_data([partial])] == [False]


# --- GRPO ----------------------------------------------------------------------------------------


def test_grpo_advantages_and_zero_variance() -> None:
    rewards = {"t0": [1.0, 0.0, 0.0, 1.0], "t1": [1.0, 1.0], "t2": [0.3]}
    trajs = [make(task, i, reward=r) for task, rs in rewards.items() for i, r in enumerate(rs)]
    trajs.append(make("t3", 0, passed=None))  # neither reward nor verdict
    data = grpo_groups(trajs)
    std = math.sqrt(4 * 0.25 / 3)  # Bessel-corrected, as TRL
    t0 = [r["advantage"] for r in data.records if r["task_id"] == "t0"]
    assert t0 == pytest.approx([0.5 / (std + 1e-4), -0.5 / (std + 1e-4), -0.5 / (std + 1e-4), 0.5 / (std + 1e-4)])
    assert [r["advantage"] for r in data.records if r["task_id"] != "t0"] == [0.0, 0.0, 0.0]
    assert data.stats.groups == 3 and data.stats.trajectories == 7 and data.stats.unscored == 1
    assert data.stats.zero_variance_groups == 2
    assert data.stats.zero_variance_fraction == pytest.approx(2 / 3)
    assert data.records[0]["group"] == "run-a/t0" and data.records[0]["reward"] == 1.0
    assert len(data.prompts) == 3 and data.prompts[0]["prompt"] == [m.to_openai() for m in trajs[0].prompt]
    unscaled = grpo_groups(trajs, scale=False)
    assert [r["advantage"] for r in unscaled.records][:4] == [0.5, -0.5, -0.5, 0.5]
    with pytest.raises(ConfigError, match="grade them first"):
        grpo_groups([make("t3", 0, passed=None)])


# --- exports -------------------------------------------------------------------------------------


def _roundtrip(records: Records, path: Path) -> list[dict[str, Any]]:
    pq = pytest.importorskip("pyarrow.parquet")
    assert records.to_parquet(path) == len(records)
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def test_parquet_roundtrip_keeps_raw_arguments_and_tools(tmp_path: Path) -> None:
    raw = make(
        "t0",
        0,
        turns=[
            (
                Message.assistant(
                    None, [ToolCall(id="c0", name="calc", arguments={"x": "é"}, arguments_raw='{"x":"é"}')]
                ),
                [Message.tool("4", "c0", name="calc")],
            ),
            (Message.assistant("The answer is 4."), []),
        ],
    )
    records = sft_data([raw, make("t1")]).conversations
    rows = _roundtrip(records, tmp_path / "out" / "sft.parquet")
    assert len(rows) == 2
    assert rows[0]["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"x":"é"}'  # exact text kept
    assert rows[1]["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"x": "2+2"}'
    assert json.loads(rows[0]["tools"]) == [CALC.to_openai()]
    assert rows[0]["messages"][0] == {
        "role": "system",
        "content": "be brief",
        "tool_calls": None,
        "tool_call_id": None,
        "name": None,
    }
    pairs = preference_pairs([make("t0", 0), make("t0", 1, passed=False, turns=_answer("5"))]).records
    [pair] = _roundtrip(pairs, tmp_path / "pairs.parquet")
    assert pair["chosen"][-1]["content"] == "The answer is 4." and pair["rejected"][-1]["content"] == "5"
    groups = grpo_groups([make("t0", 0), make("t0", 1, passed=False)]).records
    assert [r["advantage"] for r in _roundtrip(groups, tmp_path / "g.parquet")] == [r["advantage"] for r in groups]


def test_dataset_renders_like_the_records() -> None:
    pytest.importorskip("datasets")
    pytest.importorskip("transformers")
    from hone.learn.micro import build_tokenizer

    tok = build_tokenizer()
    records = sft_data([make("t0"), make("t1", turns=[(Message.assistant("4"), [])])]).conversations
    ds = records.to_dataset()
    assert ds.column_names == ["messages", "tools"] and len(ds) == 2
    rendered = []
    for row, record in zip(ds, records, strict=True):
        stored = tok.apply_chat_template(row["messages"], tools=json.loads(row["tools"]), tokenize=False)
        direct = tok.apply_chat_template(record["messages"], tools=record["tools"], tokenize=False)
        assert stored == direct  # Arrow's null-filled keys and JSON-text arguments render the same
        rendered.append(stored)
    assert '<tool_call>{"name": "calc", "arguments": {"x": "2+2"}}</tool_call>' in rendered[0]
    assert "null" not in rendered[0] and "None" not in rendered[0]
    kto = kto_data([make("t0"), make("t0", 1, passed=False, turns=_answer("5"))]).to_dataset()
    assert kto.column_names == ["prompt", "completion", "label", "tools"] and kto["label"] == [True, False]


def test_token_records_export(tmp_path: Path) -> None:
    records = Records("tokens")
    records.add({"input_ids": [5, 6, 7, 8], MASK_COLUMN: [0, 1, 0, 1]}, "t-1")
    assert _roundtrip(records, tmp_path / "tok.parquet") == [
        {"input_ids": [5, 6, 7, 8], "assistant_masks": [0, 1, 0, 1]}
    ]
