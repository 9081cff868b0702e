"""The call runner: a candidate is called on plain-data inputs in the sandbox and its outputs come back as
plain data, to be compared with expected values in the trusted parent only.

One sandboxed program = a small public runner + the candidate's source. The runner reads a list of
argument tuples from stdin (inputs only: nothing expected ever enters the program), runs the
candidate's source in its own namespace, calls the entry point on each input (each call in its own
try/except) and prints one row per call:

    @hone-call <index> ["ok", <tagged value>] | ["raise", "<type name>", "<message>"] | ["unencodable", "<type>"]

Instances of subclasses of the plain types (a `Counter`, a namedtuple, an `IntEnum`) are sent as
their base type's value, so their own methods never travel. The row format is public and forging a
row gains nothing: a row only carries a value, which the candidate could as well have returned.
The parent reads rows strictly (`parse_rows`): a missing, garbled or duplicated row is a failed
call, and values decode to built-in types only (`_plain`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._plain import PlainError, PlainLimits, decode_node, encode, loads_node, plain_repr

if TYPE_CHECKING:
    from hone.sandbox import ExecResult, Sandbox

ROW_PREFIX = "@hone-call "
MAX_MESSAGE = 1_000
"""Characters kept of a candidate's exception message."""

# The sandbox side: stdlib only, names prefixed so nothing collides with the session's or candidate's.
RUNNER_LIB = r"""
import json as _hone_json


class _HoneUnencodable(Exception):
    pass


def _hone_encode(v, d=0):
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if d > 200:
        raise _HoneUnencodable("nested too deeply")
    if t is int:
        return ["i", format(v, "x")]
    if t is float:
        return ["f", repr(v)]
    if t is bytes:
        return ["b", v.hex()]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = {list: "l", tuple: "t", set: "s", frozenset: "fs"}[t]
        return [tag, [_hone_encode(x, d + 1) for x in v]]
    if t is dict:
        return ["d", [[_hone_encode(k, d + 1), _hone_encode(x, d + 1)] for k, x in v.items()]]
    for base in (str, int, float, bytes, list, tuple, set, frozenset, dict):
        if isinstance(v, base):  # a Counter, a namedtuple, an IntEnum: sent as the base type's value
            return _hone_encode(base(v), d + 1)
    raise _HoneUnencodable(t.__name__)


def _hone_decode(n):
    if n is None or type(n) in (bool, str):
        return n
    tag, body = n
    if tag == "i":
        return int(body, 16)
    if tag == "f":
        return float(body)
    if tag == "b":
        return bytes.fromhex(body)
    if tag == "d":
        return {_hone_decode(k): _hone_decode(x) for k, x in body}
    return {"l": list, "t": tuple, "s": set, "fs": frozenset}[tag](_hone_decode(x) for x in body)


def _hone_payload(call):
    try:
        return ["ok", _hone_encode(call())]
    except _HoneUnencodable as exc:
        return ["unencodable", str(exc.args[0])[:200]]
    except BaseException as exc:  # SystemExit inside a call is that call's failure too
        try:
            name, message = type(exc).__name__, str(exc)
            # The nearest built-in base, so a test expecting ValueError accepts `class MyErr(ValueError)`.
            base = next(c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins")
        except BaseException:
            name, message, base = "BaseException", "(unprintable)", "BaseException"
        return ["raise", str(name)[:200], str(message)[:@@MAX_MESSAGE@@], str(base)[:200]]


def _hone_line(index, payload):
    return "\n@@PREFIX@@" + str(index) + " " + _hone_json.dumps(payload, separators=(",", ":")) + "\n"


def _hone_write_fd1(write, text):
    data = text.encode()
    while data:
        data = data[write(1, data):]
""".replace("@@PREFIX@@", ROW_PREFIX).replace("@@MAX_MESSAGE@@", str(MAX_MESSAGE))

_MAIN = r"""
def _hone_main(source, entry):
    import os, sys
    write = os.write
    calls = [_hone_decode(c) for c in _hone_json.loads(sys.stdin.read())]  # read before the candidate runs
    ns = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(compile(source, "<candidate>", "exec"), ns)
    fn = ns.get(entry)
    if not callable(fn):
        sys.stderr.write("the candidate does not define " + entry + "\n")
        raise SystemExit(3)
    for index, (args, kwargs) in enumerate(calls):
        payload = _hone_payload(lambda: fn(*args, **kwargs))
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        _hone_write_fd1(write, _hone_line(index, payload))
"""


@dataclass(frozen=True)
class CallResult:
    """One call's outcome as the parent decoded it: a plain `value`, or `error` (and `raised`, the
    nearest built-in exception class name, when the candidate raised)."""

    ok: bool
    value: Any = None
    error: str = ""
    raised: str = ""


@dataclass(frozen=True)
class CallRun:
    """Every call's result (in input order) and the sandboxed program's own outcome."""

    results: list[CallResult]
    exec: ExecResult

    @property
    def output(self) -> str:
        """What the candidate printed itself (the rows left out)."""
        return "\n".join(ln for ln in self.exec.stdout.split("\n") if ln and not ln.startswith(ROW_PREFIX))


def encode_calls(calls: Sequence[tuple[Sequence[Any], Mapping[str, Any]]]) -> str:
    """The runner's stdin: each call's positional and keyword arguments, tagged (PlainError if not plain)."""
    return json.dumps([encode([list(args), dict(kwargs)]) for args, kwargs in calls], separators=(",", ":"))


def runner_program(source: str, entry_point: str) -> str:
    """The sandboxed program that calls `entry_point` of `source` on the inputs given on stdin."""
    return f"{RUNNER_LIB}{_MAIN}\n_hone_main({source!r}, {entry_point!r})\n"


def parse_rows(stdout: str, n: int, limits: PlainLimits | None = None) -> list[CallResult]:
    """The `n` calls' results from the program's stdout, read as untrusted text (see the module doc)."""
    limits = limits or PlainLimits()
    found: dict[int, CallResult] = {}
    duplicated: set[int] = set()
    for line in stdout.split("\n"):
        if not line.startswith(ROW_PREFIX):
            continue
        index_text, _, payload = line[len(ROW_PREFIX) :].partition(" ")
        if not (index_text.isascii() and index_text.isdigit() and len(index_text) <= 9 and int(index_text) < n):
            continue
        index = int(index_text)
        if index in found:
            duplicated.add(index)
        found[index] = _row(payload, limits)
    results = []
    for i in range(n):
        if i in duplicated:
            results.append(CallResult(False, error="no result: several result rows for this call"))
        else:
            results.append(found.get(i) or CallResult(False, error="no result: the program ended before this call"))
    return results


def _row(payload: str, limits: PlainLimits) -> CallResult:
    try:
        node = loads_node(payload, limits)
        if type(node) is not list or not node or type(node[0]) is not str:
            raise PlainError("not a result row")
        if node[0] == "ok" and len(node) == 2:
            return CallResult(True, value=decode_node(node[1], limits))
        if node[0] == "raise" and len(node) in (3, 4) and all(type(x) is str for x in node[1:]):
            # [raise, type name, message, nearest built-in base]: trusted code raises the base (a row
            # could name any built-in, but the candidate could raise any built-in itself).
            name, message = str(node[1])[:200], str(node[2])[:MAX_MESSAGE]
            raised = str(node[3])[:200] if len(node) == 4 else name
            return CallResult(False, error=f"{name}: {message}" if message else name, raised=raised)
        if node[0] == "unencodable" and len(node) == 2 and type(node[1]) is str:
            return CallResult(False, error=f"returned a value that is not plain data ({str(node[1])[:200]})")
        raise PlainError("not a result row")
    except PlainError as exc:
        return CallResult(False, error=f"no result: a garbled result row ({exc})")


def describe_call(entry_point: str, args: Sequence[Any], kwargs: Mapping[str, Any], limit: int = 200) -> str:
    """`f(1, [2], k='x')`, cut to `limit` characters."""
    parts = [plain_repr(a) for a in args] + [f"{k}={plain_repr(v)}" for k, v in kwargs.items()]
    text = f"{entry_point}({', '.join(parts)})"
    return text if len(text) <= limit else text[: limit - 4] + "...)"


async def run_calls(
    sandbox: Sandbox,
    source: str,
    entry_point: str,
    stdin: str,
    n: int,
    *,
    timeout_s: float,
    memory_mb: int,
    limits: PlainLimits | None = None,
) -> CallRun:
    """Run the candidate on the `n` calls encoded in `stdin` (`encode_calls`) in one sandboxed program."""
    result = await sandbox.run(
        runner_program(source, entry_point), stdin=stdin, timeout_s=timeout_s, memory_mb=memory_mb
    )
    return CallRun(parse_rows(result.stdout, n, limits), result)
