"""The `TrajectoryStore` protocol and the run record."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from hone.core import Status, Trajectory, utcnow

RunStatus = Literal["running", "done", "interrupted", "failed"]


class RunInfo(BaseModel):
    """A run: one evaluation or collection, identified by `id` and resumable by it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: str = "eval"
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

    def close(self) -> None: ...
