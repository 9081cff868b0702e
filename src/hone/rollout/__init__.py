"""hone.rollout: episodes and the Runner (concurrency, budgets, typed failures, resume)."""

from ._config import EpisodeLimits, RunConfig
from ._episode import run_episode
from ._runner import OnTrajectory, Runner, RunResult

__all__ = ["EpisodeLimits", "OnTrajectory", "RunConfig", "RunResult", "Runner", "run_episode"]
