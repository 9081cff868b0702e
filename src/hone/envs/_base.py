"""The `Environment` protocol: tasks, episodes (reset/step) and hidden grading."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from hone.core import ErrorInfo, Feedback, Message, Task, ToolSpec, Trajectory


class Reset(BaseModel):
    """The opening of an episode: messages for the model and the tools it may call."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)


class StepResult(BaseModel):
    """What the environment returns after the model's message.

    `observations` (tool results, environment replies) are appended to the conversation;
    `feedback` is public feedback on this step; `answer` is the final answer once `done`.
    `tool_errors` lists tool calls that failed (unknown tool, malformed arguments, a tool
    that raised); each also has an error observation so the conversation stays well formed.
    """

    model_config = ConfigDict(extra="forbid")

    observations: list[Message] = Field(default_factory=list)
    done: bool = False
    answer: str | None = None
    feedback: list[Feedback] = Field(default_factory=list)
    tool_errors: list[ErrorInfo] = Field(default_factory=list)


@runtime_checkable
class Environment(Protocol):
    """An environment poses tasks, runs an episode's tool calls and grades the result.

    An instance holds one episode's state: the Runner calls `clone()` for each episode.
    `tasks` is deterministic for a given split, `n` and `seed`. `grade` returns hidden
    feedback (ground truth); agents never see it while solving.
    """

    name: str
    version: str

    def splits(self) -> list[str]: ...

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]: ...

    def clone(self) -> Environment: ...

    async def reset(self, task: Task) -> Reset: ...

    async def step(self, message: Message) -> StepResult: ...

    async def grade(self, trajectory: Trajectory) -> list[Feedback]: ...


@runtime_checkable
class Demonstrator(Protocol):
    """An environment that can write demonstrations: example episodes for supervised training.

    Optional: environments that know how their tasks are solved implement it. Demonstrations
    are graded `Trajectory`s recorded as a real episode would be (prompt, tool specs, steps
    with the environment's own observations, answer, hidden feedback, reward), solved or
    realistically imperfect, so a model trained on them has room to improve from feedback.
    They are drawn from `split` ("train" unless asked) and deterministic for a given `seed`.
    """

    def demonstrations(self, n: int, *, seed: int = 0, split: str = "train") -> list[Trajectory]: ...
