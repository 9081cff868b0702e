"""hone.rollout: episodes and the Runner (concurrency, budgets, typed failures, resume)."""

from ._config import EpisodeLimits, RunConfig
from ._episode import close_episode, run_episode
from ._runner import OnTrajectory, Runner, RunResult

__all__ = ["EpisodeLimits", "OnTrajectory", "RunConfig", "RunResult", "Runner", "close_episode", "run_episode"]
