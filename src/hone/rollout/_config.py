"""Run configuration: what to run, how many, and within which limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hone.core import Budget, Sampling


class EpisodeLimits(BaseModel):
    """Limits on one episode.

    `tool_errors="fail"` ends an episode at the first failed tool call (unknown tool, broken
    JSON, bad arguments) with status `error` and a typed `ToolError`; `"observe"` shows the
    error to the model as the tool's result and lets it try again.
    """

    model_config = ConfigDict(extra="forbid")

    max_turns: int = Field(default=10, ge=1, description="Model calls per episode before it is truncated.")
    max_tool_calls: int = Field(default=20, ge=0, description="Tool calls per episode before it is truncated.")
    timeout_s: float | None = Field(default=300.0, gt=0, description="Wall-clock limit per episode.")
    tool_errors: Literal["fail", "observe"] = "fail"


class RunConfig(BaseModel):
    """A run: tasks x k samples of one environment split, with one model, within a Budget."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(default=None, description="Reuse an id to resume a run; new id if None.")
    split: str = "test"
    n: int | None = Field(default=None, ge=1, description="Number of tasks (all if None).")
    k: int = Field(default=1, ge=1, description="Samples per task.")
    seed: int = Field(default=0, description="Seeds task selection and per-sample sampling seeds.")
    concurrency: int = Field(default=32, ge=1, description="Episodes in flight at once.")
    limits: EpisodeLimits = Field(default_factory=EpisodeLimits)
    budget: Budget = Field(default_factory=Budget, description="Limits over the whole run's Ledger.")
    sampling: Sampling = Field(default_factory=Sampling)
    retry_errors: bool = Field(default=False, description="On resume, rerun episodes stored with status error.")
    tags: list[str] = Field(default_factory=list)
