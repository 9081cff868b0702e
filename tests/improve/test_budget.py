"""One Ledger: no strategy passes its budget, whatever the strategy, budget or model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
from _improve_helpers import NoisyCalc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hone.core import Budget, Feedback, Ledger, Message, ModelCall, Sampling, ToolSpec, Trajectory
from hone.envs import make_env
from hone.improve import Comparison, SolveResult, StrategyReport, asolve, compare, make_strategy
from hone.improve._compare import paired_ci
from hone.metrics import summarize
from hone.models import Scripted

NAMES = ["single", "best_of_n", "refine", "reflexion", "mcts", "evolve", "deliberate"]
ENV = make_env("arith", levels="2,4")
TASKS = ENV.tasks("test", n=2)


class Watch:
    """Wraps a model; checks that no call starts once the spent tokens reached the limit."""

    def __init__(self, inner: NoisyCalc, tokens: int | None) -> None:
        self.inner, self.limit, self.name = inner, tokens, inner.name
        self.done_tokens = 0
        self.calls = 0
        self.started_after_limit = 0
        self.max_tokens_asked: list[int | None] = []

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None, sampling: Sampling | None = None
    ) -> ModelCall:
        if self.limit is not None and self.done_tokens >= self.limit:
            self.started_after_limit += 1
        self.calls += 1
        self.max_tokens_asked.append(sampling.max_tokens if sampling else None)
        call = await self.inner.generate(messages, tools, sampling)
        self.done_tokens += call.usage.total_tokens
        return call


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NAMES),
    calls=st.one_of(st.none(), st.integers(0, 14)),
    tokens=st.one_of(st.none(), st.integers(40, 1500)),
    instruct=st.booleans(),
    task=st.integers(0, 1),
)
def test_budget_is_never_exceeded(name: str, calls: int | None, tokens: int | None, instruct: bool, task: int) -> None:
    model = Watch(NoisyCalc(), tokens)
    budget = Budget(calls=calls, tokens=tokens)
    strategy = make_strategy(name, instruct=instruct)
    result = asyncio.run(asolve(strategy, TASKS[task], ENV, model, budget))
    if calls is not None:
        assert result.ledger.calls <= calls
    assert result.ledger.calls == model.calls  # every call is in the one ledger (judges, peers, reflections)
    assert sum(c.usage.calls for c in result.candidates) <= result.ledger.calls
    assert model.started_after_limit == 0  # no call begins once the tokens are spent
    if tokens is not None:
        assert all(m is not None and m <= tokens for m in model.max_tokens_asked)
        assert result.ledger.tokens == model.done_tokens
    if calls == 0:
        assert result.candidates == [] and result.best.status == "error" and not result.best.passed
    assert result.best.usage == result.ledger


def test_seconds_budget_cancels_a_call_in_flight() -> None:
    model = Scripted(lambda m, t: "The answer is 1.", latency_s=0.2)
    start = time.monotonic()
    result = asyncio.run(asolve(make_strategy("best_of_n"), TASKS[0], ENV, model, Budget(seconds=0.5)))
    elapsed = time.monotonic() - start
    assert result.ledger.seconds <= 0.5 + 0.05 and elapsed < 1.0
    assert result.stopped_by == "budget" and 2 <= len(result.candidates) <= 9
    cut = [c for c in result.candidates if c.status == "error"]
    assert all(c.error is not None and c.error.type == "BudgetExceeded" for c in cut)


def test_compare_gives_every_strategy_the_same_limits_on_the_same_tasks() -> None:
    cmp = compare(["mcts", "refine"], ENV, NoisyCalc(), "calls=6", n=3, split="test")
    assert [r.strategy for r in cmp.reports] == ["best_of_n", "mcts", "refine"]
    for report in cmp.reports:
        assert [r.best.task_id for r in report.results] == cmp.tasks
        assert all(r.ledger.calls <= 6 for r in report.results)
        assert report.summary.ledger.calls == report.ledger.calls
    rows = cmp.rows()
    assert "vs_baseline" not in rows[0] and rows[1]["vs_baseline"] in ("beats", "loses", "tie")
    base = {r.best.task_id: r.best.passed for r in cmp.reports[0].results}
    diffs = [float(r.best.passed) - float(base[r.best.task_id]) for r in cmp.reports[1].results]
    assert rows[1]["delta"] == sum(diffs) / len(diffs)


def test_paired_interval_decides_beats_and_loses() -> None:
    mean, lo, hi = paired_ci([1.0] * 30 + [0.0] * 70)
    assert mean == 0.3 and 0 < lo < 0.3 < hi
    assert paired_ci([-1.0, 0.0, 1.0, 0.0])[1] < 0 < paired_ci([-1.0, 0.0, 1.0, 0.0])[2]
    assert paired_ci([1.0]) == (1.0, -1.0, 1.0)  # one task says nothing


def test_paired_interval_is_student_t_with_n_minus_one_degrees_of_freedom() -> None:
    """Exact values: 3 wins and a tie on 4 tasks is a tie (t(0.95, 3) = 3.182446); with n degrees of
    freedom (t(0.95, 4) = 2.776445) the interval would clear 0 and call it a win."""
    mean, lo, hi = paired_ci([1.0, 1.0, 1.0, 0.0])  # sd 0.5, standard error 0.25
    assert mean == 0.75
    assert lo == pytest.approx(0.75 - 3.182446305 * 0.25, abs=1e-8) and lo < 0
    assert hi == pytest.approx(0.75 + 3.182446305 * 0.25, abs=1e-8)
    _, lo2, hi2 = paired_ci([1.0, 0.0])  # df 1: t = 12.7062047
    assert (lo2, hi2) == pytest.approx((0.5 - 12.7062047 * 0.5, 0.5 + 12.7062047 * 0.5), abs=1e-6)
    _, lo90, _ = paired_ci([1.0, 1.0, 1.0, 0.0], confidence=0.90)  # t(0.90, 3) = 2.353363
    assert lo90 == pytest.approx(0.75 - 2.353363435 * 0.25, abs=1e-8)


def _report(name: str, passed: list[bool], calls: int = 0, ids: list[str] | None = None) -> StrategyReport:
    """A strategy's report on tasks t0, t1, ... (or `ids`) with these verdicts and `calls` calls per task."""
    results = []
    for i, ok in enumerate(passed):
        tid = ids[i] if ids else f"t{i}"
        best = Trajectory(run_id="r", task_id=tid, env="e", model="m", reward=float(ok))
        best.feedback = [Feedback(source="verifier", name="hidden", score=float(ok), passed=ok, visibility="hidden")]
        results.append(SolveResult(best=best, candidates=[best], ledger=Ledger(calls=calls), strategy=name))
    return StrategyReport(name, False, results, summarize([r.best for r in results]), 1.0)


def test_three_wins_and_a_tie_on_four_tasks_is_a_tie_not_a_win() -> None:
    cmp = Comparison(Budget(calls=4), ["t0", "t1", "t2", "t3"], [
        _report("best_of_n", [False, False, False, True]), _report("mcts", [True, True, True, True]),
    ])  # fmt: skip
    row = cmp.rows()[1]
    assert row["delta"] == 0.75 and row["vs_baseline"] == "tie"


def test_comparison_rows_in_full() -> None:
    """Every field of a row, the paired interval beside the baseline, and a baseline without a task."""
    base = _report("best_of_n", [False, True, False], calls=2, ids=["a", "b", "c"])
    mcts = _report("mcts", [True, True, True, True], calls=3, ids=["a", "b", "c", "d"])
    mcts.sampling = Sampling(temperature=0.7, max_tokens=64)
    rows = Comparison(Budget(calls=4), ["a", "b", "c", "d"], [base, mcts]).rows()
    assert rows[0] == {
        "strategy": "best_of_n", "oracle": False, "tasks": 3, "accuracy": pytest.approx(1 / 3),
        "ci": [pytest.approx(x) for x in base.summary.accuracy_ci or ()], "calls": 6, "tokens": 0, "seconds": 0.0,
        "wall_seconds": 1.0, "temperature": None, "max_tokens": None, "run_id": None,
    }  # fmt: skip
    # "d" is missing from the baseline: it counts as the baseline failing it (1 - 0), not as skipped
    mean, lo, hi = paired_ci([1.0, 0.0, 1.0, 1.0])
    assert rows[1]["delta"] == mean == 0.75 and rows[1]["delta_ci"] == [lo, hi]
    assert rows[1]["vs_baseline"] == "tie" and (rows[1]["calls"], rows[1]["temperature"], rows[1]["max_tokens"]) == (
        12, 0.7, 64,
    )  # fmt: skip
    assert rows[1]["strategy"] == "mcts" and rows[1]["tasks"] == 4
    worse = _report("refine", [False] * 30, ids=[f"t{i}" for i in range(30)])
    better = _report("best_of_n", [True] * 30, ids=[f"t{i}" for i in range(30)])
    assert Comparison(Budget(calls=1), [], [better, worse]).rows()[1]["vs_baseline"] == "loses"
    alone = Comparison(Budget(calls=1), [], [_report("mcts", [True])]).rows()
    assert "delta" not in alone[0]  # no baseline in the comparison: nothing to pair with
    with pytest.raises(KeyError):
        Comparison(Budget(calls=1), [], [base]).report("mcts")
    assert Comparison(Budget(calls=1), [], [base, mcts]).report("mcts") is mcts
    assert paired_ci([]) == (0.0, -1.0, 1.0)


def test_vs_baseline_at_its_edges() -> None:
    ids = [f"t{i}" for i in range(30)]

    def verdict(mine: list[bool], theirs: list[bool]) -> str:
        rows = Comparison(Budget(calls=1), [], [_report("best_of_n", theirs, ids=ids), _report("x", mine, ids=ids)])
        return str(rows.rows()[1]["vs_baseline"])

    assert verdict([True] * 30, [False] * 30) == "beats"
    assert verdict([True] * 30, [True] * 30) == "tie"  # no difference at all: interval [0, 0]
    assert verdict([False] * 30, [False] * 30) == "tie"
    mixed_mine, mixed_theirs = (
        [True, False, False, False] * 7 + [False, False],
        [False, False, True, False] * 7
        + [
            False,
            False,
        ],
    )
    assert verdict(mixed_mine, mixed_theirs) == "tie"  # interval around 0, narrower than [-1, 1]


def test_compare_settings_reach_the_reports_and_the_store(tmp_path: Any) -> None:
    from hone.store import open_store

    with open_store(tmp_path / "c.db") as st:
        model = NoisyCalc()
        cmp = compare(["refine"], ENV, model, "calls=3", n=2, split="train", store=st, oracle=True, baseline=False)
        assert cmp.budget == Budget(calls=3) and cmp.tasks == [t.id for t in ENV.tasks("train", n=2, seed=0)]
        (report,) = cmp.reports  # baseline=False: no best-of-n added
        assert report.oracle and all(r.oracle for r in report.results) and report.label == "refine[oracle]"
        assert (
            report.run_id is not None
            and report.run_id.startswith("improve-")
            and report.run_id.endswith("-refine-oracle")
        )
        assert 0 <= report.wall_seconds < 60
        run = st.get_run(report.run_id)
        assert run is not None and (run.env, run.model, run.split) == (ENV.name, model.name, "train")
        assert run.config["sampling"] is not None and run.parent_id == report.run_id.removesuffix("-refine-oracle")
        assert st.count(report.run_id) == 2
    with pytest.raises(KeyError, match="mcts"):
        cmp.report("mcts")
