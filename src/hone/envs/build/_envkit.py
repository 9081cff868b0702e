"""Helpers of `BuiltEnv` (no sandbox): reading a built directory, argument validation, the final answer,
the simulated user."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hone.core import ConfigError, duplicate_tool_name

from ._spec import BuildManifest, BuiltTask, Scenario

ENV_FILE = "hone_env.json"
TASKS_FILE = "tasks.jsonl"
SPLITS_FILE = "splits.json"
SPLITS = ("train", "test", "heldout")

DEFAULT_SYSTEM_PROMPT = (
    "You help the user by calling the tools provided. Call a tool when it does what the request needs; "
    "use one call's result in a later call when the request depends on it. If a value the request needs "
    "is missing, ask the user for it instead of guessing. If no tool fits the request, do not call any: "
    "say so. When the request asks for information, end your last reply with a line 'Answer: <value>'."
)

Made = tuple[str, dict[str, Any]]


@dataclass
class _Data:
    """What a built directory holds; shared by every clone of an env (read-only after loading)."""

    root: Path
    manifest: BuildManifest
    scenarios: dict[str, Scenario]
    tasks: dict[str, BuiltTask]
    splits: dict[str, list[str]]
    system_prompt: str
    initial: dict[str, str] = field(default_factory=dict)  # scenario -> digest of its state before any call


def _read(root: Path) -> _Data:
    env_file = root / ENV_FILE
    if not env_file.is_file():
        raise ConfigError(f"{root} is not a built environment (no {ENV_FILE}; make one with `hone env build`)")
    where = str(env_file)
    try:
        head = json.loads(env_file.read_text(encoding="utf-8"))
        manifest = BuildManifest.model_validate(head["manifest"])
        scenarios = {s.name: s for s in (Scenario.model_validate(x) for x in head["scenarios"])}
        system_prompt = str(head.get("system_prompt") or DEFAULT_SYSTEM_PROMPT)
        where = str(root / TASKS_FILE)
        tasks: dict[str, BuiltTask] = {}
        with (root / TASKS_FILE).open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                where = f"{root / TASKS_FILE}:{number}"
                if line.strip():
                    task = BuiltTask.model_validate_json(line)
                    tasks[task.id] = task
        where = str(root / SPLITS_FILE)
        raw_splits = json.loads((root / SPLITS_FILE).read_text(encoding="utf-8"))
        splits = {name: [str(i) for i in raw_splits.get(name, [])] for name in SPLITS}
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{where}: not a readable built environment ({first})") from None
    for name, ids in splits.items():
        unknown = [i for i in ids if i not in tasks]
        if unknown:
            raise ConfigError(f"{root / SPLITS_FILE}: split {name!r} names unknown task {unknown[0]!r}")
    for scenario in scenarios.values():  # a call finds its tool by name: each name must mean one tool
        twice = duplicate_tool_name(doc.name for doc in scenario.tools)
        if twice is not None:
            raise ConfigError(f"{env_file}: scenario {scenario.name!r} has two tools named {twice!r}")
    for task in tasks.values():
        if task.scenario not in scenarios:
            raise ConfigError(f"{root / TASKS_FILE}: task {task.id!r} names unknown scenario {task.scenario!r}")
        twice = duplicate_tool_name(task.offered)
        if twice is not None:
            raise ConfigError(f"{root / TASKS_FILE}: task {task.id!r} offers {twice!r} twice")
    return _Data(root, manifest, scenarios, tasks, splits, system_prompt)


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _type_name(value: Any) -> str:
    for name, kind in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float)):
        if isinstance(value, kind):
            return name
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _has_type(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind not in _JSON_TYPES:
        return True  # a type this check does not know is not held against the call
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES[kind])


def schema_error(value: Any, schema: Mapping[str, Any], where: str = "arguments", *, top: bool = True) -> str | None:
    """Why `value` breaks `schema` (the JSON Schema subset tool documents use), or None.

    Checks `type` (one or a list), `enum`, `const`, number bounds, string length and `pattern`,
    array `items`/length, object `required`/`properties`/`additionalProperties` (false by default
    at the top, since a tool function takes only its named arguments), `anyOf`/`oneOf`.
    """
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if kinds and not any(_has_type(value, k) for k in kinds):
        return f"{where} should be {' or '.join(kinds)}, got {_type_name(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} must be one of {schema['enum']}, got {value!r}"
    if "const" in schema and value != schema["const"]:
        return f"{where} must be {schema['const']!r}"
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        forms = [o for o in options if isinstance(o, Mapping)] if isinstance(options, list) else []
        if forms and all(schema_error(value, o, where, top=False) is not None for o in forms):
            return f"{where} matches none of the accepted forms"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number_error(value, schema, where)
    if isinstance(value, str):
        return _string_error(value, schema, where)
    if isinstance(value, list):
        return _array_error(value, schema, where)
    if isinstance(value, dict):
        return _object_error(value, schema, where, top)
    return None


def _number_error(value: float, schema: Mapping[str, Any], where: str) -> str | None:
    if not math.isfinite(value):
        return f"{where} must be a finite number"
    for key, sign in (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"), ("exclusiveMaximum", "<")):
        bound = schema.get(key)
        if not isinstance(bound, int | float) or isinstance(bound, bool):
            continue
        ok = {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[sign]
        if not ok:
            return f"{where} must be {sign} {bound}, got {value}"
    return None


def _string_error(value: str, schema: Mapping[str, Any], where: str) -> str | None:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        return f"{where} must have at least {low} characters"
    if isinstance(high, int) and len(value) > high:
        return f"{where} must have at most {high} characters"
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) is None:
                return f"{where} must match the pattern {pattern!r}"
        except re.error:
            return None  # a broken pattern in a document is not the caller's fault
    return None


def _array_error(value: list[Any], schema: Mapping[str, Any], where: str) -> str | None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        return f"{where} must have at least {low} items"
    if isinstance(high, int) and len(value) > high:
        return f"{where} must have at most {high} items"
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            if (problem := schema_error(item, items, f"{where}[{i}]", top=False)) is not None:
                return problem
    return None


def _object_error(value: dict[str, Any], schema: Mapping[str, Any], where: str, top: bool) -> str | None:
    props: Mapping[str, Any] = schema.get("properties") or {}
    missing = [k for k in schema.get("required") or [] if k not in value]
    if missing:
        return f"missing required argument {', '.join(map(repr, missing))}" if top else f"{where} lacks {missing}"
    extra_rule = schema.get("additionalProperties", not top)
    for key, item in value.items():
        label = repr(key) if top else f"{where}.{key}"
        sub = props.get(key)
        if isinstance(sub, Mapping):
            if (problem := schema_error(item, sub, f"argument {label}" if top else label, top=False)) is not None:
                return problem
        elif extra_rule is False:
            known = ", ".join(props) or "none"
            return f"unknown argument {label} (arguments: {known})"
        elif isinstance(extra_rule, Mapping) and (problem := schema_error(item, extra_rule, label, top=False)):
            return problem
    return None


# --- the final answer ---------------------------------------------------------------------------

_ANSWER = re.compile(r"\banswer\s*:", re.IGNORECASE)
_NUMBER = re.compile(r"^[-+]?[$€£]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?%?$")
_WRAP = "*`\"' "
_COMMA = re.compile(r"\s*,\s*")


def final_answer(text: str | None) -> str | None:
    """The text after the last "Answer:" up to the end of its line, or None when there is none."""
    if not text:
        return None
    found = list(_ANSWER.finditer(text))
    if not found:
        return None
    line = text[found[-1].end() :].strip().split("\n", 1)[0]
    return line.strip() or None


def normalize_answer(text: str) -> str:
    """Case- and space-folded text without wrapping quotes, markup or a closing period."""
    cleaned = text.strip().strip(_WRAP).rstrip(".").strip(_WRAP)
    return " ".join(cleaned.split()).casefold()


def _number(text: str) -> float | None:
    if not _NUMBER.match(text) or not any(ch.isdigit() for ch in text):
        return None
    try:
        return float(re.sub(r"[,$€£%+]", "", text))
    except ValueError:
        return None


def answers_match(got: str | None, expected: str) -> bool:
    """`got` states exactly `expected`: the same number by value, else the same folded text.

    The whole answer is compared, so a reply listing several candidates ("3, 4 or 5") does
    not match any one of them.
    """
    if got is None:
        return False
    g, e = normalize_answer(got), normalize_answer(expected)
    gn, en = _number(g), _number(e)
    if gn is not None and en is not None:
        return math.isclose(gn, en, rel_tol=1e-9, abs_tol=1e-9)
    return _COMMA.sub(", ", g) == _COMMA.sub(", ", e)


# --- the simulated user (level 5) ----------------------------------------------------------------

MAX_USER_TURNS = 3
_STOP_WORDS = (
    "the a an of to for in on at by with and or is are be it its this that which what from as your you "
    "want would like need please give tell me my id"
)
_STOP = frozenset(_STOP_WORDS.split())
NOT_SPECIFIC = "I'm not sure what you need from me. Could you ask for the specific detail (by name)?"


def fact_cues(task: BuiltTask, scenario: Scenario) -> dict[str, set[str]]:
    """For each hidden fact: the phrases that name it (its argument name, underscores as spaces,
    and the significant words of that argument's description in the reference tools)."""
    cues: dict[str, set[str]] = {}
    names = {c.name for step in task.reference for c in step}
    for fact in task.hidden_facts:
        found = {fact.replace("_", " ").lower()}
        for doc in scenario.tools:
            if doc.name not in names:
                continue
            prop = (doc.parameters.get("properties") or {}).get(fact)
            if isinstance(prop, Mapping) and isinstance(prop.get("description"), str):
                words = re.findall(r"[a-z][a-z0-9]+", prop["description"].lower())
                found.update(w for w in words if len(w) >= 3 and w not in _STOP)
        cues[fact] = found
    return cues


def user_reply(question: str, facts: Mapping[str, str], cues: Mapping[str, set[str]], revealed: set[str]) -> str:
    """The simulated user's answer to `question`: every unrevealed fact the question names (added to
    `revealed`), or a request to be specific when it names none."""
    text = " ".join(re.findall(r"[a-z0-9]+", question.lower()))
    words = set(text.split())
    said: list[str] = []
    for fact, value in facts.items():
        if fact in revealed:
            continue
        hits = cues.get(fact, {fact.replace("_", " ")})
        if any((" " in c and f" {c} " in f" {text} ") or c in words for c in hits):
            revealed.add(fact)
            said.append(f"The {fact.replace('_', ' ')} is {value}.")
    return " ".join(said) if said else NOT_SPECIFIC


def wants_to_ask(task: BuiltTask, text: str, revealed: set[str], user_turns: int) -> bool:
    """A reply without tool calls is a question to the user (level 5) while facts remain hidden,
    the reply gives no final "Answer:", and the user has answered fewer than `MAX_USER_TURNS` times."""
    unrevealed = [f for f in task.hidden_facts if f not in revealed]
    return bool(unrevealed) and final_answer(text) is None and user_turns < MAX_USER_TURNS
