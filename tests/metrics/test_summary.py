"""summarize() on a constructed set whose every figure is worked out by hand."""

from __future__ import annotations

import math

import pytest

from hone.core import ErrorInfo, Feedback, Ledger, Message, ModelCall, Step, Trajectory, Usage
from hone.metrics import NO_SUBSET, Summary, harmony, natural_key, summarize, wilson_interval


def _traj(
    task: str,
    sample: int,
    passed: bool,
    *,
    subset: str | None = None,
    status: str = "ok",
    reward: float | str | None = "auto",
    error: str | None = None,
    env: str = "arith",
) -> Trajectory:
    call = ModelCall(model="m", request_digest="d", message=Message.assistant("x"), usage=Usage(prompt_tokens=50))
    return Trajectory(
        task_id=task,
        sample=sample,
        env=env,
        model="m",
        subset=subset,
        steps=[Step(call=call)],
        feedback=[
            Feedback(source="verifier", passed=passed, score=float(passed), visibility="hidden"),
            Feedback(source="critic", passed=not passed, visibility="public"),  # public verdicts never count
        ],
        reward=float(passed) if reward == "auto" else reward,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        error=ErrorInfo(type=error, message="boom") if error else None,
        usage=Ledger(calls=2, prompt_tokens=100, completion_tokens=20, cost_usd=0.01, tool_calls=1, seconds=1.5),
    )


def _constructed() -> list[Trajectory]:
    return [
        _traj("t1", 0, True, subset="L1"),
        _traj("t1", 1, True, subset="L1"),
        _traj("t2", 0, True, subset="L1"),
        _traj("t2", 1, False, subset="L1"),
        # An errored episode fails, even with a passing verdict and a reward on it.
        _traj("t3", 0, True, subset="L2", status="error", reward=1.0, error="ModelError"),
        _traj("t3", 1, False, subset="L2"),
        _traj("t4", 0, True, subset="L10", status="truncated", reward=None),  # passed, but no reward: 0
        _traj("t4", 1, False, subset="L10", status="truncated", error="ToolError"),
    ]


def test_summarize_constructed_set() -> None:
    s = summarize(_constructed(), k=2)
    assert (s.n_trajectories, s.n_tasks, s.samples_per_task, s.n_passed) == (8, 4, 2, 4)
    assert s.accuracy == 0.5
    assert s.accuracy_ci == wilson_interval(4, 8)
    assert s.mean_reward == 3 / 8  # t1 x2 and t2 s0; t3's reward and t4's missing one count 0
    assert s.mean_reward_ci == wilson_interval(3, 8)
    # pass@1: mean of c/n = (1 + 0.5 + 0 + 0.5) / 4; pass@2: each task solved at least once but t3.
    assert s.pass_at_1 == 0.5
    assert s.pass_at_k == {1: 0.5, 2: 0.75}
    assert list(s.by_subset) == ["L1", "L2", "L10"]
    l1, l2, l10 = s.by_subset.values()
    assert (l1.n, l1.n_tasks, l1.n_passed, l1.accuracy) == (4, 2, 3, 0.75)
    assert (l2.n, l2.n_passed, l2.accuracy) == (2, 0, 0.0)
    assert (l10.n, l10.n_passed, l10.accuracy, l10.mean_reward) == (2, 1, 0.5, 0.0)
    assert l1.ci == wilson_interval(3, 4)
    assert s.harmony == pytest.approx(-(0.6 * math.log(0.6) + 0.4 * math.log(0.4)) / math.log(3))
    assert s.harmony == harmony({"L1": 0.75, "L2": 0.0, "L10": 0.5})
    assert s.status_counts == {"ok": 5, "truncated": 2, "error": 1}
    assert s.error_types == {"ModelError": 1, "ToolError": 1}
    assert s.ledger.model_dump() == {
        "calls": 16,
        "prompt_tokens": 800,
        "completion_tokens": 160,
        "cost_usd": pytest.approx(0.08),
        "tool_calls": 8,
        "env_steps": 0,
        "seconds": 12.0,
    }
    assert s.tokens_per_solved == 960 / 4
    assert s.calls_per_solved == 4.0
    assert s.cost_per_solved == pytest.approx(0.02)
    assert s.tool_calls_per_task == 2.0
    assert s.seconds == 12.0


def test_k_larger_than_samples_is_left_out() -> None:
    s = summarize(_constructed(), k=3)
    assert s.k == 3 and s.pass_at_k == {1: 0.5}
    assert summarize(_constructed()).pass_at_k == {1: 0.5}
    with pytest.raises(ValueError):
        summarize(_constructed(), k=0)


def test_uneven_samples_use_each_tasks_own_n() -> None:
    trajs = [_traj("a", i, i == 0) for i in range(4)] + [_traj("b", 0, True)]
    s = summarize(trajs)
    assert s.samples_per_task == 4
    assert s.pass_at_1 == (0.25 + 1.0) / 2
    assert s.accuracy == 2 / 5  # pooled over trajectories, unlike pass@1


def test_same_task_id_in_two_envs_are_two_tasks() -> None:
    s = summarize([_traj("t", 0, True), _traj("t", 0, False, env="other")])
    assert s.n_tasks == 2 and s.samples_per_task == 1


def test_empty_and_unsolved() -> None:
    empty = summarize([])
    assert (empty.n_trajectories, empty.n_tasks, empty.samples_per_task) == (0, 0, 0)
    assert empty.accuracy is None and empty.mean_reward is None and empty.accuracy_ci is None
    assert empty.pass_at_1 is None and empty.pass_at_k == {}
    assert empty.harmony is None and empty.tokens_per_solved is None and empty.tool_calls_per_task is None
    assert empty.status_counts == {"ok": 0, "truncated": 0, "error": 0}

    unsolved = summarize([_traj("a", 0, False), _traj("b", 0, False)])
    assert unsolved.accuracy == 0.0 and unsolved.accuracy_ci is not None and unsolved.accuracy_ci[0] == 0.0
    assert unsolved.tokens_per_solved is None and unsolved.calls_per_solved is None
    assert unsolved.cost_per_solved is None
    assert unsolved.tool_calls_per_task == 1.0


def test_subsets() -> None:
    none = summarize([_traj("a", 0, True), _traj("b", 0, False)])
    assert none.by_subset == {} and none.harmony is None
    one = summarize([_traj("a", 0, True, subset="L1")])
    assert list(one.by_subset) == ["L1"] and one.harmony == 1.0
    mixed = summarize([_traj("a", 0, True, subset="L1"), _traj("b", 0, True)])
    assert list(mixed.by_subset) == ["L1", NO_SUBSET]


def test_non_binary_rewards_use_a_t_interval() -> None:
    trajs = [_traj(f"t{i}", 0, True, reward=r) for i, r in enumerate([0.2, 0.4, 0.6, 0.8])]
    s = summarize(trajs)
    assert s.mean_reward == pytest.approx(0.5)
    assert s.mean_reward_ci is not None
    lo, hi = s.mean_reward_ci
    assert lo < 0.5 < hi and hi - lo > 0.4  # wide: four values, t with 3 degrees of freedom


def test_summary_json_round_trip() -> None:
    s = summarize(_constructed(), k=2)
    assert Summary.model_validate_json(s.model_dump_json()) == s


def test_natural_key() -> None:
    names = ["L10", "L2", "b", "L1", "L1b", "a10", "a9"]
    assert sorted(names, key=natural_key) == ["L1", "L1b", "L2", "L10", "a9", "a10", "b"]


def test_ten_thousand_trajectories() -> None:
    base = _traj("t", 0, True, subset="L1")
    trajs = [
        base.model_copy(update={"task_id": f"t{i // 4}", "sample": i % 4, "subset": f"L{i % 5}"}) for i in range(10_000)
    ]
    s = summarize(trajs, k=4)
    assert (s.n_trajectories, s.n_tasks, s.samples_per_task) == (10_000, 2_500, 4)
    assert s.pass_at_k == {1: 1.0, 4: 1.0}
    assert len(s.by_subset) == 5


def test_subset_rewards_error_counts_and_their_order() -> None:
    ts = [
        _traj("a-1", 0, True, subset="L1", reward=0.75),
        _traj("a-2", 0, False, subset="L1", reward=0.25),
        _traj("a-3", 0, True, subset="L2", reward=1.0),
        _traj("e-1", 0, False, status="error", error="ToolError", reward=None),
        _traj("e-2", 0, False, status="error", error="ModelError", reward=None),
        _traj("e-3", 0, False, status="error", error="ModelError", reward=None),
        _traj("e-4", 0, False, status="error", error="BError", reward=None),
    ]
    s = summarize(ts)
    assert s.by_subset["L1"].mean_reward == pytest.approx(0.5)  # (0.75 + 0.25) / 2
    assert s.by_subset["L2"].mean_reward == pytest.approx(1.0)
    assert list(s.error_types.items()) == [("ModelError", 2), ("BError", 1), ("ToolError", 1)]  # count, then name
    assert summarize(ts, k=1).n_trajectories == 7
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        summarize(ts, k=0)


def test_natural_key_orders_numbers_before_text_and_by_value() -> None:
    names = ["L10", "L2", "La", "L1b", "L1a", "2", "10", "b", "a"]
    assert sorted(names, key=natural_key) == ["2", "10", "L1a", "L1b", "L2", "L10", "La", "a", "b"]
