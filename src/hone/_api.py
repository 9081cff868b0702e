"""The Python entry points: `evaluate` (sync) and `aevaluate` (async)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hone.core import Budget, ConfigError, Ledger, Sampling, Trajectory
from hone.envs import Environment, make_env
from hone.metrics import Summary
from hone.models import ChatModel, resolve_model
from hone.rollout import EpisodeLimits, OnTrajectory, RayExecutor, RunConfig, evaluate_run, parse_executor
from hone.store import TrajectoryStore, check_run_id, open_store

StoreArg = TrajectoryStore | str | Path | None | Literal[False]


@dataclass
class EvalResult:
    """The outcome of `evaluate`: the run id, its trajectories, a summary and what it cost.

    `remaining` (task, sample) pairs were not run, `stopped_by` says why ("budget"): pass
    the same `run_id` again, with a larger budget, to run them.
    """

    run_id: str
    trajectories: list[Trajectory]
    summary: Summary
    ledger: Ledger
    remaining: int = 0
    stopped_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _resolve_store(store: StoreArg) -> TrajectoryStore | None:
    if store is False:
        return None
    if store is None or isinstance(store, str | Path):
        return open_store(store)
    return store


async def aevaluate(
    env: str | Environment,
    model: str | ChatModel,
    *,
    split: str = "test",
    n: int | None = None,
    k: int = 1,
    concurrency: int = 32,
    seed: int = 0,
    run_id: str | None = None,
    sampling: Sampling | None = None,
    limits: EpisodeLimits | None = None,
    budget: Budget | str | None = None,
    env_args: dict[str, Any] | None = None,
    store: StoreArg = None,
    retry_errors: bool = False,
    on_trajectory: OnTrajectory | None = None,
    executor: str | RayExecutor | None = None,
) -> EvalResult:
    """Evaluate `model` on `env`: n tasks x k samples, stored and summarised.

    `env` and `model` are objects or spec strings (`"arith"`, `"openai:gpt-4o-mini"`).
    `store=None` uses the default store (`HONE_STORE` or `.hone/hone.db`); `False` keeps
    nothing on disk. Passing an existing `run_id` resumes that run. `executor="ray"` (a local Ray
    cluster), `"ray:HOST:PORT"` or a `RayExecutor` runs the episodes on Ray workers, which rebuild
    the environment and model from their specs, so both must be given as spec strings then.
    """
    remote = executor if isinstance(executor, RayExecutor) else None
    if isinstance(executor, str):
        kind, address = parse_executor(executor)
        if kind == "ray":
            if not isinstance(env, str) or not isinstance(model, str):
                raise ConfigError(
                    f"executor={executor!r} needs env and model as spec strings: Ray workers rebuild them"
                )
            remote = RayExecutor(env, model, dict(env_args or {}), address=address)
            remote.check()
    config = RunConfig.build(
        run_id=None if run_id is None else check_run_id(run_id),
        split=split,
        n=n,
        k=k,
        seed=seed,
        concurrency=concurrency,
        sampling=sampling or Sampling(),
        limits=limits or EpisodeLimits(),
        budget=Budget.parse(budget) if isinstance(budget, str) else budget or Budget(),
        retry_errors=retry_errors,
    )
    env_obj = make_env(env, **(env_args or {})) if isinstance(env, str) else env
    st = _resolve_store(store)
    model_obj = resolve_model(model) if isinstance(model, str) else model
    ev = await evaluate_run(
        env_obj,
        model_obj,
        config,
        store=st,
        env_spec=env if isinstance(env, str) else None,
        model_spec=model if isinstance(model, str) else None,
        on_trajectory=on_trajectory,
        close_model=isinstance(model, str),  # only what was opened here
        executor=remote,
    )
    return EvalResult(
        run_id=ev.result.run_id,
        trajectories=ev.trajectories,
        summary=ev.summary,
        ledger=ev.result.ledger,
        remaining=ev.result.remaining,
        stopped_by=ev.result.stopped_by,
    )


def evaluate(env: str | Environment, model: str | ChatModel, **kwargs: Any) -> EvalResult:
    """Synchronous `aevaluate`, for scripts and notebooks (not from inside a running loop)."""
    return asyncio.run(aevaluate(env, model, **kwargs))
