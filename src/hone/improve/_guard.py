"""`PublicEnv`: the environment as a strategy sees it, without hidden grading."""

from __future__ import annotations

from hone.core import Feedback, HoneError, Message, Task, Trajectory
from hone.envs import Environment, Reset, StepResult
from hone.rollout import close_episode


class HiddenFeedbackError(HoneError):
    """A strategy asked for hidden grading without `oracle=True`."""

    kind = "HiddenFeedbackError"


class PublicEnv:
    """Wraps an environment so a strategy cannot read hidden feedback.

    `grade()` raises `HiddenFeedbackError` unless `oracle` is True, and hidden feedback an
    environment attaches to a step is dropped before the strategy sees it. Everything else
    is delegated, so episodes behave exactly as with the wrapped environment.
    """

    def __init__(self, env: Environment, oracle: bool = False) -> None:
        self.inner: Environment = env.inner if isinstance(env, PublicEnv) else env
        self.oracle = oracle
        self.name = env.name
        self.version = env.version

    def splits(self) -> list[str]:
        return self.inner.splits()

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        return self.inner.tasks(split, n=n, seed=seed)

    def clone(self) -> PublicEnv:
        return PublicEnv(self.inner.clone(), self.oracle)

    async def reset(self, task: Task) -> Reset:
        return await self.inner.reset(task)

    async def step(self, message: Message) -> StepResult:
        result = await self.inner.step(message)
        public = [f for f in result.feedback if f.visibility == "public"]
        if len(public) != len(result.feedback):
            result = result.model_copy(update={"feedback": public})
        return result

    async def aclose(self) -> None:
        """End the episode's resources (the wrapped environment's optional `aclose()`)."""
        await close_episode(self.inner)

    async def grade(self, trajectory: Trajectory) -> list[Feedback]:
        if not self.oracle:
            raise HiddenFeedbackError(
                f"{self.name}: hidden grading is not available to a strategy; "
                "pass oracle=True for an (oracle-labelled) upper bound"
            )
        return await self.inner.grade(trajectory)
