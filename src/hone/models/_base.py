"""The `ChatModel` protocol every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from hone.core import Message, ModelCall, Sampling, ToolSpec, stable_hash


@runtime_checkable
class ChatModel(Protocol):
    """A policy: given a conversation and the tools on offer, produce the next message.

    Implementations are async and safe to call concurrently. `name` identifies the model
    in trajectories and reports.
    """

    name: str

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        sampling: Sampling | None = None,
    ) -> ModelCall: ...


def request_digest(
    model: str, messages: Sequence[Message], tools: Sequence[ToolSpec] | None, sampling: Sampling | None
) -> str:
    """A stable hash of a request: the key of caches and replay cassettes."""
    return stable_hash(
        {
            "model": model,
            "messages": [m.model_dump(exclude_none=True, exclude={"error"}) for m in messages],  # error: not sent
            "tools": [t.model_dump() for t in tools or ()],
            "sampling": (sampling or Sampling()).model_dump(),
        },
        length=32,
    )


async def aclose_model(model: object) -> None:
    """Release a model's resources (HTTP clients) if it holds any."""
    close = getattr(model, "aclose", None)
    if close is not None:
        await close()


async def arelease_loop(model: object) -> None:
    """Release what `model`, and every model it wraps (`inner`), holds for the running event loop.

    HTTP clients belong to the loop that made them. Code that runs a loop of its own (the
    sync wrappers such as `hone.improve.solve`) calls this before the loop ends, so no
    client outlives it unclosed; unlike `aclose_model`, the model stays usable (caches and
    cassettes stay open) and makes a new client on the next loop.
    """
    seen: set[int] = set()
    current: object | None = model
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        release = getattr(current, "arelease_loop", None)
        if release is not None:
            await release()
        current = getattr(current, "inner", None)
