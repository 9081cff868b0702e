"""hone.rollout: episodes, the Runner (concurrency, budgets, typed failures, resume) and `evaluate_run`."""

from ._config import EpisodeLimits, RunConfig
from ._episode import CallModel, close_episode, metered_call, run_episode
from ._evaluate import Evaluation, evaluate_run
from ._ray import RayExecutor, RemoteModel, WorkerLost, parse_executor
from ._runner import OnTrajectory, Runner, RunResult

__all__ = [
    "CallModel",
    "EpisodeLimits",
    "Evaluation",
    "OnTrajectory",
    "RayExecutor",
    "RemoteModel",
    "RunConfig",
    "RunResult",
    "Runner",
    "close_episode",
    "evaluate_run",
    "metered_call",
    "parse_executor",
    "run_episode",
    "WorkerLost",
]
