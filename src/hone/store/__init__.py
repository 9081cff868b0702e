"""hone.store: where runs and trajectories are kept."""

from ._base import RunInfo, RunStatus, TrajectoryQuery, TrajectoryStore

__all__ = ["RunInfo", "RunStatus", "TrajectoryQuery", "TrajectoryStore"]
