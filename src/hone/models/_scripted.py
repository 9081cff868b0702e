"""`Scripted`: a model that answers from a list or a function (for tests and examples)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from hone.core import Message, ModelCall, ModelError, Sampling, ToolCall, ToolSpec, Usage

from ._base import request_digest
from ._capabilities import Capabilities

Reply = str | Message | ModelCall
ReplyFn = Callable[[Sequence[Message], Sequence[ToolSpec]], Reply]


def call_tool(
    name: str, arguments: dict[str, Any] | str, content: str | None = None, call_id: str = "call_0"
) -> Message:
    """An assistant message calling one tool; a `str` `arguments` is kept raw (may be broken JSON)."""
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError as exc:
            tc = ToolCall(id=call_id, name=name, arguments_raw=arguments, parse_error=f"invalid JSON: {exc}")
        else:
            tc = ToolCall(id=call_id, name=name, arguments=parsed, arguments_raw=arguments)
    else:
        tc = ToolCall(id=call_id, name=name, arguments=arguments)
    return Message.assistant(content, [tc])


class Scripted:
    """Answers from a list (in order, shared by all conversations) or from a function.

    With a function, each call gets the conversation and tools and returns a string (the
    assistant's text), a `Message`, or a whole `ModelCall`. Token usage is estimated as one
    token per four characters so ledgers and budgets behave as with a real model.
    """

    def __init__(
        self,
        replies: Sequence[Reply] | ReplyFn,
        *,
        name: str = "scripted",
        latency_s: float = 0.0,
        capabilities: Capabilities | None = None,
    ):
        self.name = name
        self.capabilities = capabilities or Capabilities()
        self.latency_s = latency_s
        self._fn: ReplyFn | None = None
        self._replies: list[Reply] = []
        if callable(replies):
            self._fn = replies
        else:
            self._replies = list(replies)
        self._next = 0
        self.calls = 0

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        sampling: Sampling | None = None,
    ) -> ModelCall:
        self.calls += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self._fn is not None:
            reply = self._fn(messages, tools or [])
        else:
            if self._next >= len(self._replies):
                raise ModelError(f"Scripted model {self.name!r} ran out of replies after {len(self._replies)}")
            reply = self._replies[self._next]
            self._next += 1
        if isinstance(reply, ModelCall):
            return reply
        message = Message.assistant(reply) if isinstance(reply, str) else reply
        prompt_chars = sum(len(m.content or "") for m in messages)
        out_chars = len(message.content or "") + sum(len(json.dumps(tc.arguments)) for tc in message.tool_calls or [])
        return ModelCall(
            model=self.name,
            request_digest=request_digest(self.name, messages, tools, sampling),
            sampling=sampling or Sampling(),
            message=message,
            finish_reason="tool_calls" if message.tool_calls else "stop",
            usage=Usage(prompt_tokens=prompt_chars // 4 + 1, completion_tokens=out_chars // 4 + 1),
            latency_s=self.latency_s,
        )
