"""compare's seams: tasks chosen by seed, the baseline's settings, and the executor contract (each task
sent whole with its budget and oracle flag, strategies checked before any work), without a Ray cluster;
tests/rollout/test_ray_executor.py runs the same path on a real one."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any, cast

from _improve_helpers import NoisyCalc

from hone.core import Budget, Sampling
from hone.envs import make_env
from hone.improve import BestOfN, Refine, acompare, compare
from hone.improve._compare import fair_baseline
from hone.improve._registry import strategy_config
from hone.rollout import EpisodeLimits

ENV = make_env("arith", levels="1-2")


class InProcessExecutor:
    """RayExecutor's contract, here: arguments travel pickled, `fn(env, model, *args)` runs on a copy."""

    def __init__(self, env: Any, model: Any) -> None:
        self.env, self.model = env, model
        self.events: list[Any] = []

    def portable(self, obj: Any, what: str) -> None:
        pickle.dumps(obj)
        self.events.append(("portable", what, type(obj).__name__))

    async def start(self) -> None:
        self.events.append("start")

    async def close(self) -> None:
        self.events.append("close")

    async def apply(self, fn: Any, *args: Any) -> Any:
        strategy, task, budget, oracle = pickle.loads(pickle.dumps(args))
        self.events.append(("apply", fn.__name__, strategy.name, task.id, budget, oracle))
        return await fn(self.env, self.model, strategy, task, budget, oracle)


def _per_task(cmp: Any) -> list[list[tuple[str, bool | None, int]]]:
    return [[(r.best.task_id, r.best.passed, len(r.candidates)) for r in rep.results] for rep in cmp.reports]


def test_an_executor_gets_each_task_whole_with_its_budget_and_gives_the_same_results() -> None:
    here = compare(["refine"], ENV, NoisyCalc(), "calls=3", n=4, seed=2, oracle=True)
    executor = InProcessExecutor(ENV, NoisyCalc())
    work = acompare(["refine"], ENV, NoisyCalc(), "calls=3", n=4, seed=2, oracle=True, executor=cast("Any", executor))
    there = asyncio.run(work)
    assert _per_task(there) == _per_task(here)
    assert [r["accuracy"] for r in there.rows()] == [r["accuracy"] for r in here.rows()]
    assert executor.events[:3] == [
        ("portable", "strategy 'best_of_n'", "BestOfN"),
        ("portable", "strategy 'refine'", "Refine"),
        "start",
    ]
    assert all(r.oracle for rep in there.reports for r in rep.results)  # the oracle flag reached the worker
    assert executor.events[-1] == "close"
    sent = [e for e in executor.events if isinstance(e, tuple) and e[0] == "apply"]
    tasks = [t.id for t in ENV.tasks("test", n=4, seed=2)]
    assert sorted(sent) == sorted(
        ("apply", "solve_there", s, t, Budget(calls=3), True) for s in ("best_of_n", "refine") for t in tasks
    )


def test_tasks_are_drawn_with_the_seed() -> None:
    cmp = compare(["refine"], ENV, NoisyCalc(), "calls=2", n=3, seed=7, baseline=False)
    assert cmp.tasks == [t.id for t in ENV.tasks("test", n=3, seed=7)]
    assert cmp.tasks != [t.id for t in ENV.tasks("test", n=3, seed=0)]


def test_the_baseline_samples_and_bounds_attempts_as_the_first_strategy_does() -> None:
    limits = EpisodeLimits(max_turns=3)
    sampling = Sampling(temperature=0.4)
    base = fair_baseline([Refine(sampling=sampling, limits=limits, seed=5)])
    assert (base.sampling, base.limits, base.seed) == (sampling, limits, 5)


def test_reports_carry_the_strategy_config_and_no_run_id_without_a_store() -> None:
    cmp = compare([Refine(rounds=2)], ENV, NoisyCalc(), "calls=3", n=2)
    base, refine = cmp.reports
    assert refine.config == strategy_config(Refine(rounds=2)) and refine.config["rounds"] == 2
    assert base.config == strategy_config(BestOfN()) | {"name": "best_of_n"}
    assert (base.run_id, refine.run_id) == (None, None)
    empty = compare(["refine"], ENV, NoisyCalc(), "calls=3", tasks=[], baseline=False)
    assert empty.rows()[0]["ci"] is None  # no tasks, no interval


def test_row_times_are_kept_to_the_millisecond() -> None:
    cmp = compare(["refine"], ENV, NoisyCalc(), "calls=3", n=2, baseline=False)
    (report,) = cmp.reports
    for r in report.results:  # known values, not the run's
        r.ledger.seconds = 0.17283945
    report.wall_seconds = 1.2345678
    row = report.row()
    assert (row["seconds"], row["wall_seconds"]) == (0.346, 1.235)
