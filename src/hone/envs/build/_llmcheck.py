"""What `LLMGenerator` checks before it keeps a proposal: JSON in a reply, tool schemas, argument
values, utterance slots, stated values, and backends and calls executed in `hone.sandbox`.

Nothing a model wrote runs in hone's process: backend code and reference calls run in a sandboxed
program: the backend check reads its job (source, state, tool names) from stdin as data, and
reference calls run in `_harness.batch_program`, the program the pipeline verifies with. Output is
read as untrusted: only nonce-tagged lines count. This is a filter, not the guarantee: the
pipeline's verification re-executes every kept reference.
"""

from __future__ import annotations

import json
import keyword
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from hone.sandbox import Sandbox, default_sandbox

from ._harness import batch_program, new_nonce, parse_batch
from ._llmprompts import DOC_KEYS, DraftAnswer, RequestAnswer, RewriteAnswer, why
from ._spec import TOOL_NAME, Atom, Backend, Call, Scenario, ScenarioDraft, ToolDoc

_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "array": (list,)}
_TYPES_ALL = {*_TYPES, "object", "null"}
_MAX_LINE = 200_000  # a result line longer than this is not read (sandbox output is untrusted)
_CALL_KINDS = {"value_error", "exception", "timeout", "not_json"}
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> dict[str, Any]:
    """The JSON object in a model's reply (bare, fenced, or after some prose); ValueError says what is wrong."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start = body.find("{")
    if start < 0:
        raise ValueError("the reply holds no JSON object")
    try:
        value, _ = json.JSONDecoder().raw_decode(body[start:])
    except json.JSONDecodeError as exc:
        raise ValueError(f"the reply is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("the reply's JSON is not an object")
    return value


def schema_errors(parameters: Any) -> list[str]:
    """Why `parameters` is not a usable JSON Schema object for tool arguments (empty when it is)."""
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        return ['parameters must be a JSON Schema object with "type": "object"']
    props = parameters.get("properties", {})
    required = parameters.get("required", [])
    if not isinstance(props, dict):
        return ["parameters.properties must be an object"]
    if not isinstance(required, list) or any(r not in props for r in required):
        return [f"parameters.required must list names among properties {sorted(props)}"]
    errors: list[str] = []
    for name, prop in props.items():
        if not TOOL_NAME.match(name) or keyword.iskeyword(name):
            errors.append(f"argument name {name!r} is not a Python identifier")
        errors.extend(_prop_errors(prop, name))
    return errors


def _prop_errors(prop: Any, path: str) -> list[str]:
    if not isinstance(prop, dict):
        return [f"{path}: the schema must be an object"]
    kind = prop.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if kind is None and not isinstance(prop.get("enum"), list) and not isinstance(prop.get("anyOf"), list):
        return [f'{path}: needs a "type" (one of {sorted(_TYPES_ALL)})']
    if kind is not None and not all(k in _TYPES_ALL for k in kinds):
        return [f"{path}: unknown type {kind!r} (use one of {sorted(_TYPES_ALL)})"]
    if "enum" in prop and (not isinstance(prop["enum"], list) or not prop["enum"]):
        return [f"{path}: enum must be a non-empty list"]
    errors: list[str] = []
    if "items" in prop:
        errors.extend(_prop_errors(prop["items"], f"{path}[]"))
    for key, sub in (prop.get("properties") or {}).items() if isinstance(prop.get("properties"), dict) else ():
        errors.extend(_prop_errors(sub, f"{path}.{key}"))
    for i, sub in enumerate(prop.get("anyOf") or ()):
        errors.extend(_prop_errors(sub, f"{path}.anyOf[{i}]"))
    return errors


def value_errors(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    """Why `value` does not fit `schema` (type, enum, items, nested properties, anyOf)."""
    if isinstance(schema.get("anyOf"), list):
        if any(not value_errors(sub, value, path) for sub in schema["anyOf"] if isinstance(sub, dict)):
            return []
        return [f"{path}: {_short(value)} fits none of anyOf"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {_short(value)} is not one of {schema['enum']}"]
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds and not any(_is_type(value, k) for k in kinds):
        return [f"{path}: {_short(value)} is not of type {kind}"]
    errors: list[str] = []
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors.extend(value_errors(schema["items"], item, f"{path}[{i}]"))
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        errors.extend(argument_errors(schema, value, prefix=f"{path}.", closed=False))
    return errors


def _is_type(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "object":
        return isinstance(value, dict)
    if isinstance(value, bool) and kind != "boolean":
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(kind, (object,)))


def argument_errors(
    parameters: Mapping[str, Any], arguments: Mapping[str, Any], *, prefix: str = "", closed: bool = True
) -> list[str]:
    """Why `arguments` do not fit a tool's `parameters` (unknown and missing names, then values)."""
    props: Mapping[str, Any] = parameters.get("properties") or {}
    errors = [f"{prefix}{k}: unknown argument" for k in arguments if closed and k not in props]
    errors += [
        f"{prefix}{k}: missing required argument" for k in parameters.get("required") or () if k not in arguments
    ]
    for key, value in arguments.items():
        if isinstance(props.get(key), dict):
            errors.extend(value_errors(props[key], value, f"{prefix}{key}"))
    return errors


def check_draft(raw: Any, known: Sequence[str], taken: Sequence[str]) -> tuple[ScenarioDraft | None, str]:
    """A proposed scenario as a `ScenarioDraft` (identifier names, tools among `known` when there are
    any, a name not in `taken`), or None and why."""
    try:
        item = DraftAnswer.model_validate(raw)
    except ValidationError as exc:
        return None, f"a scenario: {why(exc)}"
    bad = [n for n in [item.name, *item.tool_names] if not TOOL_NAME.match(n)]
    unknown = [n for n in item.tool_names if known and n not in known]
    if bad or unknown or item.name in taken:
        reason = f"invalid names {bad}" if bad else f"unknown tools {unknown}" if unknown else "a repeated name"
        return None, f"scenario {item.name!r}: {reason}"
    tools = list(dict.fromkeys(item.tool_names))
    return ScenarioDraft(
        name=item.name, title=item.title or item.name, description=item.description, tool_names=tools
    ), ""


def check_doc(raw: Any, allowed: Sequence[str], taken: Sequence[str]) -> tuple[ToolDoc | None, str]:
    """A proposed tool document as a `ToolDoc` (valid name, usable schema, a description, a name in
    `allowed` when given and not in `taken`), or None and why."""
    try:
        doc = ToolDoc.model_validate({k: v for k, v in raw.items() if k in DOC_KEYS} if isinstance(raw, dict) else raw)
    except ValidationError as exc:
        return None, f"a tool: {why(exc)}"
    problems = schema_errors(doc.parameters)
    if allowed and doc.name not in allowed:
        problems.append(f"{doc.name!r} is not among {list(allowed)}")
    if doc.name in taken or not doc.description.strip():
        problems.append("a repeated name or an empty description")
    return (None, f"tool {doc.name!r}: {'; '.join(problems[:3])}") if problems else (doc, "")


def check_rewrite(raw: Any, names: Sequence[str], taken: Sequence[str]) -> tuple[RewriteAnswer | None, str]:
    """A proposed rewrite of one of the tools `names` (not yet in `taken`), or None and why."""
    try:
        item = RewriteAnswer.model_validate(raw)
    except ValidationError as exc:
        return None, f"a tool: {why(exc)}"
    if item.name not in names or item.name in taken:
        return None, f"{item.name!r} is not one of {list(names)} (or repeated)"
    return item, ""


def merge_pools(first: Mapping[str, list[object]], second: Mapping[str, list[object]]) -> dict[str, list[object]]:
    """`first`'s pools, then `second`'s values that are new."""
    out = {k: list(v) for k, v in first.items()}
    for key, values in second.items():
        out[key] = [*out.get(key, []), *(v for v in values if v not in out.get(key, []))]
    return out


def fit_pools(docs: Sequence[ToolDoc], pools: Mapping[str, list[Any]]) -> tuple[dict[str, list[object]], int]:
    """The proposed values that fit every tool parameter of that name, without repeats; and how many did not fit."""
    schemas: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        for arg, schema in (doc.parameters.get("properties") or {}).items():
            schemas.setdefault(arg, []).append(schema)
    kept: dict[str, list[object]] = {}
    dropped = 0
    for arg, values in pools.items():
        fitting = [v for v in values if arg in schemas and not any(value_errors(s, v, arg) for s in schemas[arg])]
        dropped += len(values) - len(fitting)
        unique = [v for i, v in enumerate(fitting) if v not in fitting[:i]]
        if unique:
            kept[arg] = unique
    return kept, dropped


def check_request(scenario: Scenario, raw: Any) -> tuple[Atom | None, str, str]:
    """A proposed request as an `Atom` when its tool exists, its arguments fit the schema and its text
    states every value (`mentions`, else the value itself); otherwise None, the drop reason and why."""
    try:
        item = RequestAnswer.model_validate(raw)
    except ValidationError as exc:
        return None, "invalid", f"a request: {why(exc)}"
    docs = {d.name: d for d in scenario.tools}
    if item.tool not in docs:
        return None, "unknown_tool", f"{item.tool!r} is not one of {sorted(docs)}"
    if problems := argument_errors(docs[item.tool].parameters, item.arguments):
        return None, "schema", f"{item.tool}({item.arguments}): {'; '.join(problems[:3])}"
    text = item.text.strip()
    mentions: dict[str, str] = {}
    for arg, value in item.arguments.items():
        said = [item.mentions.get(arg, ""), "" if isinstance(value, dict | list | bool) else str(value)]
        words = next((found for w in said if w.strip() and (found := _span(text, w.strip()))), None)
        if words is None:
            return None, "value_not_stated", f"{text!r} does not state {arg}={value!r}"
        mentions[arg] = words
    call = Call(name=item.tool, arguments=item.arguments)
    reads = docs[item.tool].effect == "read"
    return (
        Atom(scenario=scenario.name, call=call, text=text, mentions=mentions, answer_from_result=reads, phrasing="llm"),
        "",
        "",
    )


def _span(text: str, words: str) -> str | None:
    """`words` as written in `text` (matched ignoring case), or None."""
    if words in text:
        return words
    folded = text.casefold()
    at = folded.find(words.casefold()) if len(folded) == len(text) else -1  # casefold may change lengths (ß)
    return text[at : at + len(words)] if at >= 0 else None


def utterance_error(utterance: str, parameters: Mapping[str, Any]) -> str | None:
    """Why a request template is unusable: bad braces, a slot that is no argument, a required one missing."""
    try:
        slots = {field for _, field, _, _ in string.Formatter().parse(utterance) if field is not None}
    except ValueError as exc:
        return f"utterance {utterance!r}: {exc}"
    props = set(parameters.get("properties") or {})
    if unknown := sorted(slots - props):
        return f"utterance {utterance!r}: slots {unknown} are not arguments (arguments: {sorted(props)})"
    if missing := [r for r in parameters.get("required") or () if r not in slots]:
        return f"utterance {utterance!r}: required arguments {missing} have no {{slot}}"
    return None


_QUOTED = re.compile(r"\"([^\"]+)\"|(?<!\w)'([^']+)'(?!\w)")
_MARKED = re.compile(r"[\w.@+:/-]*[\d@_][\w.@+:/-]*")
_WORD = re.compile(r"[A-Za-z][\w'-]*")


def stated_values(text: str) -> list[str]:
    """The strings of `text` that look like argument values: quoted spans, numbers, dates, ids, emails,
    and capitalised words that do not start a sentence. A paraphrase must keep all of them."""
    found = [a or b for a, b in _QUOTED.findall(text)]
    found += [m.strip(".:/-") for m in _MARKED.findall(text)]
    for match in _WORD.finditer(text):
        before = text[: match.start()].rstrip()
        word = match.group()
        if word[0].isupper() and word != "I" and before and before[-1] not in ".!?:\"'":
            found.append(word)
    return sorted({v for v in found if v.strip()}, key=lambda v: (-len(v), v))


def keeps_values(paraphrase: str, values: Sequence[str]) -> list[str]:
    """The values of `values` that `paraphrase` no longer states (case-insensitive, whole tokens)."""
    lost = []
    for value in values:
        if not re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", paraphrase, re.IGNORECASE):
            lost.append(value)
    return lost


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# The backend check run in the sandbox: the job arrives on stdin as JSON data, the source runs in its own
# namespace with `state` bound, and one nonce-tagged line says whether every tool is a function.
_CHECK = r"""
import json, sys
_job = json.loads(sys.stdin.read())
_tag, _out, _dumps = _job.pop("nonce"), sys.stdout, json.dumps
def _emit(record):
    _out.write(_tag + _dumps(record) + "\n")
    _out.flush()
try:
    _ns = {"__name__": "hone_backend", "state": _job["state"]}
    exec(compile(_job["source"], "<backend>", "exec"), _ns)
    _missing = [n for n in _job["tools"] if not callable(_ns.get(n)) or isinstance(_ns.get(n), type)]
    if not isinstance(_ns.get("state"), dict):
        raise TypeError("the global `state` is not a dict after the source ran")
    _dumps(_ns["state"], allow_nan=False)
    _emit({"ok": not _missing, "error": "no function for tools " + ", ".join(_missing) if _missing else None})
except BaseException as exc:
    _emit({"ok": False, "error": ("the source failed: " + type(exc).__name__ + ": " + str(exc))[:600]})
"""


@dataclass(frozen=True)
class CallCheck:
    """One reference call executed from the initial state: `kind` is ok, value_error, exception, not_json,
    or the sandbox status (timeout, memory, ...) that stopped it."""

    kind: str
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def _records(stdout: str, nonce: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if line.startswith(nonce) and len(line) <= _MAX_LINE:
            try:
                record = json.loads(line[len(nonce) :])
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


async def check_backend(
    backend: Backend, tools: Sequence[str], *, sandbox: Sandbox | None = None, timeout_s: float = 10
) -> str | None:
    """Run the backend's source in the sandbox: None when it loads and defines every tool, else why not."""
    nonce = new_nonce()
    job = {"nonce": nonce, "source": backend.source, "state": backend.state, "tools": list(tools)}
    result = await (sandbox or default_sandbox()).run(_CHECK, stdin=json.dumps(job), timeout_s=timeout_s)
    records = _records(result.stdout, nonce)
    if result.status != "ok" and not records:
        return f"the backend did not finish loading ({result.status}; limit {timeout_s:g} s)"
    if not records:
        return "the backend check printed nothing (the source exited the interpreter?)"
    ok, error = records[-1].get("ok") is True, records[-1].get("error")
    return None if ok else str(error or "the backend check failed")


async def run_calls(
    backend: Backend, calls: Sequence[Call], *, sandbox: Sandbox | None = None, timeout_s: float = 10
) -> list[CallCheck]:
    """Execute each call from a fresh copy of the initial state in the sandbox, as the pipeline's
    verification does (`_harness.batch_program`); one `CallCheck` per call.

    Each call has `timeout_s` (the harness's interval timer); the program as a whole has three
    times that plus 5 s. A call that the program did not finish (it hung past the timer, exhausted
    memory, exited) is recorded with that status; the calls after it run again in a fresh
    program, so one bad call costs only itself.
    """
    checks: list[CallCheck] = []
    while len(checks) < len(calls):
        rest = calls[len(checks) :]
        nonce = new_nonce()
        program = batch_program(backend, [[[call]] for call in rest], nonce, timeout_s=timeout_s)
        result = await (sandbox or default_sandbox()).run(program, timeout_s=timeout_s * 3 + 5)
        for call, outcome in zip(rest, parse_batch(result.stdout, nonce, len(rest)), strict=True):
            if outcome.results is not None:
                checks.append(CallCheck("ok", outcome.results[0][0]))
            elif outcome.failed_step is None and outcome.error and outcome.error.startswith("no result"):
                stop = result.status if result.status != "ok" else "missing"
                checks.append(CallCheck(stop, error=f"the call did not finish ({stop})"))
                break
            else:
                error = outcome.error or "failed"
                kind = error.removeprefix(f"{call.name}: ").partition(":")[0] if outcome.failed_step is not None else ""
                checks.append(CallCheck(kind if kind in _CALL_KINDS else "exception", error=error))
    return checks
