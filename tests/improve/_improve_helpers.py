"""Shared helpers of the hone.improve tests: a seeded noisy arithmetic model and a tiny secret env."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from hone.core import Message, ModelCall, Sampling, ToolSpec, Usage, stable_int
from hone.models import call_tool, request_digest
from hone.testing import find_expression


def _question(messages: Sequence[Message]) -> str:
    users = [m.text for m in messages if m.role == "user"]
    return users[0] if users else ""


class NoisyCalc:
    """An arithmetic "model" whose randomness comes only from `sampling.seed`.

    It calls the calculator on the question's expression, except that with probability
    `wrong` it first changes one number in it (a grounded but wrong answer); after the
    tool result it answers it, except that with probability `slip` it adds one (an
    ungrounded answer). It records every conversation it was shown in `seen`.
    """

    def __init__(self, wrong: float = 0.3, slip: float = 0.2, name: str = "noisy") -> None:
        self.wrong, self.slip, self.name = wrong, slip, name
        self.seen: list[list[Message]] = []
        self.calls = 0

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None, sampling: Sampling | None = None
    ) -> ModelCall:
        self.calls += 1
        self.seen.append(list(messages))
        sampling = sampling or Sampling()
        rng = random.Random(stable_int("noisy", sampling.seed, len(messages)))
        last = messages[-1]
        if last.role == "tool":
            text = last.text.strip()
            if rng.random() < self.slip and text.lstrip("-").isdigit():
                text = str(int(text) + 1)
            message = Message.assistant(f"The answer is {text}.")
        else:
            expr = find_expression(_question(messages)) or "0"
            if rng.random() < self.wrong:
                numbers = re.findall(r"\d+", expr)
                target = rng.choice(numbers)
                expr = expr.replace(target, str(int(target) + rng.randint(1, 9)), 1)
            message = call_tool("calculator", {"expression": expr}, call_id=f"c{self.calls}")
        chars = sum(len(m.text) for m in messages)
        return ModelCall(
            model=self.name,
            request_digest=request_digest(self.name, messages, tools, sampling),
            sampling=sampling,
            message=message,
            usage=Usage(prompt_tokens=chars // 4 + 1, completion_tokens=12),
        )
