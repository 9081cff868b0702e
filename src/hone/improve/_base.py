"""The `Strategy` protocol, `SolveResult`, and the settings every built-in strategy shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import Field

from hone.core import Budget, Ledger, Sampling, Task, Trajectory, options_model, validate_options
from hone.envs import Environment
from hone.models import ChatModel
from hone.rollout import EpisodeLimits

from ._prompts import Prompts

# Bounds of strategy options, checked with the rest of their types (`--set width=-3` is one line, not a
# strategy that silently makes no call and scores 0).
Count = Annotated[int, Field(ge=1)]
"""An option that counts rounds, samples, agents...: at least 1."""
NonNegative = Annotated[float, Field(ge=0)]
"""A weight, temperature or step that must not be negative."""
Share = Annotated[float, Field(ge=0, le=1)]
"""A fraction between 0 and 1."""

Verifier = Callable[[Trajectory], float]
"""A public verifier: a score in [0, 1] from what an agent may see (never hidden grading)."""

ORACLE_TAG = "oracle"


def oracle_label(name: str, oracle: bool) -> str:
    """A strategy's display label: its name, with "[oracle]" when hidden grading chose (the one place it is built)."""
    return f"{name}[{ORACLE_TAG}]" if oracle else name


def mark_oracle(traj: Trajectory) -> None:
    """Mark a trajectory as an oracle's: the typed `oracle` flag, and the "oracle" tag (kept for tag filters)."""
    traj.oracle = True
    if ORACLE_TAG not in traj.tags:
        traj.tags.append(ORACLE_TAG)


@dataclass
class SolveResult:
    """What a strategy produced for one task.

    `best` is the chosen answer; `candidates` every trajectory the strategy made (each with
    `strategy` set and `parent_ids` lineage; search-tree nodes, rejected retries and
    rollouts included); `ledger` the whole spend, judge and reflection calls included.
    After `hone.improve.solve` the best is a copy of the chosen candidate (its parent)
    graded by the hidden grader, with `usage` = `ledger`. `oracle` is True when hidden
    grading chose among candidates: an upper bound, not a result (labelled in every output).
    `stopped_by` is "budget" when the budget ran out; `info` holds strategy-specific figures.
    """

    best: Trajectory
    candidates: list[Trajectory]
    ledger: Ledger
    strategy: str
    oracle: bool = False
    stopped_by: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Strategy(Protocol):
    """A test-time improver: spend at most `budget` to get the best trajectory for `task`.

    A strategy sees only public feedback: the environment it is given refuses `grade()`
    unless the caller asked for an oracle (`hone.improve.solve(..., oracle=True)`).
    """

    name: str

    async def solve(self, task: Task, env: Environment, model: ChatModel, budget: Budget) -> SolveResult: ...


def _default_limits() -> EpisodeLimits:
    return EpisodeLimits()


@dataclass(kw_only=True)
class StrategyBase:
    """Settings shared by the built-in strategies (each strategy adds its own).

    `sampling` is the base sampling (strategies raise the temperature where they say so);
    None takes the model's default (`default_sampling`). Every call gets its own seed
    derived from `seed`, the task and the call's index.
    `limits` bound each attempt (an episode). `parallel` caps attempts run at once.
    `instruct` says whether the model follows instructions; None takes what the model
    declares (`hone.models.capabilities`; the embedded `micro` model does not): without
    it, operators that would ask the model to reflect, critique or score fall back to
    sampling with the feedback in context, using the `*_short` prompts and no extra calls.
    `verifier` scores candidates from public signals (default `public_score`); `success` is
    the public score at which a strategy may stop early. `prompts` holds the operator
    prompts (see `Prompts`). Values are checked against the strategy's options model
    (`hone.core.options_model`), as `--set` text is.
    """

    sampling: Sampling | None = None
    limits: EpisodeLimits = field(default_factory=_default_limits)
    parallel: int = 4
    instruct: bool | None = None
    verifier: Verifier | None = None
    success: float = 1.0
    seed: int = 0
    prompts: Prompts = field(default_factory=Prompts)

    name = "strategy"

    def __post_init__(self) -> None:
        given = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        validate_options(options_model(type(self)), given, f"strategy {self.name!r}")
