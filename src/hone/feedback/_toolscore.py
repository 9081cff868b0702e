"""Precision of tool use: the calls an agent made scored against reference calls.

`score_tool_calls` pairs made calls with reference calls (BFCL rules per pair, from
`_toolmatch.match_call`; the pairing maximises credit, order-free within a step, in step order
across steps) and counts how precise they were. `hone.feedback._toolreward` turns the score
into hidden feedback and reward parts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from hone.core import ToolCall, Trajectory

from ._toolmatch import CallVerdict, ExpectedCall, match_call

NOT_CALLED = "not_called"
"""The verdict kind of a reference call no made call was paired with."""


class ReferenceVerdict(BaseModel):
    """How one reference call fared: the matcher's `kind` for its paired call, or `not_called`."""

    model_config = ConfigDict(extra="forbid")

    step: int
    index: int
    name: str
    kind: str
    reason: str = ""
    made: tuple[int, int] | None = None
    """(step, index) of the made call paired with it."""
    credit: float = 0.0


class ToolCallScore(BaseModel):
    """How precisely the calls made match the reference (see `score_tool_calls`).

    An empty denominator gives 1.0 (nothing to get wrong). `precision` is the combined score
    in [0, 1]: the credit of the pairs over max(made, reference) calls.
    """

    model_config = ConfigDict(extra="forbid")

    made: int
    reference: int
    paired: int
    """Reference calls paired with a made call of the same name."""
    matched: int
    """Pairs the matcher accepts outright (every argument right)."""
    invalid: int
    """Made calls that did not parse, name an unknown tool or break their tool's schema."""
    invalid_reasons: list[str]
    extra: list[str]
    """Names of the made calls paired with nothing."""
    name_precision: float
    name_recall: float
    arg_name_precision: float
    arg_name_recall: float
    value_accuracy: float
    """Right values over the argument names a pair shares."""
    precision: float
    name_jaccard: float
    """ToolRL's r_name: multiset Jaccard of the tool names made and referenced (an unparsed call
    counts in the union only)."""
    arg_name_jaccard: float
    """ToolRL's r_param: the sum over pairs of each pair's argument-name Jaccard."""
    value_hits: int
    """ToolRL's r_value: right values, summed over pairs."""
    value_slots: int
    """Argument slots of the reference (required ones, plus optional ones a pair filled)."""
    verdicts: list[ReferenceVerdict]

    def toolrl_correctness(self) -> float:
        """ToolRL's correctness in [-3, 3]: 6 * (r_name + r_param + r_value) / S_max - 3,
        S_max = 1 + reference calls + argument slots."""
        top = 1 + self.reference + self.value_slots
        return 6.0 * (self.name_jaccard + self.arg_name_jaccard + self.value_hits) / top - 3.0


def _ratio(num: float, den: float) -> float:
    return num / den if den else 1.0


def schema_problem(arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """Why `arguments` break a tool's JSON Schema (`ToolSpec.parameters`), or None.

    Checks what a call can get wrong at the top level: a required argument missing, an
    argument the schema does not name (unless `additionalProperties` allows it), a JSON type
    or `enum` not respected. Nested values are the matcher's business. A BFCL function
    description or an OpenAI tool is read for its `parameters`, as the matcher does.
    """
    if isinstance(schema.get("function"), Mapping):
        schema = schema["function"]
    if isinstance(schema.get("parameters"), Mapping):
        schema = schema["parameters"]
    props: Mapping[str, Any] = schema.get("properties") or {}
    missing = [k for k in schema.get("required") or [] if k not in arguments]
    if missing:
        return f"missing required argument {', '.join(missing)}"
    extra = [k for k in arguments if k not in props]
    if extra and not schema.get("additionalProperties", False):
        return f"unknown argument {', '.join(extra)}"
    for key, value in arguments.items():
        prop = props.get(key)
        if not isinstance(prop, Mapping):
            continue
        kinds = prop.get("type")
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if kinds and not any(_is_type(value, k) for k in kinds):
            return f"argument {key} should be {' or '.join(kinds)}, got {type(value).__name__}"
        if "enum" in prop and value not in prop["enum"]:
            return f"argument {key} must be one of {prop['enum']}"
    return None


_TYPES: dict[str, type | tuple[type, ...]] = {  # JSON Schema's names and BFCL's
    "string": str,
    "integer": int,
    "number": (int, float),
    "float": (int, float),
    "boolean": bool,
    "array": list,
    "tuple": list,
    "object": dict,
    "dict": dict,
}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind not in _TYPES:
        return True  # a type this check does not know is not held against the call
    if isinstance(value, bool) and kind != "boolean":
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[kind])


def _invalid(call: ToolCall, schemas: Mapping[str, Mapping[str, Any]] | None) -> str | None:
    if call.parse_error is not None:
        return f"{call.name}: arguments do not parse: {call.parse_error}"
    if schemas is None:
        return None
    if call.name not in schemas:
        return f"{call.name}: unknown tool"
    problem = schema_problem(call.arguments, schemas[call.name])
    return None if problem is None else f"{call.name}: {problem}"


@dataclass
class _Pair:
    """A made call judged against one reference call of the same name."""

    verdict: CallVerdict
    given: int  # argument names the call gave
    shared: int  # of those, names the reference has
    slots: int  # reference slots in play: required names, plus optional ones given
    union: int  # given names plus required names (the Jaccard denominator)
    hits: int  # shared names with an acceptable value

    @property
    def jaccard(self) -> float:
        return _ratio(self.shared, self.union)

    @property
    def credit(self) -> float:
        """1 for a call the matcher accepts; otherwise at most 3/4: (1 + Jaccard + right values / slots) / 4."""
        if self.verdict.ok:
            return 1.0
        return (1.0 + self.jaccard + _ratio(self.hits, self.slots)) / 4.0


def _judge(call: ToolCall, expected: ExpectedCall, schema: Mapping[str, Any] | None) -> _Pair:
    verdict = match_call(call.name, call.arguments, expected, schema)
    optional = {k for k, v in expected.arguments.items() if "" in v}
    required = set(expected.arguments) - optional
    given = set(call.arguments)
    shared = given & set(expected.arguments)
    hits = len(shared - set(verdict.wrong_values) - set(verdict.unexpected))  # the matcher lists every failure
    return _Pair(verdict, len(given), len(shared), len(required | shared), len(given | required), hits)


def _assign(weights: list[list[float]]) -> list[tuple[int, int]]:
    """The (row, column) pairs of positive weight in a maximum-weight assignment (Hungarian method)."""
    if not weights or not weights[0]:
        return []
    flip = len(weights) > len(weights[0])
    w = [list(col) for col in zip(*weights, strict=True)] if flip else weights
    n, m = len(w), len(w[0])
    inf = float("inf")
    u, v, match, way = [0.0] * (n + 1), [0.0] * (m + 1), [0] * (m + 1), [0] * (m + 1)
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        low, used = [inf] * (m + 1), [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = match[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = -w[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < low[j]:
                        low[j], way[j] = cur, j0
                    if low[j] < delta:
                        delta, j1 = low[j], j
            for j in range(m + 1):
                if used[j]:
                    u[match[j]] += delta
                    v[j] -= delta
                else:
                    low[j] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    pairs = [(match[j] - 1, j - 1) for j in range(1, m + 1) if match[j] and w[match[j] - 1][j - 1] > 0]
    return sorted((c, r) if flip else (r, c) for r, c in pairs)


def _best_pairs(
    ref_steps: list[list[int]], made_steps: list[list[int]], credit: dict[tuple[int, int], float]
) -> list[tuple[int, int]]:
    """(reference, made) pairs maximising the total credit, a chain's order kept.

    Reference step i takes its calls from a run of made steps that lies wholly before the run
    of step i+1: within a step order does not matter, across steps a later reference call
    must be made in a strictly later step than an earlier one (it needs the earlier result).
    """

    def block(i: int, a: int, b: int) -> tuple[float, list[tuple[int, int]]]:
        cols = [m for s in made_steps[a:b] for m in s]
        rows = ref_steps[i]
        if not any((r, m) in credit for r in rows for m in cols):
            return 0.0, []
        if len(rows) == 1:  # a chain link: its best call, no assignment needed
            top = max((m for m in cols if (rows[0], m) in credit), key=lambda m: credit[rows[0], m])
            return credit[rows[0], top], [(rows[0], top)]
        found = _assign([[credit.get((r, m), 0.0) for m in cols] for r in rows])
        pairs = [(rows[r], cols[c]) for r, c in found]
        return sum(credit[p] for p in pairs), pairs

    if len(ref_steps) == 1:
        return block(0, 0, len(made_steps))[1]
    steps = len(made_steps)
    # value[i][b]: the best total of reference steps < i over made steps < b; cut[i][b]: where step i-1's run began
    value = [[0.0] * (steps + 1)]
    cut: list[list[int]] = [[0] * (steps + 1)]
    blocks: dict[tuple[int, int, int], tuple[float, list[tuple[int, int]]]] = {}
    for i in range(len(ref_steps)):
        value.append([0.0] * (steps + 1))
        cut.append([0] * (steps + 1))
        link = ref_steps[i][0] if len(ref_steps[i]) == 1 else None
        for b in range(steps + 1):
            # a runs from b down to 0: a chain link keeps its best call so far (O(1) per run, so the
            # whole table is O(R * S^2) however long an adversarial trajectory is); a parallel step
            # solves an assignment per run.
            best: tuple[float, list[tuple[int, int]]] = (0.0, [])
            for a in range(b, -1, -1):
                if link is not None:
                    if a < b:
                        for m in reversed(made_steps[a]):  # ties go to the earliest call, as max() would
                            c = credit.get((link, m))
                            if c is not None and (not best[1] or c >= best[0]):
                                best = (c, [(link, m)])
                    blocks[i, a, b] = best
                else:
                    blocks[i, a, b] = block(i, a, b)
                total = value[i][a] + blocks[i, a, b][0]
                if a == b or total >= value[i + 1][b]:  # ties go to the smallest a
                    value[i + 1][b], cut[i + 1][b] = total, a
    pairs: list[tuple[int, int]] = []
    b = steps
    for i in range(len(ref_steps), 0, -1):
        a = cut[i][b]
        pairs += blocks[i - 1, a, b][1]
        b = a
    return pairs


def score_tool_calls(
    made: Sequence[Sequence[ToolCall]],
    reference: Sequence[Sequence[ExpectedCall]],
    schemas: Mapping[str, Mapping[str, Any]] | None = None,
) -> ToolCallScore:
    """Score the calls made (grouped by step) against the reference calls (grouped by step).

    Each reference call is paired with at most one made call of its name, choosing the pairs
    that earn the most credit (see `ToolCallScore.precision`), order-insensitive within a
    step and in step order across steps (see `_best_pairs`). Calls that did not parse are
    never paired. `schemas` (tool name -> JSON Schema of its arguments) lets the score count
    calls of unknown tools and schema-breaking calls as invalid, and goes to the matcher.
    With an empty reference the right thing was to call nothing: precision 1.0 then, else 0.
    """
    calls = [(s, i, c) for s, step in enumerate(made) for i, c in enumerate(step)]
    refs = [(s, i, e) for s, step in enumerate(reference) for i, e in enumerate(step)]
    reasons = [r for _, _, c in calls if (r := _invalid(c, schemas)) is not None]
    judged: dict[tuple[int, int], _Pair] = {}
    for ri, (_, _, exp) in enumerate(refs):
        schema = schemas.get(exp.name) if schemas is not None else None
        for mi, (_, _, call) in enumerate(calls):
            if call.name == exp.name and call.parse_error is None:
                judged[ri, mi] = _judge(call, exp, schema)
    credit = {k: p.credit for k, p in judged.items()}
    ref_steps = [[ri for ri, r in enumerate(refs) if r[0] == s] for s in range(len(reference))]
    candidates = {mi for _, mi in judged}  # a call no reference can take changes no pairing: left out
    made_steps = [[mi for mi, c in enumerate(calls) if c[0] == s and mi in candidates] for s in range(len(made))]
    pairs = dict(_best_pairs([g for g in ref_steps if g], [g for g in made_steps if g], credit))

    verdicts: list[ReferenceVerdict] = []
    for ri, (s, i, exp) in enumerate(refs):
        if ri not in pairs:
            verdicts.append(ReferenceVerdict(step=s, index=i, name=exp.name, kind=NOT_CALLED))
            continue
        mi, pair = pairs[ri], judged[ri, pairs[ri]]
        verdict = pair.verdict
        where = (calls[mi][0], calls[mi][1])
        verdicts.append(
            ReferenceVerdict(
                step=s, index=i, name=exp.name, kind=verdict.kind, reason=verdict.reason, made=where, credit=pair.credit
            )
        )
    chosen = [judged[ri, mi] for ri, mi in pairs.items()]
    unpaired_slots = sum(
        sum("" not in v for v in exp.arguments.values()) for ri, (_, _, exp) in enumerate(refs) if ri not in pairs
    )
    paired_made = set(pairs.values())
    made_names = Counter(c.name for _, _, c in calls if c.parse_error is None)
    unparsed = sum(c.parse_error is not None for _, _, c in calls)  # in the union, never in the overlap
    ref_names = Counter(e.name for _, _, e in refs)
    total_credit = sum(p.credit for p in chosen)
    return ToolCallScore(
        made=len(calls),
        reference=len(refs),
        paired=len(pairs),
        matched=sum(p.verdict.ok for p in chosen),
        invalid=len(reasons),
        invalid_reasons=reasons,
        extra=[c.name for mi, (_, _, c) in enumerate(calls) if mi not in paired_made],
        name_precision=_ratio(len(pairs), len(calls)),
        name_recall=_ratio(len(pairs), len(refs)),
        arg_name_precision=_ratio(sum(p.shared for p in chosen), sum(p.given for p in chosen)),
        arg_name_recall=_ratio(sum(p.shared for p in chosen), sum(p.slots for p in chosen)),
        value_accuracy=_ratio(sum(p.hits for p in chosen), sum(p.shared for p in chosen)),
        precision=_ratio(total_credit, max(len(calls), len(refs))),
        name_jaccard=_ratio(sum((made_names & ref_names).values()), sum((made_names | ref_names).values()) + unparsed),
        arg_name_jaccard=sum(p.jaccard for p in chosen),
        value_hits=sum(p.hits for p in chosen),
        value_slots=sum(p.slots for p in chosen) + unpaired_slots,
        verdicts=verdicts,
    )


def calls_by_step(traj: Trajectory) -> list[list[ToolCall]]:
    """The tool calls of a trajectory grouped by step (what `score_tool_calls` takes as `made`)."""
    return [list(s.call.message.tool_calls or []) for s in traj.steps]
