"""`compare`: strategies on the same tasks under the same per-task budget, beside best-of-n."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hone.core import Budget, Ledger, Sampling, Task, new_id, run_sync
from hone.envs import Environment
from hone.metrics import Summary, summarize, t_quantile
from hone.models import ChatModel
from hone.rollout import RayExecutor
from hone.store import TrajectoryStore

from ._base import ORACLE_TAG, SolveResult, Strategy, StrategyBase, oracle_label
from ._best_of_n import BestOfN
from ._defaults import default_sampling
from ._registry import BASELINE, Single, make_strategy, strategy_config
from ._solve import asolve, models_of, on_private_loop, store_run


@dataclass
class StrategyReport:
    """One strategy's results on the compared tasks: graded bests, their summary and the cost.

    `strategy` is the name (`label` adds "[oracle]" when `oracle`). `summary` is
    `hone.metrics.summarize` over the bests (accuracy with its 95% interval;
    its ledger is the strategies' whole spend, since each best's usage is its solve's
    ledger; its `seconds` sum each solve's, which overlap). `wall_seconds` is the elapsed
    time of this strategy's whole pass over the tasks. `sampling` is the base sampling it
    used (the model's default where the strategy set none).
    """

    strategy: str
    oracle: bool
    results: list[SolveResult]
    summary: Summary
    wall_seconds: float
    run_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    sampling: Sampling | None = None

    @property
    def ledger(self) -> Ledger:
        return Ledger.total([r.ledger for r in self.results])

    @property
    def label(self) -> str:
        """The display name: `strategy`, with "[oracle]" when hidden grading chose."""
        return oracle_label(self.strategy, self.oracle)

    def row(self) -> dict[str, Any]:
        """The report as one table row (what the CLI prints and the benchmark writes)."""
        s, led = self.summary, self.ledger
        return {
            "strategy": self.label,
            "oracle": self.oracle,
            "tasks": s.n_tasks,
            "accuracy": s.accuracy,
            "ci": list(s.accuracy_ci) if s.accuracy_ci else None,
            "calls": led.calls,
            "tokens": led.tokens,
            "seconds": round(led.seconds, 3),  # summed over solves run concurrently: not elapsed time
            "wall_seconds": round(self.wall_seconds, 3),
            "temperature": None if self.sampling is None else self.sampling.temperature,
            "max_tokens": None if self.sampling is None else self.sampling.max_tokens,
            "run_id": self.run_id,
        }


def paired_ci(diffs: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) of per-task differences: a Student-t interval (a single task says nothing: [-1, 1])."""
    n = len(diffs)
    mean = sum(diffs) / n if n else 0.0
    if n < 2:
        return mean, -1.0, 1.0
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


@dataclass
class Comparison:
    """Strategies run on the same tasks under the same per-task `budget`, baseline included."""

    budget: Budget
    tasks: list[str]
    reports: list[StrategyReport]
    baseline: str = BASELINE

    def report(self, name: str) -> StrategyReport:
        for r in self.reports:
            if r.strategy == name:
                return r
        raise KeyError(name)

    def rows(self) -> list[dict[str, Any]]:
        """One row per strategy; beside the baseline, `delta` (accuracy minus the baseline's),
        `delta_ci` (95% interval of the mean per-task difference, paired on the same tasks)
        and `vs_baseline`: "beats" when that interval is above 0, "loses" below, else "tie"."""
        base = next((r for r in self.reports if r.strategy == self.baseline), None)
        out = []
        for r in self.reports:
            row = r.row()
            if base is not None and r is not base and r.results:
                theirs = {x.best.task_id: float(x.best.passed) for x in base.results}
                diffs = [float(x.best.passed) - theirs.get(x.best.task_id, 0.0) for x in r.results]
                mean, lo, hi = paired_ci(diffs)
                row["delta"] = mean
                row["delta_ci"] = [lo, hi]
                row["vs_baseline"] = "beats" if lo > 0 else "loses" if hi < 0 else "tie"
            out.append(row)
        return out


OnResult = Callable[[str, SolveResult], None]


def base_sampling(strategy: Strategy, model: ChatModel) -> Sampling | None:
    """The base sampling `strategy` uses with `model` (None for a strategy without the shared settings)."""
    if not isinstance(strategy, StrategyBase):
        return None
    return strategy.sampling or default_sampling(model)


def fair_baseline(strategies: Sequence[Strategy]) -> BestOfN:
    """Best-of-n sampling as the first of `strategies` does (same sampling, limits and seed)."""
    for s in strategies:
        if isinstance(s, StrategyBase) and not isinstance(s, Single):
            return BestOfN(sampling=s.sampling, limits=s.limits, seed=s.seed)
    return BestOfN()


async def acompare(
    strategies: Sequence[Strategy | str],
    env: Environment,
    model: ChatModel,
    budget: Budget | str,
    *,
    tasks: Sequence[Task] | None = None,
    n: int | None = None,
    split: str = "test",
    seed: int = 0,
    concurrency: int = 16,
    baseline: bool = True,
    oracle: bool = False,
    store: TrajectoryStore | None = None,
    run_id: str | None = None,
    env_spec: str | None = None,
    model_spec: str | None = None,
    on_result: OnResult | None = None,
    executor: RayExecutor | None = None,
) -> Comparison:
    """Run each strategy on the same tasks with the same per-task `budget`; grade each best.

    `best_of_n` (the compute-matched baseline) is added first unless present or
    `baseline=False`; it samples as the first compared strategy does (its `sampling`,
    `limits` and `seed`; `single`, greedy by design, lends nothing). Strategies run one
    after another (so their wall times compare), tasks `concurrency` at a time. With a
    `store`, each strategy's graded bests are kept as run `<run_id>-<strategy>` and its
    candidates as `<run_id>-<strategy>-candidates`. `executor` (a `RayExecutor` built for the same
    environment and model specs) solves the tasks on Ray workers, each task whole on one worker;
    storing, grading's figures and the comparison stay here.
    """
    limits = Budget.parse(budget) if isinstance(budget, str) else budget
    made = [make_strategy(s) if isinstance(s, str) else s for s in strategies]
    if baseline and not any(s.name == BASELINE for s in made):
        made.insert(0, fair_baseline(made))
    task_list = list(tasks) if tasks is not None else env.tasks(split, n=n, seed=seed)
    base_id = run_id or new_id("improve-")
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(strategy: Strategy, task: Task) -> SolveResult:
        async with gate:
            if executor is not None:
                result: SolveResult = await executor.apply(solve_there, strategy, task, limits, oracle)
            else:
                result = await asolve(strategy, task, env, model, limits, oracle=oracle)  # attempts clone it
        if on_result is not None:
            on_result(strategy.name, result)
        return result

    async def each(strategy: Strategy) -> StrategyReport:
        start = time.monotonic()
        results = list(await asyncio.gather(*(one(strategy, t) for t in task_list)))
        wall = time.monotonic() - start
        rid = f"{base_id}-{strategy.name}" + (f"-{ORACLE_TAG}" if oracle else "")
        used = base_sampling(strategy, model)
        if store is not None:
            where = (env_spec or env.name, model_spec or model.name, split)
            store_run(store, rid, *where, strategy, limits, results, oracle, used, parent_id=base_id)
        return StrategyReport(
            strategy=strategy.name,
            oracle=oracle,
            results=results,
            summary=summarize([r.best for r in results]),
            wall_seconds=wall,
            run_id=rid if store is not None else None,
            config=strategy_config(strategy),
            sampling=used,
        )

    if executor is not None:
        for strategy in made:
            executor.portable(strategy, f"strategy {strategy.name!r}")
        await executor.start()  # a worker that cannot build the env or model refuses the run here
    try:
        reports = [await each(strategy) for strategy in made]  # one after another, so wall times compare
    finally:
        if executor is not None:
            await executor.close()
    return Comparison(budget=limits, tasks=[t.id for t in task_list], reports=reports)


async def solve_there(
    env: Environment, model: ChatModel, strategy: Strategy, task: Task, budget: Budget, oracle: bool
) -> SolveResult:
    """`asolve` on a Ray worker, with the worker's environment and model (`RayExecutor.apply`); a dead
    worker's task is solved again from the start."""
    return await asolve(strategy, task, env, model, budget, oracle=oracle)


def compare(
    strategies: Sequence[Strategy | str],
    env: Environment,
    model: ChatModel,
    budget: Budget | str,
    **kwargs: Any,
) -> Comparison:
    """Synchronous `acompare` (on a private event loop; the model's clients for it are closed with it)."""
    work = acompare(strategies, env, model, budget, **kwargs)
    return run_sync(on_private_loop(work, [model, *models_of(strategies)]))
