"""The sandbox side of a built environment: code that loads a `Backend` and runs tool calls in `hone.sandbox`.

Everything here produces *source text* for the sandbox and parses what it prints; nothing
executes backend code in this process. Two uses:

- an episode (`BuiltEnv`): one `PythonSession`; `setup_code` is the first cell, then one
  `call_code` cell per tool call and a `state_code` cell at the end;
- verification (the pipeline): `batch_program` runs many tasks' references in ONE program, each
  from a fresh copy of the initial state.

Arguments travel as JSON *data* (a `json.loads` of a string literal), never as code, so nothing the
model writes into an argument can execute. Results come back as lines `<nonce> <json>`; the nonce is
fresh per call, a tool's own prints are captured (they cannot corrupt the protocol), and output is
parsed as untrusted: a line without the nonce or over the size limit is ignored. Each call runs under
an interval timer (SIGALRM) so a hanging tool is cut without killing the interpreter; the sandbox's
own timeout stays the backstop.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._spec import Backend, Call

MAX_LINE_CHARS = 1_000_000
"""A result line longer than this is ignored (a tool that returns a huge value gets an error instead)."""
MAX_ERROR_CHARS = 2_000
"""Exception text kept from a failing tool."""
DEFAULT_CALL_TIMEOUT_S = 5.0
"""Default per-call limit of `batch_program` and of `BuiltEnv`'s calls."""

OutcomeKind = Literal["ok", "value_error", "exception", "timeout", "not_json", "missing"]
_KINDS: frozenset[str] = frozenset({"ok", "value_error", "exception", "timeout", "not_json", "missing"})
_NONCE = re.compile(r"^[0-9a-f]{8,64}$")

# The runtime every sandbox program starts with. `{limit}`/`{errmax}` are filled in below; the
# names carry a `_hone` prefix so they cannot clash with a session's other cells.
_RUNTIME = r"""
import builtins as _hone_b, contextlib as _hone_cl, hashlib as _hone_hl, io as _hone_io
import json as _hone_js, signal as _hone_sg, sys as _hone_sy

_HONE_OUT = _hone_sy.stdout
_HONE_LIMIT = {limit}
_HONE_ERRMAX = {errmax}


class _HoneTimeout(BaseException):
    pass


def _hone_alarm(signum, frame):
    raise _HoneTimeout()


def _hone_text(exc):
    try:
        text = str(exc)
    except BaseException:
        text = "(unprintable)"
    return text[:_HONE_ERRMAX]


def _hone_limited(fn, timeout):
    # Runs fn() with the tool's prints captured and a per-call interval timer.
    sink = _hone_io.StringIO()
    old = _hone_sg.signal(_hone_sg.SIGALRM, _hone_alarm) if timeout else None
    try:
        if timeout:
            _hone_sg.setitimer(_hone_sg.ITIMER_REAL, timeout)
        with _hone_cl.redirect_stdout(sink):
            return fn()
    finally:
        if timeout:
            _hone_sg.setitimer(_hone_sg.ITIMER_REAL, 0)
            _hone_sg.signal(_hone_sg.SIGALRM, old)


def _hone_fresh(code, state_json, timeout):
    ns = {"__name__": "hone_backend", "__builtins__": _hone_b}
    ns["state"] = _hone_js.loads(state_json)
    _hone_limited(lambda: exec(code, ns), timeout)
    return ns


def _hone_invoke(ns, name, args, timeout):
    fn = ns.get(name)
    if not isinstance(name, str) or name.startswith("_") or not callable(fn) or isinstance(fn, type):
        return {"ok": False, "kind": "exception", "error": "the backend has no tool %r" % (name,)}
    if not isinstance(args, dict):
        return {"ok": False, "kind": "exception", "error": "arguments must be a JSON object"}
    try:
        result = _hone_limited(lambda: fn(**args), timeout)
    except _HoneTimeout:
        return {"ok": False, "kind": "timeout", "error": "%s ran past its time limit (%g s)" % (name, timeout)}
    except ValueError as exc:
        return {"ok": False, "kind": "value_error", "error": _hone_text(exc)}
    except BaseException as exc:  # any other failure is a tool error, SystemExit included
        return {"ok": False, "kind": "exception", "error": "%s: %s" % (type(exc).__name__, _hone_text(exc))}
    try:
        text = _hone_js.dumps(result, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return {"ok": False, "kind": "not_json",
                "error": "%s returned %s, not JSON (%s)" % (name, type(result).__name__, _hone_text(exc))}
    if len(text) > _HONE_LIMIT // 2:
        return {"ok": False, "kind": "exception", "error": "%s returned %d characters (too large)" % (name, len(text))}
    return {"ok": True, "kind": "ok", "result": result}


def _hone_canonical(state):
    return _hone_js.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _hone_emit(nonce, payload):
    _HONE_OUT.write(nonce + " " + _hone_js.dumps(payload, ensure_ascii=True, allow_nan=False) + "\n")
    _HONE_OUT.flush()


def _hone_call(nonce, name, args_json, timeout):
    _hone_emit(nonce, _hone_invoke(_hone_ns, name, _hone_js.loads(args_json), timeout))


def _hone_state(nonce):
    try:
        text = _hone_canonical(_hone_ns.get("state"))
    except BaseException as exc:
        _hone_emit(nonce, {"ok": False, "kind": "not_json", "error": "the state is not JSON: " + _hone_text(exc)})
        return
    digest = _hone_hl.sha256(text.encode("utf-8")).hexdigest()
    _hone_emit(nonce, {"ok": True, "kind": "ok", "result": {"digest": digest, "state": text}})
"""

_BATCH = r"""
_HONE_CODE = compile({source}, "<backend>", "exec")
_HONE_STATE = {state}
_HONE_TIMEOUT = {timeout}
for _hone_i, _hone_steps in enumerate(_hone_js.loads({references})):
    _hone_row = {{"i": _hone_i, "results": None, "error": None, "failed_step": None}}
    _hone_row.update(final_state=None, state=None)
    try:
        _hone_ns = _hone_fresh(_HONE_CODE, _HONE_STATE, _HONE_TIMEOUT)
    except BaseException as _hone_exc:
        _hone_row["error"] = "the backend source failed: %s: %s" % (type(_hone_exc).__name__, _hone_text(_hone_exc))
        _hone_emit(_HONE_NONCE, _hone_row)
        continue
    _hone_results = []
    for _hone_s, _hone_step in enumerate(_hone_steps):
        _hone_got = []
        for _hone_c in _hone_step:
            _hone_p = _hone_invoke(_hone_ns, _hone_c["name"], _hone_c["arguments"], _HONE_TIMEOUT)
            if not _hone_p["ok"]:
                _hone_row["error"] = "%s: %s: %s" % (_hone_c["name"], _hone_p["kind"], _hone_p["error"])
                _hone_row["failed_step"] = _hone_s
                break
            _hone_got.append(_hone_p["result"])
        if _hone_row["error"] is not None:
            break
        _hone_results.append(_hone_got)
    if _hone_row["error"] is None:
        try:
            _hone_text_state = _hone_canonical(_hone_ns.get("state"))
        except BaseException as _hone_exc:
            _hone_row["error"] = "the final state is not JSON: " + _hone_text(_hone_exc)
        else:
            _hone_row["results"] = _hone_results
            _hone_row["state"] = _hone_text_state
            _hone_row["final_state"] = _hone_hl.sha256(_hone_text_state.encode("utf-8")).hexdigest()
    _hone_emit(_HONE_NONCE, _hone_row)
"""


def _runtime() -> str:
    return _RUNTIME.replace("{limit}", str(MAX_LINE_CHARS)).replace("{errmax}", str(MAX_ERROR_CHARS))


def new_nonce() -> str:
    """A fresh random tag for one cell's result line."""
    return secrets.token_hex(12)


def _check_nonce(nonce: str) -> str:
    if not isinstance(nonce, str) or not _NONCE.match(nonce):
        raise ValueError(f"nonce must be 8-64 lowercase hex digits, got {nonce!r}")
    return nonce


def _json_literal(value: Any, what: str) -> str:
    """`value` as JSON text inside a Python string literal (repr of a str is always a valid literal)."""
    try:
        return repr(json.dumps(value, ensure_ascii=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from None


def _timeout_literal(timeout_s: float | None) -> str:
    if timeout_s is None:
        return "None"
    if not (isinstance(timeout_s, int | float) and 0 < timeout_s < 3600):
        raise ValueError(f"timeout_s must be a number of seconds in (0, 3600), got {timeout_s!r}")
    return repr(float(timeout_s))


def setup_code(backend: Backend) -> str:
    """The first cell of an episode's session: the runtime, then the backend loaded in its own namespace.

    The source runs with `state` bound to a copy of `backend.state`; a source that fails makes
    the cell fail (non-zero return code, traceback on stderr).
    """
    state = _json_literal(backend.state, "the backend's initial state")
    return _runtime() + f"_hone_ns = _hone_fresh(compile({backend.source!r}, '<backend>', 'exec'), {state}, None)\n"


def call_code(name: str, arguments: Mapping[str, Any], nonce: str, *, timeout_s: float | None = None) -> str:
    """A cell that calls tool `name` with `arguments` (sent as JSON data) and prints one tagged result line."""
    args = _json_literal(dict(arguments), f"the arguments of {name!r}")
    return f"_hone_call({_check_nonce(nonce)!r}, {name!r}, {args}, {_timeout_literal(timeout_s)})\n"


def state_code(nonce: str) -> str:
    """A cell that prints the backend's canonical state and its sha256 digest as one tagged line."""
    return f"_hone_state({_check_nonce(nonce)!r})\n"


@dataclass(frozen=True)
class CallOutcome:
    """What one call cell printed: `result` when `ok`; else `error` and why (`kind`).

    `value_error` is bad input the agent may see; `exception`/`timeout` are tool errors;
    `not_json` a result (or result line) that is not JSON; `missing` no result line at all
    (the interpreter died, or the cell never ran the call).
    """

    ok: bool
    result: Any
    error: str | None
    kind: OutcomeKind


@dataclass(frozen=True)
class StateOutcome:
    """The state cell's output: `digest` (sha256 of `text`, computed here) and the parsed `state`."""

    ok: bool
    digest: str | None
    state: Any
    text: str | None
    error: str | None


def _tagged(stdout: str, nonce: str) -> list[str]:
    prefix = _check_nonce(nonce) + " "
    return [
        line[len(prefix) :] for line in stdout.splitlines() if line.startswith(prefix) and len(line) <= MAX_LINE_CHARS
    ]


def parse_outcome(stdout: str, nonce: str) -> CallOutcome:
    """The outcome of a `call_code`/`state_code` cell from its stdout (the last line tagged with `nonce`)."""
    lines = _tagged(stdout, nonce)
    if not lines:
        why = "the call printed no result (the tool may have ended the interpreter)"
        return CallOutcome(False, None, why, "missing")
    try:
        payload = json.loads(lines[-1])
    except ValueError:
        return CallOutcome(False, None, "the call's result line is not JSON", "not_json")
    if not isinstance(payload, dict) or not isinstance(payload.get("ok"), bool) or payload.get("kind") not in _KINDS:
        return CallOutcome(False, None, "the call's result line is malformed", "not_json")
    if payload["ok"]:
        return CallOutcome(True, payload.get("result"), None, "ok")
    error = payload.get("error")
    return CallOutcome(False, None, str(error)[:MAX_ERROR_CHARS] if error is not None else "failed", payload["kind"])


def parse_state(stdout: str, nonce: str) -> StateOutcome:
    """The state cell's outcome; the digest is recomputed here from the canonical text."""
    outcome = parse_outcome(stdout, nonce)
    if not outcome.ok:
        return StateOutcome(False, None, None, None, outcome.error)
    result = outcome.result
    text = result.get("state") if isinstance(result, dict) else None
    if not isinstance(text, str):
        return StateOutcome(False, None, None, None, "the state line is malformed")
    try:
        state = json.loads(text)
    except ValueError:
        return StateOutcome(False, None, None, None, "the state is not JSON")
    return StateOutcome(True, hashlib.sha256(text.encode("utf-8")).hexdigest(), state, text, None)


def batch_program(
    backend: Backend,
    references: Sequence[Sequence[Sequence[Call]]],
    nonce: str,
    *,
    timeout_s: float | None = DEFAULT_CALL_TIMEOUT_S,
) -> str:
    """ONE program that runs each task's reference (steps of calls) from a fresh copy of the initial state.

    It prints one tagged line per task (`parse_batch` reads them). A call that fails (any kind,
    `ValueError` included: a reference must succeed) stops that task with `error` and
    `failed_step` set. `timeout_s` bounds each call (and the source's load); the program's
    own size stays under the sandbox's code limit only for batches of a few thousand tasks.
    """
    refs = [[[{"name": c.name, "arguments": c.arguments} for c in step] for step in task] for task in references]
    body = _BATCH.format(
        source=repr(backend.source),
        state=_json_literal(backend.state, "the backend's initial state"),
        timeout=_timeout_literal(timeout_s),
        references=_json_literal(refs, "the references"),
    )
    return _runtime() + f"_HONE_NONCE = {_check_nonce(nonce)!r}\n" + body


@dataclass(frozen=True)
class BatchOutcome:
    """One task of a batch: `results` by step (None when it failed), `final_state` digest and parsed `state`."""

    index: int
    results: list[list[Any]] | None
    error: str | None
    failed_step: int | None
    final_state: str | None
    state: Any


def parse_batch(stdout: str, nonce: str, count: int) -> list[BatchOutcome]:
    """`count` outcomes in task order; a task with no (valid) line gets an error naming why."""
    found: dict[int, BatchOutcome] = {}
    for line in _tagged(stdout, nonce):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or not isinstance(row.get("i"), int) or not 0 <= row["i"] < count:
            continue
        found[row["i"]] = _batch_row(row)
    missing = "no result for this task (the program stopped early: time limit, memory or a crash)"
    return [found.get(i, BatchOutcome(i, None, missing, None, None, None)) for i in range(count)]


def _batch_row(row: dict[str, Any]) -> BatchOutcome:
    index = int(row["i"])
    step = row.get("failed_step")
    failed_step = step if isinstance(step, int) else None
    if row.get("error") is not None:
        return BatchOutcome(index, None, str(row["error"])[:MAX_ERROR_CHARS], failed_step, None, None)
    text, results = row.get("state"), row.get("results")
    if not isinstance(text, str) or not isinstance(results, list):
        return BatchOutcome(index, None, "malformed result line", None, None, None)
    try:
        state = json.loads(text)
    except ValueError:
        return BatchOutcome(index, None, "the final state is not JSON", None, None, None)
    return BatchOutcome(index, results, None, None, hashlib.sha256(text.encode("utf-8")).hexdigest(), state)
