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


TOOLENV_SLIPS = ("wrong_value", "wrong_tool", "skipped_call")


def toolenv_policy(tasks: Any, slip_rate: float = 0.0, seed: int = 0) -> Policy:
    """A tool-using model for built environments (`hone env build`): the reference solutions as native calls.

    `tasks` is a `BuiltEnv` (all its splits) or an iterable of `BuiltTask`. A request is matched to
    its task by the first user message and the offered tool names. The policy calls the reference's
    steps one model turn each (the calls of a step in parallel), asks the user first on level 5
    (naming the hidden facts), answers without tools on level 6, and ends with "Answer: <value>"
    rendered from the last tool result for reads ("Done." for writes). With probability
    `slip_rate`, drawn per task from `seed` (so a run's accuracy is fixed), it makes one mistake:
    a wrong argument value, a wrong (distractor) tool, or a skipped call; on level 6 a slip calls
    a tool. `slipped(task_id)` on the returned policy says whether a task slips.
    """
    from hone.envs.build._verify import render_answer

    built = tasks.built_tasks() if hasattr(tasks, "built_tasks") else list(tasks)
    index = {(t.prompt, frozenset(t.offered)): t for t in built}
    plans: dict[str, str | None] = {}
    for t in built:
        rng = random.Random(stable_int("toolenv", seed, t.id))
        plans[t.id] = rng.choice(TOOLENV_SLIPS) if slip_rate > 0 and rng.random() < slip_rate else None

    def policy(request: dict[str, Any]) -> dict[str, Any]:
        messages: list[dict[str, Any]] = request.get("messages") or []
        users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        offered = frozenset(str((t.get("function") or {}).get("name")) for t in request.get("tools") or ())
        task = index.get((users[0] if users else "", offered))
        if task is None:
            return {"content": "I cannot help with that.\nAnswer: unknown"}
        slip = plans[task.id]
        done = sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))
        if task.level == 5 and len(users) == 1 and not done:
            facts = " and the ".join(f.replace("_", " ") for f in task.hidden_facts)
            return {"content": f"Before I start: could you tell me the {facts}?"}
        steps = [[(c.name, dict(c.arguments)) for c in step] for step in task.reference]
        if slip is not None and not steps:  # level 6: call a tool all the same, with arguments that fit it
            tool = (request.get("tools") or [{}])[0].get("function") or {}
            steps = [[(str(tool.get("name")), _fitting_arguments(tool.get("parameters") or {}))]]
        elif slip is not None:
            steps = _toolenv_slip(steps, slip, sorted(offered), stable_int("toolenv-slip", seed, task.id))
        if done < len(steps):
            return {"content": None, "tool_calls": [{"name": n, "arguments": a} for n, a in steps[done]]}
        if task.answer is None:
            return {"content": "Done." if task.reference else "None of my tools applies, so I answer directly."}
        results = [m for m in messages if m.get("role") == "tool"]
        last = str(results[-1].get("content") or "") if results else ""
        try:
            answer = render_answer(json.loads(last)) if last and not last.startswith("error:") else None
        except ValueError:
            answer = None
        return {"content": f"Here is what I found.\nAnswer: {answer if answer is not None else 'unknown'}"}

    policy.slipped = lambda task_id: plans.get(task_id) is not None  # type: ignore[attr-defined]
    return policy


def _toolenv_slip(
    steps: list[list[tuple[str, dict[str, Any]]]], kind: str, offered: list[str], salt: int
) -> list[list[tuple[str, dict[str, Any]]]]:
    """`steps` with one mistake of `kind` in the last call."""
    out = [list(step) for step in steps]
    name, args = out[-1][-1]
    if kind == "skipped_call":
        out[-1].pop()
        return [step for step in out if step]
    distractors = [t for t in offered if t not in {n for step in steps for n, _ in step}]
    if kind == "wrong_tool" and distractors:
        out[-1][-1] = (distractors[salt % len(distractors)], args)
        return out
    if not args:  # nothing to get wrong: skip the call instead
        out[-1].pop()
        return [step for step in out if step]
    key = sorted(args)[salt % len(args)]
    out[-1][-1] = (name, {**args, key: _bfcl_wrong(args[key])})
    return out


def _fitting_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Values for a tool's required arguments that its JSON Schema accepts (first enum value, else by type)."""
    samples: dict[str, Any] = {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    out: dict[str, Any] = {}
    for name in schema.get("required") or []:
        prop = (schema.get("properties") or {}).get(name) or {}
        kind = prop.get("type")
        kind = kind[0] if isinstance(kind, list) and kind else kind
        out[name] = prop["enum"][0] if prop.get("enum") else samples.get(str(kind), "x")
    return out
