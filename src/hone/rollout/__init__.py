"""hone.rollout: episodes and the Runner (concurrency, budgets, typed failures, resume)."""

from ._config import EpisodeLimits, RunConfig
from ._episode import CallModel, close_episode, metered_call, run_episode
from ._runner import OnTrajectory, Runner, RunResult

__all__ = [
    "CallModel",
    "EpisodeLimits",
    "OnTrajectory",
    "RunConfig",
    "RunResult",
    "Runner",
    "close_episode",
    "metered_call",
    "run_episode",
]
