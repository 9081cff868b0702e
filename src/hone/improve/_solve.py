"""`solve`: one strategy on one task, honestly: the public view while solving, hidden grading
of the chosen best only, and optionally every trajectory stored."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from hone.core import Budget, Sampling, Task, Trajectory, hidden_reward, new_id, run_sync, utcnow
from hone.envs import Environment
from hone.metrics import summarize
from hone.models import ChatModel, arelease_loop
from hone.store import RunInfo, RunKind, TrajectoryStore

from ._base import SolveResult, Strategy, StrategyBase, mark_oracle
from ._defaults import default_sampling
from ._guard import PublicEnv
from ._registry import make_strategy, strategy_config

T = TypeVar("T")


def _final(result: SolveResult) -> Trajectory:
    """The answer of a solve as its own record: a copy of the chosen candidate, costing the whole ledger."""
    chosen = result.best
    from_candidate = any(c is chosen for c in result.candidates)
    best = chosen.model_copy(deep=True)
    best.id = new_id("t")
    best.sample = 0
    best.parent_ids = [chosen.id] if from_candidate else []
    best.usage = result.ledger.model_copy()
    best.feedback = [f for f in best.feedback if f.visibility != "hidden"]  # an oracle's grading, redone below
    best.reward = None
    best.meta = {**best.meta, "selected_from": chosen.id if from_candidate else None}
    best.meta["candidates"] = len(result.candidates)
    best.strategy = result.strategy
    if result.oracle:
        mark_oracle(best)
    best.finished_at = utcnow()
    return best


async def _grade(env: Environment, traj: Trajectory) -> None:
    if traj.status == "error":
        return
    traj.feedback.extend(f for f in await env.grade(traj) if f.visibility == "hidden")
    traj.reward = hidden_reward(traj.feedback)


async def asolve(
    strategy: Strategy | str,
    task: Task,
    env: Environment,
    model: ChatModel,
    budget: Budget | str | None = None,
    *,
    oracle: bool = False,
    store: TrajectoryStore | None = None,
    run_id: str | None = None,
) -> SolveResult:
    """Run `strategy` on `task` within `budget`, then grade only the chosen best.

    The strategy gets the environment's public view (`PublicEnv`: no `grade`, no hidden
    step feedback) unless `oracle=True`, which lets it choose by hidden grading: an upper
    bound, labelled "oracle" in the result, its trajectories' tags and strategy name.
    The returned `best` is a new trajectory (parent: the chosen candidate) whose `usage`
    is the whole ledger and whose hidden grading is in `feedback` and `reward`. With a
    `store`, the best is kept in run `run_id` and the candidates in `<run_id>-candidates`.
    """
    strat = make_strategy(strategy) if isinstance(strategy, str) else strategy
    limits = Budget.parse(budget) if isinstance(budget, str) else budget or Budget()
    inner = env.inner if isinstance(env, PublicEnv) else env
    result = await strat.solve(task, PublicEnv(inner, oracle=oracle), model, limits)
    result.oracle = oracle
    result.best = _final(result)
    await _grade(inner, result.best)
    if store is not None:
        rid = run_id or new_id("solve-")
        used = (strat.sampling or default_sampling(model)) if isinstance(strat, StrategyBase) else None
        store_run(store, rid, inner.name, model.name, None, strat, limits, [result], oracle, used)
    return result


def solve(
    strategy: Strategy | str,
    task: Task,
    env: Environment,
    model: ChatModel,
    budget: Budget | str | None = None,
    *,
    oracle: bool = False,
    store: TrajectoryStore | None = None,
    run_id: str | None = None,
) -> SolveResult:
    """Synchronous `asolve` (on a private event loop; the model's clients for it are closed with it)."""
    work = asolve(strategy, task, env, model, budget, oracle=oracle, store=store, run_id=run_id)
    return run_sync(on_private_loop(work, [model, *models_of([strategy])]))


def models_of(strategies: Sequence[Strategy | str]) -> list[ChatModel]:
    """The models strategies bring of their own (deliberation's `models`)."""
    return [m for s in strategies if not isinstance(s, str) for m in getattr(s, "models", ())]


async def on_private_loop(work: Awaitable[T], models: Sequence[ChatModel]) -> T:
    """Await `work`, then release what `models` hold for this loop (a sync wrapper's loop ends here)."""
    try:
        return await work
    finally:
        for model in models:
            await arelease_loop(model)


def store_run(
    store: TrajectoryStore,
    run_id: str,
    report_env: str,
    model_name: str,
    split: str | None,
    strategy: Strategy,
    budget: Budget,
    results: list[SolveResult],
    oracle: bool,
    sampling: Sampling | None = None,
    parent_id: str | None = None,
) -> None:
    """Keep `results` as run `run_id` (graded bests, kind `improve` or `improve-oracle`, child of
    `parent_id`: a comparison's id) and its child run `<run_id>-candidates` (every candidate, so
    each `parent_ids` entry can be looked up). `sampling` (the base sampling used, where the
    strategy left it to the model) goes in the config."""
    config: dict[str, Any] = {"strategy": strategy_config(strategy), "budget": str(budget), "oracle": oracle}
    if sampling is not None:
        config["sampling"] = sampling.model_dump(mode="json")
    kind: RunKind = "improve-oracle" if oracle else "improve"
    cands_kind: RunKind = "improve-oracle-candidates" if oracle else "improve-candidates"
    bests = [r.best.model_copy(update={"run_id": run_id}) for r in results]
    cands = [c.model_copy(update={"run_id": f"{run_id}-candidates"}) for r in results for c in r.candidates]
    summary = summarize(bests)
    store.save_run(
        RunInfo(
            id=run_id,
            kind=kind,
            parent_id=parent_id,
            env=report_env,
            model=model_name,
            split=split,
            config=config,
            status="done",
            summary={"accuracy": summary.accuracy, "n": summary.n_trajectories, "ledger": summary.ledger.model_dump()},
        )
    )
    store.save_run(
        RunInfo(
            id=f"{run_id}-candidates",
            kind=cands_kind,
            parent_id=run_id,
            env=report_env,
            model=model_name,
            split=split,
            config={**config, "best_run": run_id},
            status="done",
        )
    )
    store.put_many(bests)
    store.put_many(cands)
