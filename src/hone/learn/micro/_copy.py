"""The copy curriculum: conversations that teach the micro model to copy characters.

Tool use on `arith` is mostly copying: the expression from the question into the tool
call, the tool's result into the answer. Trained from scratch on demonstrations alone, the
micro model learns the format in a few hundred steps but copying barely at all: digits
are predictable enough from the shape of an expression that it settles for plausible
numbers (1,500 steps: 0.5% accuracy). Short conversations whose only content is a copy
(a random string over the arithmetic alphabet, so nothing but copying predicts it) teach
the induction circuit first; mixed into the demonstrations afterwards they keep it. With
600 steps of them first, the same budget reaches L1-L3 accuracy near 100%.
"""

from __future__ import annotations

import json
import random
from typing import Any

ALPHABET = "0123456789 +-*/()"


def copy_records(n: int, seed: int = 0, *, min_len: int = 3, max_len: int = 25) -> list[dict[str, Any]]:
    """`n` conversational records (`messages`, `tools` as JSON text) that are pure copies.

    Each is `Compute: S` answered by a calculator call on exactly `S` (a random string);
    every second one goes on with a random tool result `R` and the answer `The answer is R.`
    No system prompt and no tool list, so the records stay short (a step on them costs a
    fraction of one on demonstrations).
    """
    rng = random.Random(f"hone-copy-{seed}")
    tools = "[]"
    out = []
    for i in range(n):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(min_len, max_len))).strip() or "7"
        call = {
            "id": "c0",
            "type": "function",
            "function": {"name": "calculator", "arguments": json.dumps({"expression": s})},
        }
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": f"Compute: {s}"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ]
        if i % 2:
            r = ("-" if rng.random() < 0.1 else "") + "".join(
                rng.choice("0123456789") for _ in range(rng.randint(1, 9))
            )
            messages += [
                {"role": "tool", "tool_call_id": "c0", "content": r},
                {"role": "assistant", "content": f"The answer is {r}."},
            ]
        out.append({"messages": messages, "tools": tools})
    return out
