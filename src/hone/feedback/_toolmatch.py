"""BFCL's AST-matching rules for tool calls: one verdict per call, a best assignment for parallel calls.

A port of bfcl-eval's Python `ast_checker` (`simple_function_checker` and helpers), in its order
of checks: function name; every `required` parameter of the schema present; then each given
argument in turn (unknown to the schema or to the reference -> unexpected; type; value); then every
reference argument given unless `""` is among its acceptable values. Type rules: the schema type
must match exactly (`True` is not an int), an int is accepted for a float, a value of the
reference's own type is accepted as a "variable" (BFCL's escape hatch), arrays check their items
one level deep. Values: strings compare after standardisation (lowercase, without spaces and
`,./-_*^`, `'` read as `"`), lists compare element-wise after standardising their strings, dicts
key by key (a key is optional when `""` is among its values), lists of dicts position by position,
anything else by `==`. Parallel calls are matched order-insensitively by a maximum bipartite
assignment (the official checker is greedy; the two differ only when one call fits two references).
Pure Python, no sandbox: plain data in, a verdict out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

_PY_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "number": float,  # JSON Schema spelling of BFCL's float
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "object": dict,  # JSON Schema spelling of BFCL's dict
    "any": str,  # BFCL treats `any` as a string (a value of the reference's type still passes)
}
_NESTED = frozenset({"array", "tuple"})
_STANDARDISE = re.compile(r"[ ,./\-_*^]")

KINDS = (
    "ok",
    "wrong_function",
    "missing_argument",
    "unexpected_argument",
    "wrong_type",
    "wrong_value",
    "wrong_count",
    "malformed",
)
"""Every verdict kind, in no particular order."""


@dataclass(frozen=True)
class ExpectedCall:
    """A reference call: every acceptable value per argument; `""` among them = may be omitted."""

    name: str
    arguments: Mapping[str, Sequence[Any]]

    @classmethod
    def exact(cls, name: str, arguments: Mapping[str, Any]) -> ExpectedCall:
        """The reference of one concrete call (each argument has exactly its one value)."""
        return cls(name, {key: [value] for key, value in arguments.items()})


@dataclass(frozen=True)
class CallVerdict:
    """One call against one reference; `kind` is the first failed rule in BFCL's order.

    `missing`, `unexpected` and `wrong_values` list every failing argument (not only the first),
    for fine-grained rewards; `wrong_values` includes arguments of the wrong type.
    """

    ok: bool
    kind: str
    reason: str
    name_ok: bool
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    wrong_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallsVerdict:
    """Calls against references; `pairs` = (call index, reference index, verdict) of the best assignment."""

    ok: bool
    kind: str
    reason: str
    pairs: tuple[tuple[int, int, CallVerdict], ...]


def standardise(text: str) -> str:
    """BFCL's string standardisation: drop spaces and `,./-_*^`, lowercase, `'` -> `"`."""
    return _STANDARDISE.sub("", text).lower().replace("'", '"')


def _std(value: Any) -> Any:
    return standardise(value) if type(value) is str else value


def _answer_type(possible: Sequence[Any]) -> type | None:
    for answer in possible:
        if not (type(answer) is str and answer == ""):
            return type(answer)
    return None


def _type_ok(value: Any, possible: Sequence[Any], expected: type, nested: type | None) -> tuple[bool, bool]:
    """BFCL's `type_checker`: (valid, is_variable)."""
    answer_type = _answer_type(possible)
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        items: list[Any] = cast("list[Any]", value)
        if nested is None:
            return True, is_variable
        for item in possible:
            if type(item) is not list or all(_type_ok(v, item, nested, None)[0] for v in items):
                return True, is_variable
        return False, False  # the official checker does not rescue a failed nested check
    if answer_type is not None and type(value) is answer_type:
        return True, True
    return False, False


def _dict_ok(value: Mapping[str, Any], possible: Sequence[Any]) -> bool:
    for answer in possible:
        if not isinstance(answer, Mapping):  # `""` (the parameter may be omitted) included
            continue
        if any(key not in answer or _std(item) not in [_std(a) for a in answer[key]] for key, item in value.items()):
            continue
        if all(key in value or "" in options for key, options in answer.items()):
            return True
    return False


def _list_dict_ok(value: Sequence[Any], possible: Sequence[Any]) -> bool:
    for answer in possible:
        if len(value) == len(answer) and all(
            type(item) is dict and _dict_ok(item, [answer[i]]) for i, item in enumerate(value)
        ):
            return True
    return False


def _value_ok(value: Any, possible: Sequence[Any], expected: type | None, nested: type | None) -> bool:
    if expected is dict:
        return _dict_ok(value, possible)
    if expected is list and nested is dict:
        return _list_dict_ok(value, possible)
    if expected is str:
        return standardise(value) in [standardise(a) for a in possible if type(a) is str]
    if expected is list:
        # Like the official list_checker, an empty list matches `""` (it standardises to an empty sequence).
        options = [[_std(a) for a in answer] for answer in possible if isinstance(answer, (list, str))]
        return [_std(v) for v in value] in options
    return value in possible


def _types_of(spec: Mapping[str, Any] | None, answers: Sequence[Any]) -> tuple[str | None, type | None, type | None]:
    """(type name, Python type, item type) from the parameter's schema, else from the reference."""
    if spec is not None:
        name = spec.get("type")
        if isinstance(name, str) and name in _PY_TYPES:
            nested: type | None = None
            if name in _NESTED:
                items = spec.get("items")
                item_name = items.get("type") if isinstance(items, Mapping) else None
                nested = _PY_TYPES.get(item_name) if isinstance(item_name, str) else None
            return name, _PY_TYPES[name], nested
        return None, None, None
    answer_type = _answer_type(answers)
    if answer_type is None:
        return None, None, None
    nested = None
    if answer_type is list:
        first = next((a for a in answers if type(a) is list and a), None)
        nested = dict if first is not None and type(first[0]) is dict else None
    return ("float" if answer_type is float else None), answer_type, nested


def _parameters(schema: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The parameters object of a BFCL function description, an OpenAI tool, or a bare JSON Schema."""
    if schema is None:
        return None
    if "function" in schema and isinstance(schema["function"], Mapping):
        schema = schema["function"]
    inner = schema.get("parameters")
    return inner if isinstance(inner, Mapping) else schema


def _decode(arguments: Any) -> Mapping[str, Any] | str:
    """The arguments as a mapping, or why they are malformed."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError as exc:
            return f"arguments are not valid JSON ({exc})"
    if not isinstance(arguments, Mapping):
        return f"arguments are a {type(arguments).__name__}, not a JSON object"
    if not all(isinstance(key, str) for key in arguments):
        return "argument names must be strings"
    return arguments


def match_call(
    name: str, arguments: Mapping[str, Any] | str, expected: ExpectedCall, schema: Mapping[str, Any] | None = None
) -> CallVerdict:
    """Judge one call against one reference by BFCL's rules.

    `schema` is the expected function's description (BFCL or OpenAI style) or its parameters
    JSON Schema; without it there are no `required` checks and the expected type of an argument
    is the type of its first acceptable value. `arguments` may also be the raw JSON text of a
    tool call; text that does not decode to an object is a `malformed` verdict, never an error.
    Arguments nested too deeply to compare (a model can emit any depth) are `malformed` too.
    """
    try:
        return _match_call(name, arguments, expected, schema)
    except RecursionError:
        return CallVerdict(False, "malformed", "arguments are nested too deeply to compare", name == expected.name)


def _match_call(
    name: str, arguments: Mapping[str, Any] | str, expected: ExpectedCall, schema: Mapping[str, Any] | None
) -> CallVerdict:
    decoded = _decode(arguments)
    if isinstance(decoded, str):
        return CallVerdict(False, "malformed", decoded, name == expected.name)
    if name != expected.name:
        return CallVerdict(False, "wrong_function", f"called {name!r}, expected {expected.name!r}", False)
    params = _parameters(schema)
    properties: Mapping[str, Any] | None = None
    required: Sequence[str] = ()
    if params is not None:
        props = params.get("properties")
        properties = props if isinstance(props, Mapping) else {}
        req = params.get("required")
        required = [r for r in req if isinstance(r, str)] if isinstance(req, list) else ()
    answers = expected.arguments
    first: tuple[str, str] | None = None  # (kind, reason) of the first failure in BFCL's order
    missing = [p for p in required if p not in decoded]
    if missing:
        first = ("missing_argument", f"missing required argument {missing[0]!r}")
    unexpected: list[str] = []
    wrong: list[str] = []
    for param, value in decoded.items():
        if param not in answers or (properties is not None and param not in properties):
            unexpected.append(param)
            if first is None:
                first = ("unexpected_argument", f"unexpected argument {param!r}")
            continue
        possible = answers[param]
        spec = properties.get(param) if properties is not None else None
        type_name, py_type, nested = _types_of(spec if isinstance(spec, Mapping) else None, possible)
        if type_name in ("tuple",) and type(value) is tuple:
            value = list(value)
        if type_name in ("float", "number") and type(value) is int:
            value = float(value)  # BFCL allows Python's int -> float promotion
        if py_type is None:
            good = value in possible
        else:
            valid, is_variable = _type_ok(value, possible, py_type, nested)
            if not valid:
                wrong.append(param)
                if first is None:
                    got = type(value).__name__
                    first = (
                        "wrong_type",
                        f"argument {param!r} has type {got}, expected {type_name or py_type.__name__}",
                    )
                continue
            # BFCL compares a "variable" (a value of the reference's type, not the schema's) by `==` only.
            good = value in possible if is_variable else _value_ok(value, possible, py_type, nested)
        if not good:
            wrong.append(param)
            if first is None:
                first = ("wrong_value", f"argument {param!r} = {_short(value)} is not one of {_short(list(possible))}")
    for param, possible in answers.items():
        if param not in decoded and "" not in possible and param not in missing:
            missing.append(param)
            if first is None:
                first = ("missing_argument", f"missing argument {param!r} (it is not optional)")
    if first is None:
        return CallVerdict(True, "ok", "matches", True)
    return CallVerdict(False, first[0], first[1], True, tuple(missing), tuple(unexpected), tuple(wrong))


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _closeness(verdict: CallVerdict) -> tuple[int, int]:
    # Only pairs left over by a maximum matching of ok verdicts are ranked, so none of them is ok.
    errors = len(verdict.missing) + len(verdict.unexpected) + len(verdict.wrong_values)
    return (1 if verdict.name_ok else 0, -errors)


def match_calls(
    calls: Sequence[tuple[str, Mapping[str, Any] | str]],
    expected: Sequence[ExpectedCall],
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    ordered: bool = False,
) -> CallsVerdict:
    """Judge a turn's calls against its references; ok when every reference has its own matching call.

    `schemas` maps a reference's function name to its description (looked up by the *expected*
    name, as BFCL does). `ordered=False` pairs calls and references by a maximum bipartite
    matching of ok verdicts, then pairs what is left by closeness (for feedback). A different
    number of calls than references is `wrong_count`.
    """
    n_calls, n_expected = len(calls), len(expected)
    ref_schemas = [schemas.get(ref.name) if schemas is not None else None for ref in expected]
    grid: list[list[CallVerdict | None]] = [[None] * n_expected for _ in range(n_calls)]

    def verdict(i: int, j: int) -> CallVerdict:
        found = grid[i][j]
        if found is None:
            found = grid[i][j] = match_call(calls[i][0], calls[i][1], expected[j], ref_schemas[j])
        return found

    diagonal = [(i, i, verdict(i, i)) for i in range(min(n_calls, n_expected))]
    if ordered or (n_calls == n_expected and all(v.ok for _, _, v in diagonal)):
        pairs = diagonal  # in the reference's order: nothing to assign
    else:
        pairs = _assign(n_calls, n_expected, verdict)
    if len(calls) != len(expected):
        reason = f"{len(calls)} call(s), expected {len(expected)}"
        return CallsVerdict(False, "wrong_count", reason, tuple(pairs))
    for i, j, v in pairs:
        if not v.ok:
            return CallsVerdict(False, v.kind, f"call {i} vs expected {expected[j].name!r}: {v.reason}", tuple(pairs))
    return CallsVerdict(True, "ok", "every expected call matched", tuple(pairs))


def _assign(
    n_calls: int, n_expected: int, verdict: Callable[[int, int], CallVerdict]
) -> list[tuple[int, int, CallVerdict]]:
    """Maximum matching of ok pairs (Kuhn's augmenting paths), then the rest paired by closeness."""
    owner: dict[int, int] = {}  # call index -> expected index

    def augment(j: int, seen: set[int]) -> bool:
        # Call j first: calls usually come in the reference's order, so most turns need one verdict per call.
        for i in (*range(j, n_calls), *range(min(j, n_calls))):
            if i in seen or not verdict(i, j).ok:
                continue
            seen.add(i)
            if i not in owner or augment(owner[i], seen):
                owner[i] = j
                return True
        return False

    for j in range(n_expected):
        augment(j, set())
    pairs = [(i, j, verdict(i, j)) for i, j in owner.items()]
    free_calls = [i for i in range(n_calls) if i not in owner]
    free_expected = [j for j in range(n_expected) if j not in owner.values()]
    if free_calls and free_expected:
        options = sorted(
            ((i, j) for i in free_calls for j in free_expected),
            key=lambda p: _closeness(verdict(*p)),
            reverse=True,
        )
        used_calls: set[int] = set()
        used_expected: set[int] = set()
        for i, j in options:
            if i not in used_calls and j not in used_expected:
                used_calls.add(i)
                used_expected.add(j)
                pairs.append((i, j, verdict(i, j)))
    return sorted(pairs, key=lambda p: p[1])
