"""What a model can do, declared by the model (not guessed from its name)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Capabilities(BaseModel):
    """What a `ChatModel` can do; a backend sets its `capabilities` attribute, wrappers forward the inner one.

    The defaults describe a chat API model (it follows instructions and calls tools); a model
    without the attribute gets them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    instruct: bool = Field(default=True, description="Follows instructions written in a prompt (a judge, a critique).")
    tools: bool = Field(default=True, description="Calls tools.")
    context: int | None = Field(default=None, ge=1, description="Context length in tokens; None: unknown.")
    temperature: float = Field(default=1.0, ge=0, description="The sampling temperature it works best at by default.")


MICRO_TEMPERATURE = 0.7
"""hone's micro models' default temperature: at 1.0 their samples are so noisy that best-of-n by vote
(calls=16) is worse than one greedy sample on arith; from 0.3 to 0.7 it matches or beats it
(benchmarks/RESULTS.md)."""

MICRO = Capabilities(instruct=False, tools=True, context=1024, temperature=MICRO_TEMPERATURE)
"""hone's embedded micro models: trained on one prompt format, they follow no written instructions.
Their checkpoints declare this in `config.json` (`hone_capabilities`), which trained copies keep."""

CONFIG_KEY = "hone_capabilities"
"""The `config.json` key where a Hugging Face checkpoint declares its `Capabilities`."""


def capabilities(model: object) -> Capabilities:
    """`model`'s declared capabilities: its own, else those of the model it wraps (`inner`), else the defaults."""
    current: Any = model
    for _ in range(16):  # wrappers nest a few deep; a cycle must not hang
        declared = getattr(current, "capabilities", None)
        if isinstance(declared, Capabilities):
            return declared
        current = getattr(current, "inner", None)
        if current is None:
            break
    return Capabilities()
