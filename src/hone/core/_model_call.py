"""One call of a model: what was asked, what came back, and what it cost."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._messages import Message


class Sampling(BaseModel):
    """Sampling parameters for one generation.

    `seed` makes sampling reproducible where the backend honours it; hone's Runner gives
    every (task, sample) its own seed so caches and cassettes keep samples apart.
    `logprobs` asks the backend for token ids and per-token log-probabilities.
    `extra` is passed through to the backend unchanged.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    logprobs: bool = False
    extra: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    """Token counts reported by the backend for one call."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ModelCall(BaseModel):
    """The record of one `ChatModel.generate` call.

    Token-exact data (`prompt_token_ids`, `completion_token_ids`, `completion_logprobs`) is
    kept where the backend gives it: re-applying a chat template to a history does not
    reproduce the generated tokens, and training needs the tokens that were generated.
    """

    model_config = ConfigDict(extra="forbid")

    model: str
    request_digest: str
    sampling: Sampling = Field(default_factory=Sampling)
    message: Message
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    cost_usd: float | None = None
    cached: bool = False
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    completion_logprobs: list[float] | None = None
    tool_format: str | None = None
    """How a raw-text backend rendered tools and parsed calls (`hermes`, `llama3_json`, `mistral`, `fallback`)."""
