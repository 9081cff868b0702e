"""Policies of the mock server: plain functions from a request body to an assistant message.

A `Policy` receives the chat-completions request JSON (a dict) and returns an assistant
message dict: `{"content": str | None, "tool_calls": [{"name": ..., "arguments": ...}]}`.
`arguments` is a JSON string (sent as is, so it may be deliberately broken) or a dict
(serialised by the server). A tool call may carry an `id`; the server assigns a
deterministic one otherwise. An optional `finish_reason` overrides the server's choice.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from hone.core import stable_int

Policy = Callable[[dict[str, Any]], dict[str, Any]]

# Runs of characters that can form an arithmetic expression.
_EXPR_RUN = re.compile(r"[\d\s+\-*/().]+")
_OPERATOR = re.compile(r"[+\-*/]")
_DIGIT = re.compile(r"\d")


def find_expression(text: str) -> str | None:
    """The longest run of digits, spaces and `+ - * / ( ) .` holding an operator and a digit.

    Surrounding whitespace and a sentence-ending period are stripped.
    """
    best: str | None = None
    for match in _EXPR_RUN.finditer(text):
        candidate = match.group().strip().rstrip(".").strip()
        if _OPERATOR.search(candidate) and _DIGIT.search(candidate) and (best is None or len(candidate) > len(best)):
            best = candidate
    return best


def _offers_tool(request: dict[str, Any], name: str) -> bool:
    for tool in request.get("tools") or ():
        function = tool.get("function") or {}
        if function.get("name") == name:
            return True
    return False


def _slip(value: str) -> str:
    """`value` plus one when it is a number (a plausible arithmetic slip), else unchanged."""
    try:
        number = int(value)
    except ValueError:
        try:
            real = float(value)
        except ValueError:
            return value
        return repr(real + 1)
    return str(number + 1)


def arith_policy(slip_rate: float = 0.2) -> Policy:
    """A deterministic model for hone's `arith` environment (the server's default policy).

    With a `calculator` tool on offer: a user turn gets a `calculator` call on the longest
    arithmetic expression in it (or "The answer is 0." when there is none); a tool turn gets
    "The answer is {result}.". When `temperature > 0` (absent means 1, as in the OpenAI
    API) the answer slips by one with probability `slip_rate`, drawn from a generator
    seeded by the request's `seed` and the conversation, so k samples with distinct seeds
    differ while any one request always gets the same answer. Temperature 0 never slips.
    """

    def policy(request: dict[str, Any]) -> dict[str, Any]:
        messages: list[dict[str, Any]] = request.get("messages") or []
        last = messages[-1] if messages else {}
        if not _offers_tool(request, "calculator"):
            return {"content": "The answer is 0."}
        if last.get("role") == "user":
            expression = find_expression(str(last.get("content") or ""))
            if expression is None:
                return {"content": "The answer is 0."}
            return {"content": None, "tool_calls": [{"name": "calculator", "arguments": {"expression": expression}}]}
        if last.get("role") == "tool":
            result = str(last.get("content") or "").strip()
            temperature = request.get("temperature")
            if slip_rate > 0 and (1.0 if temperature is None else float(temperature)) > 0:
                conversation = json.dumps(messages, sort_keys=True, separators=(",", ":"))
                rng = random.Random(stable_int(request.get("seed"), conversation))
                if rng.random() < slip_rate:
                    result = _slip(result)
            return {"content": f"The answer is {result}."}
        return {"content": "The answer is 0."}

    return policy


_DEF = re.compile(r"^def\s+(\w+)\s*\(", re.MULTILINE)


def code_policy(solutions: dict[str, str], slip_rate: float = 0.2) -> Policy:
    """A deterministic coder for code environments such as `humaneval`.

    `solutions` maps a problem's prompt (the function stub) to a full correct solution. A
    user turn that contains one of those prompts gets its solution in a ```python block;
    with `temperature > 0` the function slips to `return None` with probability `slip_rate`
    (seeded per conversation, as `arith_policy`). A later user turn (a retry after failing
    public tests) always gets the correct solution. Other requests get a reply without code.
    """
    stubs = [(prompt.strip(), code) for prompt, code in solutions.items()]

    def policy(request: dict[str, Any]) -> dict[str, Any]:
        messages: list[dict[str, Any]] = request.get("messages") or []
        users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        found = next((code for stub, code in stubs if users and stub in users[0]), None)
        if found is None:
            return {"content": "I cannot help with that."}
        code = found
        temperature = request.get("temperature")
        if len(users) == 1 and slip_rate > 0 and (1.0 if temperature is None else float(temperature)) > 0:
            conversation = json.dumps(messages, sort_keys=True, separators=(",", ":"))
            if random.Random(stable_int(request.get("seed"), conversation)).random() < slip_rate:
                name = _DEF.findall(code)[-1]
                head = code[: code.rindex(f"def {name}")]
                code = head + f"def {name}(*args, **kwargs):\n    return None\n"
        return {"content": f"Here is the function.\n\n```python\n{code}```\n"}

    return policy


def humaneval_solutions(path: str | None = None) -> dict[str, str]:
    """`code_policy`'s solutions from a HumanEval file: prompt -> prompt + canonical solution."""
    from hone.envs import load_problems

    return {str(r["prompt"]): str(r["prompt"]) + str(r["canonical_solution"]) for r in load_problems(path)}


class PolicyExhausted(RuntimeError):
    """A non-cycling `scripted_policy` ran out of replies (the server answers 500)."""


def scripted_policy(replies: Sequence[dict[str, Any] | str], *, cycle: bool = True) -> Policy:
    """Answers with `replies` in order, whatever the request; a `str` reply is the content.

    When the replies are exhausted it starts again from the first (`cycle=True`, the
    default) or raises `PolicyExhausted`, which the server reports as a 500 error.
    The position is shared by all conversations, as with `hone.models.Scripted`.
    """
    items = [{"content": r} if isinstance(r, str) else dict(r) for r in replies]
    if not items:
        raise ValueError("scripted_policy needs at least one reply")
    position = 0

    def policy(request: dict[str, Any]) -> dict[str, Any]:
        nonlocal position
        if position >= len(items):
            if not cycle:
                raise PolicyExhausted(f"scripted policy ran out of replies after {len(items)}")
            position = 0
        reply = items[position]
        position += 1
        return reply

    return policy
