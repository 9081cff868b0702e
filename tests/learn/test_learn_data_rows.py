"""Dataset builders row by row: every column, every count, the lineage of each row, the filters and
settings passed through (written against mutation survivors: each assertion fails on a realistic slip)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from _learn_factory import CALC, make, tool_turn

from hone.core import ConfigError, Message, StoreError, Trajectory
from hone.learn.data import (
    grpo_groups,
    kto_data,
    load_trajectories,
    preference_pairs,
    sft_data,
    step_pairs,
    step_value,
)
from hone.learn.data._grpo import group_advantages
from hone.learn.data._records import arrow_row
from hone.store import TrajectoryQuery

PROMPT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "t0: what is 2+2?"}]
TOOLS = [CALC.to_openai()]


def _answer(text: str) -> list[tuple[Message, list[Message]]]:
    return [(Message.assistant(text), [])]


# --- GRPO ----------------------------------------------------------------------------------------


def test_group_advantages_defaults_are_trls() -> None:
    std = math.sqrt(0.5)  # [1, 0] with Bessel's correction
    assert group_advantages([1.0, 0.0]) == ([0.5 / (std + 1e-4), -0.5 / (std + 1e-4)], False)
    assert group_advantages([1.0, 0.0], eps=0.5) == ([0.5 / (std + 0.5), -0.5 / (std + 0.5)], False)
    assert group_advantages([0.3]) == ([0.0], True)
    # Rewards equal but for float noise teach nothing: zero variance within 1e-8.
    _, zero = group_advantages([0.1 + 0.2, 0.3, 0.3])
    assert zero


def test_grpo_rows_in_full_with_their_lineage() -> None:
    a = make("t0", 0, reward=1.0, turns=_answer("4"))
    b = make("t0", 1, reward=0.0, turns=_answer("5"))
    data = grpo_groups([a, b], eps=0.5)
    adv = 0.5 / (math.sqrt(0.5) + 0.5)
    assert list(data.records) == [
        {
            "prompt": PROMPT,
            "completion": [{"role": "assistant", "content": "4"}],
            "tools": TOOLS,
            "reward": 1.0,
            "advantage": adv,
            "group": "run-a/t0",
            "run_id": "run-a",
            "task_id": "t0",
        },
        {
            "prompt": PROMPT,
            "completion": [{"role": "assistant", "content": "5"}],
            "tools": TOOLS,
            "reward": 0.0,
            "advantage": -adv,
            "group": "run-a/t0",
            "run_id": "run-a",
            "task_id": "t0",
        },
    ]
    assert data.records.sources == [(a.id,), (b.id,)]
    assert list(data.prompts) == [{"prompt": PROMPT, "tools": TOOLS, "task_id": "t0"}]
    assert data.prompts.sources == [(a.id, b.id)]  # the group's prompt row comes from all its samples


def test_grpo_counts_every_unscored_trajectory_and_reads_on() -> None:
    trajs = [make("t0", 0, passed=None), make("t1", 0, passed=None), make("t0", 1), make("t0", 2, passed=False)]
    data = grpo_groups(trajs)
    assert (data.stats.unscored, data.stats.groups, data.stats.trajectories) == (2, 1, 2)


def test_grpo_passes_the_query_and_filters_on() -> None:
    trajs = [make("t0", 0, run_id="a"), make("t0", 1, run_id="a", passed=False), make("t0", 0, run_id="b", env="gsm8k")]
    assert {r["run_id"] for r in grpo_groups(trajs, query=TrajectoryQuery(run_id="a")).records} == {"a"}
    assert {r["run_id"] for r in grpo_groups(trajs, env="gsm8k").records} == {"b"}


# --- preference pairs ----------------------------------------------------------------------------


def test_preference_rows_in_full_with_their_lineage_and_counts() -> None:
    good, bad = make("t0", 0, reward=1.0, turns=_answer("4")), make("t0", 1, reward=0.0, turns=_answer("5"))
    other_prompt = [make("t1", 0, reward=1.0), make("t1", 1, reward=0.0, question="what is 3+3?")]
    other_prompt_2 = [make("t2", 0, reward=1.0), make("t2", 1, reward=0.0, question="what is 4+4?")]
    unscored = [make("t0", 2, passed=None), make("t3", 0, passed=None)]
    data = preference_pairs([good, bad, *other_prompt, *other_prompt_2, *unscored, make("t4", 0), make("t4", 1)])
    assert list(data.records) == [
        {
            "prompt": PROMPT,
            "chosen": [{"role": "assistant", "content": "4"}],
            "rejected": [{"role": "assistant", "content": "5"}],
            "tools": TOOLS,
        }
    ]
    assert data.records.sources == [(good.id, bad.id)]
    s = data.stats
    assert (s.groups, s.pairs, s.below_margin, s.unscored, s.skipped) == (4, 1, 1, 2, 2)


def test_preference_pairs_count_every_pair_and_pass_the_query_on() -> None:
    trajs = [make(f"t{i}", s, reward=float(s == 0), turns=_answer(str(s))) for i in range(3) for s in range(2)]
    assert preference_pairs(trajs).stats.pairs == 3
    picked = preference_pairs(trajs, query=TrajectoryQuery(task_id="t1"))
    assert picked.stats.pairs == 1 and picked.records.sources == [(trajs[2].id, trajs[3].id)]
    assert preference_pairs(trajs, task_id="t2").records.sources == [(trajs[4].id, trajs[5].id)]


# --- step pairs ----------------------------------------------------------------------------------


def _siblings(
    parent: str, task: str, *turns: list[tuple[Message, list[Message]]], values: list[float]
) -> list[Trajectory]:
    return [
        make(task, i, reward=v, parent_ids=[parent], turns=t)
        for i, (t, v) in enumerate(zip(turns, values, strict=True))
    ]


CALL = {  # arguments as a dict, as TRL's chat templates take them
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "c0", "type": "function", "function": {"name": "calc", "arguments": {"x": "2+2"}}}],
}
CALL_THEN_ANSWER = [(tool_turn(), [Message.tool("4", "c0", name="calc")]), (Message.assistant("4"), [])]


def test_a_turn_pair_is_one_assistant_turn_each_even_when_more_follows() -> None:
    best, worst = _siblings("p0", "t0", CALL_THEN_ANSWER, _answer("5"), values=[1.0, 0.0])
    data = step_pairs([best, worst])  # the default margin, 0.5
    [row] = data.records
    assert row == {
        "prompt": PROMPT,
        "chosen": [CALL],
        "rejected": [{"role": "assistant", "content": "5"}],
        "tools": TOOLS,
    }
    assert data.records.sources == [(best.id, worst.id)]
    rest = step_pairs([best, worst], completion="rest")
    assert [m["role"] for m in rest.records[0]["chosen"]] == ["assistant", "tool", "assistant"]


def test_step_pairs_count_and_skip_every_group() -> None:
    pairs = [
        t for i in range(2) for t in _siblings(f"p{i}", f"t{i}", CALL_THEN_ANSWER, _answer("5"), values=[1.0, 0.0])
    ]
    # One sibling's conversation is a prefix of the other's, each way round: no diverging assistant turn.
    short, long_ = CALL_THEN_ANSWER[:1], CALL_THEN_ANSWER
    prefix_best = _siblings("q0", "u0", short, long_, values=[1.0, 0.0])
    prefix_worst = _siblings("q1", "u1", long_, short, values=[1.0, 0.0])
    unscored = make("t9", 0, passed=None, parent_ids=["p0"])
    data = step_pairs([*pairs, *prefix_best, *prefix_worst, unscored])
    s = data.stats
    assert (s.groups, s.pairs, s.skipped, s.unscored) == (4, 2, 2, 1)
    picked = step_pairs([*pairs, *prefix_best], query=TrajectoryQuery(task_id="t1"))
    assert picked.records.sources == [(pairs[2].id, pairs[3].id)]
    assert step_pairs(pairs, task_id="t0").records.sources == [(pairs[0].id, pairs[1].id)]


def test_step_pair_mistakes_are_named() -> None:
    with pytest.raises(ConfigError, match="completion must be 'turn' or 'rest', got 'all'"):
        step_pairs([], completion="all")  # type: ignore[arg-type]
    close = _siblings("p0", "t0", CALL_THEN_ANSWER, _answer("5"), values=[1.0, 0.75])
    with pytest.raises(
        ConfigError, match=r"1 sibling groups \(same parent_ids\[-1\]\) .* 1 below the value margin 0\.5"
    ):
        step_pairs(close)


# --- messages, exports ---------------------------------------------------------------------------


def test_no_match_names_every_filter_or_none() -> None:
    with pytest.raises(ConfigError, match=r"match run_id='x', task_id='t9'[;:. ]"):
        grpo_groups([make()], query=TrajectoryQuery(run_id="x"), task_id="t9")
    with pytest.raises(ConfigError, match="no filters"):
        grpo_groups([])


def test_nothing_passed_names_the_bar_and_what_to_do() -> None:
    failed = [make("t0", i, passed=False) for i in range(2)]
    with pytest.raises(ConfigError) as plain:
        sft_data(failed)
    assert str(plain.value) == (
        "nothing to learn from: none of the 2 matching trajectories passed hidden grading; "
        "collect more samples per task, or set success_reward="
    )
    with pytest.raises(ConfigError) as bar:
        sft_data(failed, success_reward=0.9)
    assert str(bar.value) == (
        "nothing to learn from: none of the 2 matching trajectories passed hidden grading or reached reward >= 0.9; "
        "collect more samples per task"
    )


def test_parquet_export_makes_folders_and_names_what_went_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyarrow")
    records = grpo_groups([make("t0", 0), make("t0", 1, passed=False)]).records
    assert records.to_parquet(tmp_path / "a" / "b" / "grpo.parquet") == 2
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match=r"cannot write .*file/grpo\.parquet: File exists$"):
        records.to_parquet(tmp_path / "file" / "grpo.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"^Parquet export needs pyarrow: pip install 'hone\[parquet\]'$"):
        records.to_parquet(tmp_path / "x.parquet")


# --- groups: ties, margins, counts ---------------------------------------------------------------


def test_ties_go_to_the_earlier_sample_whatever_the_order() -> None:
    group = [make("t0", s, reward=r, turns=_answer(str(s))) for s, r in enumerate([1.0, 1.0, 0.0, 0.0])]
    for order in (group, group[::-1]):
        assert preference_pairs(order).records.sources == [(group[0].id, group[2].id)]


def test_equal_rewards_never_pair_even_at_margin_zero_and_every_group_below_is_counted() -> None:
    same = [make(f"t{i}", s, reward=0.5, turns=_answer(str(s))) for i in range(2) for s in range(2)]
    with pytest.raises(ConfigError, match=r"2 task groups .* 2 below the reward margin 0"):
        preference_pairs(same, margin=0.0)


def test_a_scored_trajectory_without_model_turns_is_unscored() -> None:
    empty = make("t0", 2, reward=1.0, turns=[])
    data = preference_pairs([empty, make("t0", 0, reward=0.9), make("t0", 1, reward=0.0, turns=_answer("5"))])
    assert data.stats.unscored == 1 and data.records.sources[0][0] != empty.id


def test_kto_rows_keep_their_lineage_read_past_skips_and_pass_the_query_on() -> None:
    empty, a = make("t0", 9, turns=[]), make("t0", 0)
    repeat, b = make("t0", 1), make("t0", 2, passed=False, turns=_answer("5"))
    records = kto_data([empty, a, repeat, b])  # a turnless one and a repeat before the others
    assert records.sources == [(a.id,), (b.id,)]
    assert kto_data([a, b], query=TrajectoryQuery(status="ok"), task_id="t0").sources == [(a.id,), (b.id,)]
    assert (
        kto_data([a, make("t1", 0)], query=TrajectoryQuery(task_id="t1"))
        .rows[0]["prompt"][1]["content"]
        .startswith("t1")
    )
    with pytest.raises(ConfigError, match=r"^nothing to learn from: no matching trajectory has a model turn$"):
        kto_data([empty])


# --- filters, success, dedup ---------------------------------------------------------------------


def test_reward_bounds_and_success_include_the_bound() -> None:
    trajs = [make("t0", s, passed=None, reward=r, turns=_answer(str(r))) for s, r in enumerate([0.5, 0.7, 0.9])]
    assert [t.sample for t in load_trajectories(trajs, min_reward=0.7)] == [1, 2]
    assert [t.sample for t in load_trajectories(trajs, max_reward=0.7)] == [0, 1]
    assert sft_data(trajs, success_reward=0.7, dedup=False).stats.successful == 2


def test_unknown_filters_are_listed_with_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_trajectories([make()], passed=True, colour="red")
    known = ", ".join(TrajectoryQuery.model_fields)
    assert str(info.value) == f"unknown trajectory filter(s) colour, passed; known: {known}"


def test_dedup_tells_outputs_apart_by_their_raw_text_and_by_their_arguments() -> None:
    def calling(sample: int, expr: str, raw: str | None) -> Trajectory:
        turn = (tool_turn(expr, raw=raw), [Message.tool("4", "c0", name="calc")])
        return make("t0", sample, turns=[turn, (Message.assistant("The answer is 4."), [])])

    spaced, compact = calling(0, "2+2", '{"x": "2+2"}'), calling(1, "2+2", '{"x":"2+2"}')
    assert sft_data([spaced, compact]).stats.duplicates == 0  # the same call, written differently
    other = calling(2, "1+3", None)
    assert sft_data([calling(3, "2+2", None), other]).stats.duplicates == 0  # other arguments
    assert (
        sft_data([spaced, calling(4, "2+2", '{"x": "2+2"}'), calling(5, "2+2", '{"x": "2+2"}')]).stats.duplicates == 2
    )


def test_sft_passes_the_query_on() -> None:
    trajs = [make("t0", 0), make("t1", 0)]
    data = sft_data(trajs, query=TrajectoryQuery(task_id="t1"))
    assert data.conversations.sources == [(trajs[1].id,)]
    assert sft_data(trajs, task_id="t0").conversations.sources == [(trajs[0].id,)]


# --- Arrow rows ----------------------------------------------------------------------------------


def test_arrow_rows_keep_unicode_and_plain_list_items() -> None:
    row = {
        "prompt": ["a plain item", {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "calc", "arguments": {"x": "café"}}}
        ]}],
        "tools": [{"name": "café"}],
    }  # fmt: skip
    out = arrow_row(row)
    assert out["prompt"][0] == "a plain item"
    assert out["prompt"][1]["tool_calls"][0]["function"]["arguments"] == '{"x": "café"}'
    assert out["tools"] == '[{"name": "café"}]'


def test_to_dataset_without_the_train_extra_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ConfigError, match=r"^datasets are built with the train extra: pip install 'hone\[train\]'$"):
        grpo_groups([make("t0", 0)]).records.to_dataset()


def test_grpo_with_nothing_scored_says_so_exactly() -> None:
    with pytest.raises(ConfigError) as info:
        grpo_groups([make("t0", 0, passed=None), make("t1", 0, passed=None)])
    assert str(info.value) == (
        "nothing to learn from: none of the 2 matching trajectories has a reward or a hidden verdict; grade them first"
    )


def test_a_node_visited_once_already_has_its_value() -> None:
    node = make("t0", 0, reward=0.0, meta={"visits": 1, "value": 0.25, "public_score": 0.9})
    assert step_value(node) == 0.25


def test_siblings_that_first_differ_outside_the_models_turns_are_skipped() -> None:
    # Another system prompt: the pair would not share its prompt.
    other_system = make("t0", 1, reward=0.0, parent_ids=["p0"], turns=_answer("5"))
    other_system.prompt[0] = Message.system("be verbose")
    # An extra message from the environment where the other sibling has the model's turn.
    nudged = make(
        "t1",
        1,
        reward=0.0,
        parent_ids=["p1"],
        turns=[
            (tool_turn(), [Message.tool("4", "c0", name="calc"), Message.user("hurry")]),
            (Message.assistant("5"), []),
        ],
    )
    pairs = [
        make("t0", 0, reward=1.0, parent_ids=["p0"], turns=_answer("4")),
        other_system,
        make("t1", 0, reward=1.0, parent_ids=["p1"]),
        nudged,
    ]
    with pytest.raises(ConfigError, match="no preference pairs: 2 sibling groups"):
        step_pairs(pairs)


def test_a_group_below_the_margin_does_not_stop_the_next() -> None:
    close = [make("t0", i, reward=r, parent_ids=["p0"], turns=_answer(str(i))) for i, r in enumerate([1.0, 0.9])]
    wide = [make("t1", i, reward=r, parent_ids=["p1"], turns=_answer(str(i))) for i, r in enumerate([1.0, 0.0])]
    data = step_pairs([*close, *wide])
    assert data.records.sources == [(wide[0].id, wide[1].id)] and data.stats.below_margin == 1


def test_kto_keyword_filters_apply() -> None:
    trajs = [make("t0", 0), make("t1", 0)]
    assert kto_data(trajs, task_id="t1").sources == [(trajs[1].id,)]
