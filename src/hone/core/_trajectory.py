"""Tasks, feedback, steps and trajectories: the record of every attempt."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._errors import HoneError
from ._ids import new_id
from ._ledger import Ledger
from ._messages import TOOL_ERROR_PREFIX, Message, ToolSpec
from ._model_call import ModelCall

SCHEMA_VERSION: Literal["hone.trajectory/2"] = "hone.trajectory/2"
SCHEMA_V1 = "hone.trajectory/1"
"""The previous version: read and upgraded on validation (see `upgrade_v1`)."""

FeedbackSource = Literal["verifier", "judge", "critic", "user", "peer", "self"]
Visibility = Literal["public", "hidden"]
Status = Literal["ok", "truncated", "error"]
StopReason = Literal["done", "max_turns", "max_tool_calls", "max_steps", "timeout", "error"]
"""Why an episode ended; `max_steps` (status "ok") is a partial attempt a later episode may extend."""


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
    """Every attempt at a task: the prompt, each step, the answer, feedback, cost and lineage.

    Lineage of a search candidate: `parent_ids`, `strategy` (its label), `op` (the operator
    that made it: "root", "sample", "expand", "revision"...) and `oracle` (hidden grading
    scored or chose it: an upper bound, never a result). A v1 record validates too: it is
    upgraded on the way in (`upgrade_v1`).
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("schema_version") == SCHEMA_V1:
            return upgrade_v1(data)
        return data

    schema_version: Literal["hone.trajectory/2"] = SCHEMA_VERSION
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
    op: str | None = None
    oracle: bool = False
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
    def partial(self) -> bool:
        """Stopped by a step cap (`stop_reason == "max_steps"`), not finished: a later episode may extend it."""
        return self.stop_reason == "max_steps"

    @property
    def tool_call_count(self) -> int:
        return sum(len(s.call.message.tool_calls or []) for s in self.steps)


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A `hone.trajectory/1` record (as a dict) in the current schema, losing nothing.

    v1 kept the search operator in `meta["op"]`, a step-capped attempt as `meta["partial"]`,
    the oracle mark as the tag "oracle", and a failed tool call only as observation text
    starting "error: "; each becomes its typed field (`op`, `stop_reason="max_steps"`,
    `oracle`, `Message.error`). The input is not modified.
    """
    out = dict(data, schema_version=SCHEMA_VERSION)
    meta = dict(out.get("meta") or {})
    if "op" in meta and out.get("op") is None:
        out["op"] = meta.pop("op")
    if meta.get("partial") is True and out.get("stop_reason") is None:
        meta.pop("partial")
        out["stop_reason"] = "max_steps"
    out["meta"] = meta
    if "oracle" in (out.get("tags") or []):
        out["oracle"] = True
    out["steps"] = [_upgrade_step(s) for s in out.get("steps") or []]
    return out


def _upgrade_step(step: Any) -> Any:
    if not isinstance(step, dict):
        return step
    observations = []
    for o in step.get("observations") or []:
        text = o.get("content") if isinstance(o, dict) else None
        if isinstance(text, str) and o.get("role") == "tool" and text.startswith(TOOL_ERROR_PREFIX):
            o = {**o, "error": o.get("error") or text[len(TOOL_ERROR_PREFIX) :]}
        observations.append(o)
    return {**step, "observations": observations}
