"""The call-level helpers of `BuiltEnv`: which offered tool a name means, whether a call may run, FSM goals,
and the final answer of a trajectory (plain functions over the IR; the episode machinery is in `_env`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from hone.core import TOOL_ERROR_PREFIX, ErrorInfo, ToolCall, Trajectory

from ._envkit import final_answer, schema_error
from ._spec import BuiltTask, Scenario, ToolDoc, canonical_json

MAX_ARGUMENTS_CHARS = 100_000
"""A call whose arguments are longer (as JSON) is refused before it reaches the sandbox."""


def goal_unmet(goal: list[Any], state: Any) -> str | None:
    """None when the final `state` (a JSON object from the sandbox: untrusted data) meets every goal condition,
    else why not (the FSM's own rules, `_fsmcore`, evaluated here in hone's process on plain data)."""
    from ._fsmcore import _fsm_holds

    if not isinstance(state, dict):
        return "no final state"
    try:
        return _fsm_holds(goal, state, {})
    except (KeyError, TypeError, ValueError) as exc:
        return f"the final state does not fit the goal ({type(exc).__name__}: {exc})"


def canonical_hash(value: Any) -> str:
    """sha256 of `value`'s canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _offered(task: BuiltTask, scenario: Scenario, others: Mapping[str, Scenario]) -> list[ToolDoc]:
    return [_doc(name, scenario, others) for name in task.offered]


def _doc(name: str, scenario: Scenario, others: Mapping[str, Scenario]) -> ToolDoc:
    """The offered tool `name`: the task's scenario's, else a distractor lent by another scenario of the build."""
    try:
        return scenario.tool(name)
    except KeyError:
        for other in others.values():
            if any(d.name == name for d in other.tools):
                return other.tool(name)
        raise


def _check_call(task: BuiltTask, scenario: Scenario, call: ToolCall, others: Mapping[str, Scenario]) -> str | None:
    """Why `call` must not run (unknown tool, unparsable or schema-breaking arguments), or None."""
    if call.parse_error is not None and not call.name:  # not even a name could be read
        return f"the tool call is not valid JSON ({call.parse_error})"
    if call.name not in task.offered:
        return f"unknown tool {call.name!r}; available tools: {', '.join(task.offered) or 'none'}"
    if call.parse_error is not None:
        return f"{call.name}: arguments are not a valid JSON object ({call.parse_error})"
    problem = schema_error(call.arguments, _doc(call.name, scenario, others).parameters)
    if problem is None:
        try:
            size = len(json.dumps(call.arguments, allow_nan=False))
        except (TypeError, ValueError):
            return f"{call.name}: arguments are not plain JSON"
        if size > MAX_ARGUMENTS_CHARS:
            problem = f"arguments are {size} characters (at most {MAX_ARGUMENTS_CHARS})"
    return None if problem is None else f"{call.name}: {problem}"


def _tool_error(text: str, call: ToolCall) -> tuple[str, str, ErrorInfo]:
    raw = call.arguments_raw if call.arguments_raw is not None else json.dumps(call.arguments, default=str)
    return f"{TOOL_ERROR_PREFIX}{text}", text, ErrorInfo(type="ToolError", message=text, raw=raw)


def _answer_of(text: str | None) -> str | None:
    """The stated final answer: after the last "Answer:", else the whole reply (at most 2,000 characters)."""
    found = final_answer(text)
    if found is not None:
        return found
    return text.strip()[:2000] or None if text else None


def _final_text(trajectory: Trajectory) -> str | None:
    if not trajectory.steps:
        return None
    last = trajectory.steps[-1].call.message
    return None if last.tool_calls else last.text
