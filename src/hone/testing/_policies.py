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


_SLIPS = ("wrong_value", "missing_argument", "wrong_function")


def bfcl_policy(slip_rate: float = 0.2, seed: int = 0, data_dir: str | None = None) -> Policy:
    """A function-calling model for the `bfcl` environment: the ground truth as native tool calls.

    It finds the question (the first user message and the offered tool names) in BFCL's data
    (`data_dir`, default as the `bfcl` environment finds it) and answers with one correct call
    per ground-truth call, under the offered (mapped) tool names. With probability `slip_rate`,
    drawn per question from `seed` (whatever the temperature, so a run's accuracy is fixed),
    it makes one mistake instead: a wrong value, a missing argument or a wrong function; every
    mistake is checked with BFCL's rules to really fail. Unknown questions get a plain reply.
    """
    from hone.envs._bfcl import CATEGORIES, expected_calls, load, reference_answer, resolve_dir, tool_names

    root = resolve_dir(data_dir)
    index: dict[tuple[str, frozenset[str]], Any] = {}
    for category in CATEGORIES:
        for entry in load(root, category):
            users = [str(m.get("content") or "") for m in entry.messages if m.get("role") == "user"]
            index[(users[0] if users else "", frozenset(tool_names(entry.functions)))] = entry

    def policy(request: dict[str, Any]) -> dict[str, Any]:
        messages: list[dict[str, Any]] = request.get("messages") or []
        users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        offered = frozenset(str((t.get("function") or {}).get("name")) for t in request.get("tools") or ())
        entry = index.get((users[0] if users else "", offered))
        if entry is None:
            return {"content": "I cannot help with that."}
        to_tool = {orig: tool for tool, orig in tool_names(entry.functions).items()}
        calls = reference_answer(entry)
        rng = random.Random(stable_int("bfcl", seed, entry.id))
        if slip_rate > 0 and rng.random() < slip_rate:
            calls = _bfcl_slip(calls, entry, rng, expected_calls(entry.ground_truth))
        tool_calls = [{"name": to_tool.get(name, name), "arguments": args} for name, args in calls]
        return {"content": None, "tool_calls": tool_calls}

    return policy


def _bfcl_slip(calls: list[tuple[str, dict[str, Any]]], entry: Any, rng: random.Random, expected: Any) -> Any:
    """`calls` with one mistake that BFCL's rules reject (the last resort: an unknown function)."""
    from hone.feedback._toolmatch import match_calls

    schemas = {f["name"]: f for f in entry.functions}
    kinds = list(_SLIPS)
    rng.shuffle(kinds)
    for kind in kinds:
        slipped = [(name, dict(args)) for name, args in calls]
        i = rng.randrange(len(slipped))
        name, args = slipped[i]
        if kind == "wrong_function":
            others = sorted(set(schemas) - {name})
            slipped[i] = (rng.choice(others) if others else f"{name}_v2", args)
        elif not args:
            continue
        elif kind == "missing_argument":
            del args[rng.choice(sorted(args))]
        else:
            key = rng.choice(sorted(args))
            args[key] = _bfcl_wrong(args[key])
        if not match_calls(slipped, expected, schemas).ok:
            return slipped
    return [(f"{name}_v2", args) for name, args in calls]


def _bfcl_wrong(value: Any) -> Any:
    """A different value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1000
    if isinstance(value, str):
        return value + " elsewhere"
    if isinstance(value, list):
        return [*value, value[-1]] if value else ["extra"]
    if isinstance(value, dict):
        return {**value, "extra": 1}
    return "wrong"
