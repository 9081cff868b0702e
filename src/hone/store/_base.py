"""The `TrajectoryStore` protocol and the run record."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from hone.core import ConfigError, Status, Trajectory, utcnow

from ._lease import DEFAULT_TTL_S, LeaseKeeper

RunStatus = Literal["running", "done", "interrupted", "failed"]
RunKind = Literal[
    "eval",
    "import",
    "improve",
    "improve-oracle",
    "improve-candidates",
    "improve-oracle-candidates",
    "loop",
    "loop-eval",
    "loop-collect",
    "grpo",
    "other",
]
"""What made a run: `hone eval` ("eval"), `hone import`, `hone improve` (the graded bests, and the
candidates as a child run), `hone loop` (the loop, its held-out evaluations, its collections and
GRPO rollouts, each a child of the loop), or "other" (a kind this hone does not know, from an
older store or another tool)."""

RUN_ID_MAX = 128
"""The longest run id (the stores' column width)."""


def check_run_id(run_id: str, what: str = "run id") -> str:
    """`run_id` if it can name a run and a file; else a one-line `ConfigError`.

    Run ids become file and directory names (exports, reports, checkpoints), so path
    separators, control characters (NUL included), "." and ".." and ids over
    `RUN_ID_MAX` characters are refused rather than silently rewritten.
    """
    if not run_id:
        raise ConfigError(f"{what} is empty")
    if len(run_id) > RUN_ID_MAX:
        raise ConfigError(f"{what} is {len(run_id)} characters long; the limit is {RUN_ID_MAX}")
    bad = next((ch for ch in run_id if ch in "/\\" or ord(ch) < 32 or ord(ch) == 127), None)
    if bad is not None or run_id in (".", ".."):
        why = f"contains {bad!r}" if bad is not None else "is a directory name"
        raise ConfigError(f"{what} {run_id!r} {why}; use letters, digits and . _ - (it names files)")
    return run_id


def run_id_filename(run_id: str) -> str:
    """A safe file name for a stored run id (ids imported from elsewhere may be anything)."""
    name = re.sub(r"[^A-Za-z0-9._+=@-]", "_", run_id).lstrip(".")[:RUN_ID_MAX] or "run"
    if name != run_id:  # two unsafe ids must not share a file name
        name = f"{name[:100]}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"
    return name


class RunInfo(BaseModel):
    """A run: one evaluation or collection, identified by `id` and resumable by it.

    `parent_id` names the run (or comparison) this one belongs to: a loop's evaluations and
    collections have the loop's id, a solve's candidates the solve's run, a comparison's
    strategy runs the comparison's id. `TrajectoryStore.child_runs` finds them.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: RunKind = "eval"
    parent_id: str | None = None
    env: str
    model: str
    split: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus = "running"
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    summary: dict[str, Any] = Field(default_factory=dict)


class TrajectoryQuery(BaseModel):
    """Filters for `TrajectoryStore.query`; unset fields do not filter."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = None
    env: str | None = None
    split: str | None = None
    task_id: str | None = None
    status: Status | None = None
    min_reward: float | None = None
    max_reward: float | None = None
    limit: int | None = None


@runtime_checkable
class TrajectoryStore(Protocol):
    """Where runs and trajectories live. `put` is idempotent per (run_id, task_id, sample)."""

    url: str

    def save_run(self, run: RunInfo) -> None:
        """Insert or replace the run record."""
        ...

    def get_run(self, run_id: str) -> RunInfo | None: ...

    def list_runs(self) -> list[RunInfo]: ...

    def child_runs(self, parent_id: str) -> list[RunInfo]:
        """The runs whose `parent_id` is `parent_id`, oldest first."""
        ...

    def put(self, trajectory: Trajectory) -> bool:
        """Store a trajectory; False (and no change) if its (run_id, task_id, sample) is stored."""
        ...

    def put_many(self, trajectories: Iterable[Trajectory]) -> int:
        """Store many in as few transactions as possible; returns how many were new."""
        ...

    def count(self, run_id: str | None = None) -> int:
        """How many trajectories are stored (for one run, if given)."""
        ...

    def get(self, trajectory_id: str) -> Trajectory | None: ...

    def query(self, query: TrajectoryQuery | None = None, **filters: Any) -> Iterator[Trajectory]: ...

    def done_keys(self, run_id: str) -> set[tuple[str, int]]:
        """The (task_id, sample) pairs already stored for a run."""
        ...

    def delete(self, run_id: str, *, status: Status | None = None) -> int:
        """Delete a run's trajectories (those with `status`, if given); returns how many."""
        ...

    def lease(self, run_id: str, ttl_s: float = DEFAULT_TTL_S) -> LeaseKeeper:
        """Hold `run_id` for this process until the keeper is closed; `LeaseError` if another holds it."""
        ...

    def close(self) -> None: ...
