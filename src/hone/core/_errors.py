"""Typed errors. Every error carries a message a user can act on."""

from __future__ import annotations


class HoneError(Exception):
    """Base of every error hone raises on purpose."""

    kind = "HoneError"


class ConfigError(HoneError):
    """Bad configuration: unknown spec, invalid option, unwritable path."""

    kind = "ConfigError"


class ModelError(HoneError):
    """The model backend failed (HTTP error after retries, bad response, replay miss)."""

    kind = "ModelError"


class ContextOverflow(ModelError):
    """The prompt does not fit the model's context: refused, never silently truncated.

    `prompt_tokens` and `context` say by how much (None where a server's message did not say);
    an episode records it as error type `ContextOverflow` with the prompt (and any earlier steps)
    kept. `detail` is a server's own words, for an OpenAI-compatible endpoint that refused.
    """

    kind = "ContextOverflow"

    def __init__(self, model: str, prompt_tokens: int | None, context: int | None, detail: str | None = None) -> None:
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.context = context
        if prompt_tokens is not None and context is not None:
            what = f"the prompt is {prompt_tokens} tokens; {model} has a context of {context} tokens"
        else:
            size = f" ({prompt_tokens} tokens)" if prompt_tokens is not None else ""
            window = f" of {context} tokens" if context is not None else ""
            what = f"the prompt{size} is too long for {model}'s context{window}"
        said = f"; the server said: {detail}" if detail else ""
        super().__init__(f"context overflow: {what} (the prompt and at least one new token must fit){said}")


class EnvError(HoneError):
    """The environment raised while resetting or stepping."""

    kind = "EnvError"


class ToolError(HoneError):
    """A tool call could not be executed: unknown tool, malformed arguments, tool crash."""

    kind = "ToolError"


class GradeError(HoneError):
    """The environment's grader raised."""

    kind = "GradeError"


class DataError(HoneError):
    """Malformed input data (a dataset line, a cassette, an import file)."""

    kind = "DataError"


class StoreError(HoneError):
    """The trajectory store cannot be opened or written."""

    kind = "StoreError"


class BudgetExceeded(HoneError):
    """Spending would pass a Budget limit."""

    kind = "BudgetExceeded"

    def __init__(self, limit: str, used: float, maximum: float) -> None:
        self.limit = limit
        self.used = used
        self.maximum = maximum
        super().__init__(f"budget exceeded: {limit} {used:g} > limit {maximum:g}")


class EpisodeTimeout(HoneError):
    """An episode ran past its per-episode timeout."""

    kind = "Timeout"
