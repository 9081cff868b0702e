"""Tasks, feedback, steps and trajectories: the record of every attempt."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import HoneError
from ._ids import new_id
from ._ledger import Ledger
from ._messages import Message, ToolSpec
from ._model_call import ModelCall

SCHEMA_VERSION: Literal["hone.trajectory/1"] = "hone.trajectory/1"

FeedbackSource = Literal["verifier", "judge", "critic", "user", "peer", "self"]
Visibility = Literal["public", "hidden"]
Status = Literal["ok", "truncated", "error"]
StopReason = Literal["done", "max_turns", "max_tool_calls", "timeout", "error"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Task(BaseModel):
    """One problem an environment poses.

    `input` is what the environment turns into the opening messages; `target` is hidden
    ground truth for the grader and never shown to the model; `meta` carries facts such as
    `subset` or `level` that reports group by.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    input: dict[str, Any] = Field(default_factory=dict)
    target: Any = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def subset(self) -> str | None:
        value = self.meta.get("subset", self.meta.get("level"))
        return None if value is None else str(value)


class Feedback(BaseModel):
    """A signal about an attempt.

    `visibility="public"` feedback is what an agent may see while solving (tool output,
    interpreter errors, a critique); `"hidden"` is ground-truth grading, used only to score.
    """

    model_config = ConfigDict(extra="forbid")

    source: FeedbackSource
    name: str = ""
    score: float | None = None
    passed: bool | None = None
    text: str | None = None
    evidence: dict[str, Any] | None = None
    visibility: Visibility = "public"
    step_index: int | None = None


def hidden_reward(feedback: Iterable[Feedback]) -> float | None:
    """The reward hidden grading gives: the mean over hidden feedback of each one's `score`,
    or 1.0/0.0 from its `passed` verdict where it has no score; None when no hidden feedback
    carries either (ungraded). Public feedback never counts.

    Every grader in hone sets `Trajectory.reward` with this, and learners fall back to it.
    """
    values: list[float] = []
    for f in feedback:
        if f.visibility != "hidden":
            continue
        if f.score is not None:
            values.append(f.score)
        elif f.passed is not None:
            values.append(1.0 if f.passed else 0.0)
    return sum(values) / len(values) if values else None


class ErrorInfo(BaseModel):
    """A typed error kept in a trajectory: `type` is the error class (ModelError, ToolError...)."""

    model_config = ConfigDict(extra="forbid")

    type: str
    message: str
    step_index: int | None = None
    raw: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, step_index: int | None = None, raw: str | None = None) -> ErrorInfo:
        kind = exc.kind if isinstance(exc, HoneError) else type(exc).__name__
        message = str(exc) or type(exc).__name__
        return cls(type=kind, message=message, step_index=step_index, raw=raw)


class Step(BaseModel):
    """One model call and what followed it: tool results or environment messages."""

    model_config = ConfigDict(extra="forbid")

    call: ModelCall
    observations: list[Message] = Field(default_factory=list)
    feedback: list[Feedback] = Field(default_factory=list)
    error: ErrorInfo | None = None


class Trajectory(BaseModel):
    """Every attempt at a task: the prompt, each step, the answer, feedback, cost and lineage."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["hone.trajectory/1"] = SCHEMA_VERSION
    id: str = Field(default_factory=lambda: new_id("t"))
    run_id: str = ""
    task_id: str
    sample: int = 0
    env: str
    env_version: str = "0"
    split: str | None = None
    subset: str | None = None
    model: str
    prompt: list[Message] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    answer: str | None = None
    feedback: list[Feedback] = Field(default_factory=list)
    reward: float | None = None
    status: Status = "ok"
    stop_reason: StopReason | None = None
    error: ErrorInfo | None = None
    usage: Ledger = Field(default_factory=Ledger)
    parent_ids: list[str] = Field(default_factory=list)
    strategy: str | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None

    def messages(self) -> list[Message]:
        """The whole conversation: prompt, then each response and its observations."""
        out = list(self.prompt)
        for step in self.steps:
            out.append(step.call.message)
            out.extend(step.observations)
        return out

    def public_feedback(self) -> list[Feedback]:
        """Feedback an agent may see: step feedback and trajectory feedback marked public."""
        found = [f for s in self.steps for f in s.feedback if f.visibility == "public"]
        return found + [f for f in self.feedback if f.visibility == "public"]

    @property
    def passed(self) -> bool:
        """True when hidden grading says the answer is right."""
        verdicts = [f.passed for f in self.feedback if f.visibility == "hidden" and f.passed is not None]
        return bool(verdicts) and all(verdicts)

    @property
    def tool_call_count(self) -> int:
        return sum(len(s.call.message.tool_calls or []) for s in self.steps)
