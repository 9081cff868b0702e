"""Helpers of the hone serve tests: scripted models that record what reaches them."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hone.core import Message, ModelCall, Sampling, ToolCall, ToolSpec, Usage
from hone.models import Scripted, call_tool, request_digest
from hone.serve import BackgroundServer
from hone.testing import find_expression

CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    },
}


class CharTokenizer:
    """One token per character (id = code point): enough to check logprob token texts."""

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in ids)


def arith_reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Message:
    """Call the calculator on the question's expression, then answer with its result."""
    last = messages[-1]
    if last.role == "tool":
        return Message.assistant(f"The answer is {last.text}.")
    return call_tool("calculator", {"expression": find_expression(last.text) or "0"})


class Recorder:
    """A `Scripted` reply function that keeps every request and returns token-exact `ModelCall`s."""

    def __init__(self, reply: Callable[[Sequence[Message], Sequence[ToolSpec]], Message | str] = arith_reply):
        self.reply = reply
        self.requests: list[tuple[list[Message], list[ToolSpec]]] = []

    def __call__(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelCall:
        self.requests.append((list(messages), list(tools)))
        reply = self.reply(messages, tools)
        message = Message.assistant(reply) if isinstance(reply, str) else reply
        prompt = "".join(m.text for m in messages)
        completion = message.text + "".join(_raw(tc) for tc in message.tool_calls or [])
        ids = [ord(c) for c in completion]
        return ModelCall(
            model="scripted",
            request_digest=request_digest("scripted", messages, tools, None),
            message=message,
            finish_reason="tool_calls" if message.tool_calls else "stop",
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(ids)),
            prompt_token_ids=[ord(c) for c in prompt],
            completion_token_ids=ids,
            completion_logprobs=[-0.5] * len(ids),
        )


def _raw(tc: ToolCall) -> str:
    return tc.arguments_raw if tc.arguments_raw is not None else json.dumps(tc.arguments)


class SamplingSpy(Scripted):
    """A `Scripted` model that also records the `Sampling` of each call."""

    def __init__(self, replies: Any, **options: Any) -> None:
        super().__init__(replies, **options)
        self.samplings: list[Sampling | None] = []

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None, sampling: Sampling | None = None
    ) -> ModelCall:
        self.samplings.append(sampling)
        return await super().generate(messages, tools, sampling)


@contextmanager
def serving(model: Any, name: str | None = None) -> Iterator[BackgroundServer]:
    with BackgroundServer(model, model_name=name) as server:
        yield server


class ServeProcess:
    """`python -m hone serve ...` as a subprocess; `url` is set once it prints its ready line."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None, timeout_s: float = 90.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hone", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout or ()], daemon=True).start()
        deadline = time.monotonic() + timeout_s
        self.url = ""
        while not self.url and self.proc.poll() is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            match = re.fullmatch(r"serving (\S+) at (http://\S+/v1)\n", line)
            if match:
                self.name, self.url = match.groups()
        if not self.url:
            self.stop()
            raise AssertionError(f"hone serve did not start: {self.stderr()}")

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read() if self.proc.stderr else ""

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        """Send `sig` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
