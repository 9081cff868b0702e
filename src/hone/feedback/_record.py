"""The record step of record/replay grading: which calls a test makes, learned from a reference solution.

Recording runs the reference solution and the test code (`check(recorder)`, where the recorder
notes each call's arguments, then calls the reference on deep copies) in a `python -I`
subprocess, never in the candidates' sandbox pool (the fork server holds every run's request,
so nothing that reaches it is secret from a candidate) and never in this process (reference and
test are data: they may hang, print or change global state; the subprocess has a per-task alarm,
an overall timeout and a memory cap). Recordings are cached in memory by content, and recording
several specs shares one subprocess (`record_many`), streaming each result as it is ready.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from hone.core import GradeError

from ._calls import RUNNER_LIB
from ._plain import PlainError, PlainLimits, decode_node, loads_node

RECORD_PREFIX = "@hone-record "
CACHE_SIZE = 4_096
_LIMITS = PlainLimits(max_bytes=50_000_000, max_elements=5_000_000, max_depth=200)

_RECORD_MAIN = r"""
import copy as _copy, io as _io, os as _os, signal as _signal, sys as _sys


def _hone_alarm(signum, frame):
    raise TimeoutError("the reference run took too long")


def _hone_record(spec):
    ns = {"__name__": "__hone_reference__"}
    exec(compile(spec["reference"], "<reference>", "exec"), ns)
    fn = ns.get(spec["entry_point"])
    if not callable(fn):
        raise NameError("the reference does not define " + spec["entry_point"])
    calls, problems = [], []

    def recorder(*args, **kwargs):
        try:
            calls.append(_hone_encode([list(args), dict(kwargs)]))  # the arguments as they were at the call
        except _HoneUnencodable as exc:
            problems.append("the test passes a value that is not plain data (" + str(exc.args[0]) + ")")
            raise
        return fn(*_copy.deepcopy(args), **_copy.deepcopy(kwargs))

    run_check(spec["context"], spec["test"], spec["entry_point"], recorder, "<test>")
    if problems:  # even if the test caught the exception
        raise TypeError(problems[0])
    return calls


def _hone_record_all(memory_mb, timeout_s):
    memory_mb, timeout_s = int(memory_mb), float(timeout_s)
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    except Exception:
        pass
    specs = _hone_json.loads(_sys.stdin.read())
    _signal.signal(_signal.SIGALRM, _hone_alarm)
    for spec in specs:
        _sys.stdout = _io.StringIO()  # what the reference or the tests print is not ours to parse
        try:
            _signal.setitimer(_signal.ITIMER_REAL, timeout_s)
            row = {"key": spec["key"], "calls": _hone_record(spec)}
        except BaseException as exc:
            row = {"key": spec["key"], "error": (type(exc).__name__ + ": " + str(exc))[:2000]}
        finally:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
        data = ("\n" + @@PREFIX@@ + _hone_json.dumps(row, separators=(",", ":")) + "\n").encode()
        while data:
            data = data[_os.write(1, data):]
""".replace("@@PREFIX@@", repr(RECORD_PREFIX))


@dataclass(frozen=True)
class CheckSpec:
    """A test suite `check(candidate)`: `context` (code the test needs, e.g. a HumanEval prompt), `test` (code
    defining `check`), the `entry_point` name and a `reference` solution (a whole program defining it)."""

    context: str
    test: str
    entry_point: str
    reference: str

    @cached_property
    def key(self) -> str:
        """A digest of the four parts: recordings are cached by content."""
        text = json.dumps([self.context, self.test, self.entry_point, self.reference])
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Recording:
    """The calls the test made, in order (positional and keyword arguments, plain data), and the same
    already encoded as the call runner's stdin."""

    calls: tuple[tuple[tuple[Any, ...], dict[str, Any]], ...]
    stdin: str


_cache: OrderedDict[str, Future[Recording]] = OrderedDict()
_lock = threading.Lock()
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hone-record")


def record_many(
    specs: Iterable[CheckSpec], *, timeout_s: float = 30.0, memory_mb: int = 2048
) -> list[Future[Recording]]:
    """Futures of the recordings of `specs` (in order); those not cached are recorded in one subprocess, in
    order, each within `timeout_s`. A failed recording raises GradeError and is not cached."""
    futures: list[Future[Recording]] = []
    todo: list[tuple[CheckSpec, Future[Recording]]] = []
    with _lock:
        for spec in specs:
            fut = _cache.get(spec.key)
            if fut is None:
                fut = Future()
                fut.set_running_or_notify_cancel()  # shared by many waiters: none may cancel it
                _cache[spec.key] = fut
                todo.append((spec, fut))
            _cache.move_to_end(spec.key)
            futures.append(fut)
        while len(_cache) > CACHE_SIZE and next(iter(_cache.values())).done():
            _cache.popitem(last=False)
    if todo:
        _executor.submit(_record_batch, todo, timeout_s, memory_mb)
    return futures


def _forget(key: str, fut: Future[Recording]) -> None:
    with _lock:
        if _cache.get(key) is fut:
            del _cache[key]


def _script() -> str:
    checkrun = Path(__file__).with_name("_checkrun.py").read_text(encoding="utf-8")
    parts = [RUNNER_LIB, checkrun, _RECORD_MAIN]
    return (
        "".join(f"exec(compile({p!r}, '<hone record>', 'exec'))\n" for p in parts)
        + "_hone_record_all(*_sys.argv[1:3])\n"
    )


def _record_batch(todo: Sequence[tuple[CheckSpec, Future[Recording]]], timeout_s: float, memory_mb: int) -> None:
    pending = {spec.key: (spec, fut) for spec, fut in todo}
    payload = [
        {"key": s.key, "context": s.context, "test": s.test, "entry_point": s.entry_point, "reference": s.reference}
        for s, _ in todo
    ]
    why = "the record subprocess ended without a result"
    try:
        with tempfile.TemporaryFile() as errors:  # a file, not a pipe: stderr can never fill up and block it
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _script(), str(int(memory_mb)), repr(float(timeout_s))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd="/",
            )
            # A backstop only: each spec has its own alarm in the subprocess.
            killer = threading.Timer(60 + timeout_s + 0.5 * len(todo), proc.kill)
            killer.daemon = True
            killer.start()
            try:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(json.dumps(payload).encode())
                proc.stdin.close()
                for line in proc.stdout:
                    if line.startswith(RECORD_PREFIX.encode()):
                        _settle(pending, line[len(RECORD_PREFIX) :])
                proc.wait()
            finally:
                killer.cancel()
            errors.seek(0)
            stderr = errors.read()[-1500:].decode(errors="replace").strip()
        if stderr:
            why = f"{why}:\n{stderr}"
    except OSError as exc:
        why = f"the record subprocess could not start: {exc}"
    for key, (_, fut) in pending.items():
        _forget(key, fut)
        fut.set_exception(GradeError(f"recording the reference's calls failed: {why}"))


def _settle(pending: dict[str, tuple[CheckSpec, Future[Recording]]], line: bytes) -> None:
    try:
        row = json.loads(line)
        key = row["key"]
        _, fut = pending.pop(key)
    except (ValueError, KeyError, TypeError):
        return
    if "error" in row:
        _forget(key, fut)
        fut.set_exception(GradeError(f"the reference solution fails its own test: {row['error']}"))
        return
    try:
        calls = []
        for node in row["calls"]:
            args, kwargs = decode_node(node, _LIMITS)
            calls.append((tuple(args), dict(kwargs)))
        stdin = json.dumps(row["calls"], separators=(",", ":"))
        loads_node(stdin, _LIMITS)  # the runner's input stays within what a sandboxed run may get
    except (PlainError, ValueError, TypeError) as exc:
        _forget(key, fut)
        fut.set_exception(GradeError(f"the recorded calls are not plain data: {exc}"))
        return
    fut.set_result(Recording(tuple(calls), stdin))
