"""The `Learner` protocol: what one learning step of the loop is.

A learner turns the checkpoint of iteration `i` into a trained model for iteration `i + 1`.
It sees a `LearnContext` (the checkpoint, `collect`, the store, a logger) and returns a
`LearnRecord`; the loop saves the model, evaluates it and persists the record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hone.core import Task, Trajectory
from hone.envs import Environment
from hone.feedback import RewardFn
from hone.learn.train import FitReport
from hone.rollout import EpisodeLimits
from hone.store import RunKind, TrajectoryStore

Collect = Callable[[list[Task], int, float], list[Trajectory]]
StoreRun = Callable[[str, RunKind, list[Trajectory]], list[Trajectory]]  # (run id, kind, trajectories) -> stored


@dataclass
class LearnContext:
    """What a learner sees of the loop for one step: iteration `iteration` -> `iteration + 1`."""

    iteration: int
    checkpoint: Path  # the model to start from (not to be written)
    loop_id: str
    env: Environment
    store: TrajectoryStore
    log: Callable[[str], None]
    collect: Collect  # run (or resume) this step's collection: tasks x k samples at a temperature, stored
    collect_run: str  # the run id `collect` writes, a child run of the loop (kind `loop-collect`)
    store_run: StoreRun  # store trajectories a learner sampled itself (GRPO's) as a child run of the loop
    seed: int  # seeds this step's training (the loop's seed + iteration)
    task_seed: int  # seeds this step's choice of train tasks (new tasks every iteration)
    train_split: str
    train_n: int
    focus: bool
    limits: EpisodeLimits
    reward: RewardFn | None = None  # `--reward`: what the learner optimises instead of the environment's reward
    env_spec: str = ""  # how workers elsewhere build `env` (the loop's `env`)
    executor: str = "local"  # the loop's `--executor`: where a learner may put its generation
    workers: int = 2  # Ray workers, with a Ray executor

    def rewarded(self, trajectories: list[Trajectory]) -> list[Trajectory]:
        """`trajectories` (copies) with `reward` set to the chosen reward's value; as they are without one.

        The store keeps the environment's reward; what a learner weighs (GRPO's advantages, DPO's pairs,
        the monitors' zero-variance groups) is the chosen one. `passed` (expert iteration's keep) is unchanged.
        """
        if self.reward is None:
            return trajectories
        return [t.model_copy(update={"reward": float(self.reward(t))}) for t in trajectories]

    def run_id(self, kind: str, iteration: int | None = None) -> str:
        """The id of a child run of the loop for `kind` (`collect`, `grpo`) at `iteration` (default: this)."""
        return f"{self.loop_id}-{kind}-{self.iteration if iteration is None else iteration}"


@dataclass
class LearnRecord:
    """What a learning step did; the loop saves `model` and `tokenizer` as the next checkpoint."""

    model: Any
    tokenizer: Any
    fit: FitReport
    collect_run: str | None = None  # the run whose trajectories the step learned from
    data: dict[str, Any] = field(default_factory=dict)  # what the data builder kept, skipped and why
    collected: list[Trajectory] = field(default_factory=list)  # for the monitors and the KL to the start


class Learner(Protocol):
    """One learning step of the loop. A learner class takes its options model (`Config`) when built."""

    def learn(self, ctx: LearnContext) -> LearnRecord:
        """Train a copy of `ctx.checkpoint`'s model; the loop saves and evaluates it."""
        ...
