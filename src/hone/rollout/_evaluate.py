"""`evaluate_run`: the one evaluate path (run or resume a run, read back all of it, summarise), under
`hone.aevaluate`, `hone.learn.micro.evaluate_micro` and the loop's evaluations and collections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hone.core import Task, Trajectory
from hone.envs import Environment
from hone.metrics import Summary, summarize
from hone.models import ChatModel, aclose_model
from hone.store import RunKind, TrajectoryStore

from ._config import RunConfig
from ._ray import RayExecutor
from ._runner import OnTrajectory, Runner, RunResult


@dataclass
class Evaluation:
    """A run's result, all its trajectories (earlier sessions' too, from the store) and their summary."""

    result: RunResult
    trajectories: list[Trajectory]
    summary: Summary


async def evaluate_run(
    env: Environment,
    model: ChatModel,
    config: RunConfig,
    *,
    store: TrajectoryStore | None = None,
    tasks: Sequence[Task] | None = None,
    kind: RunKind = "eval",
    parent_id: str | None = None,
    env_spec: str | None = None,
    model_spec: str | None = None,
    on_trajectory: OnTrajectory | None = None,
    close_model: bool = False,
    executor: RayExecutor | None = None,
) -> Evaluation:
    """Run (or resume) `config`'s run of `model` on `env` (`tasks`, default the split's first `n`) and
    summarise every trajectory of it; `close_model` closes `model` afterwards (one the caller opened).
    `executor` runs the episodes on Ray workers (see `RayExecutor`)."""
    runner = Runner(
        env,
        model,
        config,
        store=store,
        kind=kind,
        parent_id=parent_id,
        env_spec=env_spec,
        model_spec=model_spec,
        executor=executor,
    )
    try:
        result = await runner.run(tasks, on_trajectory=on_trajectory)
    finally:
        if close_model:
            await aclose_model(model)
    trajectories = list(store.query(run_id=result.run_id)) if store is not None else result.trajectories
    return Evaluation(result, trajectories, summarize(trajectories, k=config.k))
