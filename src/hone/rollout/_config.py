"""Run configuration: what to run, how many, and within which limits."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hone.core import Budget, ConfigError, Sampling


class EpisodeLimits(BaseModel):
    """Limits on one episode.

    `tool_errors="fail"` ends an episode at the first failed tool call (unknown tool, broken
    JSON, bad arguments) with status `error` and a typed `ToolError`; `"observe"` shows the
    error to the model as the tool's result and lets it try again; `"auto"` (the default) is
    the environment's own choice (its `tool_errors` attribute, else `"fail"`): environments
    built to teach tool use (`hone env build`, `toolgen`) show schema errors as public feedback.
    """

    model_config = ConfigDict(extra="forbid")

    max_turns: int = Field(default=10, ge=1, description="Model calls per episode before it is truncated.")
    max_tool_calls: int = Field(default=20, ge=0, description="Tool calls per episode before it is truncated.")
    timeout_s: float | None = Field(default=300.0, gt=0, description="Wall-clock limit per episode.")
    tool_errors: Literal["fail", "observe", "auto"] = "auto"


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

    @field_validator("sampling")
    @classmethod
    def _sane_sampling(cls, value: Sampling) -> Sampling:
        if not math.isfinite(value.temperature) or value.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {value.temperature}")
        if value.max_tokens is not None and value.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {value.max_tokens}")
        return value

    @classmethod
    def build(cls, **fields: Any) -> RunConfig:
        """`RunConfig(**fields)`, with an invalid field as a one-line `ConfigError` naming it."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise ConfigError(one_line(exc)) from None


def one_line(exc: ValidationError) -> str:
    """A pydantic error as one line: the first problem's field and message, and how many more."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or exc.title
    msg = str(err.get("msg", "invalid"))
    got = "" if msg.startswith("Value error, ") else f", got {err.get('input')!r}"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid {where}: {msg.removeprefix('Value error, ')}{got}{more}"
