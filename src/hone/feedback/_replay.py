"""Record/replay grading: test code `check(candidate)` judged in the trusted process on plain data.

1. Record (`_record`, once per test suite, cached): the calls the test makes, from a reference solution.
2. Run: the candidate is called on the recorded inputs by the call runner in the sandbox (`_calls`); only
   inputs enter that program, and only plain values come back.
3. Replay (here, in this process): the test code runs again with `check(replayer)`; the replayer answers
   each call with the candidate's decoded output for those arguments (or raises its exception), so every
   assertion is evaluated here, on built-in values the candidate cannot give behaviour to.

A call the recording does not have (the test took another path), a missing or garbled result, or a value
that is not plain data fails the grade, even if the test code catches the exception that signals it.
The test code (trusted data, like the reference) runs in this process with the candidate's outputs as
plain data only; it is not time-limited here, but recording ran the same code under a timeout.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from hone.core import Feedback, FeedbackSource, Visibility

from ._calls import CallResult, describe_call, run_calls
from ._checkrun import run_check
from ._code import CodeVerifier, cut, why_not_run
from ._plain import plain_repr, plain_same
from ._record import CheckSpec, Recording, record_many

if TYPE_CHECKING:
    from hone.sandbox import Sandbox

_TEST_FILE = "<hone check>"


_ENDS_ITERATION = (StopIteration, StopAsyncIteration)


class CandidateError(Exception):
    """Raised in the test code for a candidate's exception whose type is not a built-in exception."""


class _Stop(BaseException):
    """Ends a replay that cannot go on; a BaseException so that `except Exception` in a test cannot hide it."""


def candidate_exception(name: str, message: str) -> Exception:
    """The exception to raise in trusted code for a candidate's reported one: the built-in exception of that
    name (a test may expect `ValueError`), else `CandidateError`. Never a BaseException-only class, and never
    StopIteration/StopAsyncIteration: iteration in trusted code (`map`, `zip`, `list`) would take those for
    "no more items" and silently skip the rest of the test."""
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, _ENDS_ITERATION):
        try:
            return cls(message)
        except Exception:  # built-ins that take other arguments (UnicodeDecodeError)
            pass
    return CandidateError(f"{name}: {message}" if message else name)


class Replayer:
    """Stands in for the candidate while the test code runs again: answers each call from the candidate's
    results for the recorded call with equal arguments (in order; each recorded call answers once)."""

    def __init__(self, entry_point: str, recording: Recording, results: Sequence[CallResult]) -> None:
        self.entry_point = entry_point
        self.recording = recording
        self.results = results
        self.used = [False] * len(results)
        self.calls = 0
        self.problem: str | None = None
        self.last = ""

    def _match(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
        # the recorded order first (call k answers recorded call k), then any unused call with equal arguments
        # (a test may iterate over a set, whose order changes with the process's hash seed)
        nxt = self.calls - 1
        order = [nxt, *range(len(self.used))] if nxt < len(self.used) else range(len(self.used))
        for i in order:
            if self.used[i]:
                continue
            rec_args, rec_kwargs = self.recording.calls[i]
            if plain_same(list(args), list(rec_args)) and plain_same(kwargs, rec_kwargs):
                return i
        return None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call = describe_call(self.entry_point, args, kwargs)
        self.calls += 1
        i = self._match(args, kwargs)
        if i is None:
            self.problem = (
                f"call {self.calls} of the test, {call}, is not among the recorded calls (the test took another path)"
            )
            raise _Stop(self.problem)
        self.used[i] = True
        result = self.results[i]
        if result.ok:
            self.last = f"last call: {call} returned {cut(plain_repr(result.value), 300)}"
            return result.value
        self.last = f"last call: {call} raised {cut(result.error, 300)}"
        if result.raised:
            raise candidate_exception(result.raised, result.error.partition(": ")[2])
        self.problem = f"{call}: {result.error}"
        raise _Stop(self.problem)


def replay(spec: CheckSpec, recording: Recording, results: Sequence[CallResult]) -> tuple[bool, str]:
    """Run `spec`'s test with the candidate's `results`; (passed, why not)."""
    replayer = Replayer(spec.entry_point, recording, results)
    try:
        run_check(spec.context, spec.test, spec.entry_point, replayer, _TEST_FILE)
    except _Stop:
        pass
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from the test code is a failure too
        if replayer.problem is None:
            return False, _explain(spec, exc, replayer.last)
    if replayer.problem is not None:
        return False, replayer.problem
    return True, ""


def _explain(spec: CheckSpec, exc: BaseException, last: str) -> str:
    try:
        message = str(exc)
    except Exception:  # e.g. `assert ok, value` with a value that has no str()
        message = "(a message that has no printable form)"
    lines = [f"{type(exc).__name__}: {message}" if message else type(exc).__name__]
    tb, lineno = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEST_FILE:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    source = f"{spec.context}\n\n{spec.test}\n".splitlines()
    if lineno is not None and 0 < lineno <= len(source):
        lines.append(f"at: {source[lineno - 1].strip()[:300]}")
    if last:
        lines.append(last)
    return "\n".join(lines)


class RecordReplayVerifier(CodeVerifier):
    """Grades a candidate with test code that defines `check(candidate)` (HumanEval's form), soundly.

    The test's calls are recorded once from `reference` (a program defining `entry_point`), the
    candidate is called on those inputs in the sandbox, and the test runs again here on the
    candidate's outputs (see the module doc). `context` is code the test needs first (a HumanEval
    prompt: helpers, imports). One `Feedback`: `passed`, `score` 1.0 or 0.0, `evidence` with `tests`
    (one entry, `name`), `calls`, the sandbox `status`, `duration_s` and the program's own `output`.
    """

    sound = True

    def __init__(
        self,
        test: str,
        entry_point: str,
        reference: str,
        *,
        context: str = "",
        name: str = "check",
        visibility: Visibility = "hidden",
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        record_timeout_s: float = 30.0,
        source: FeedbackSource = "verifier",
        sandbox: Sandbox | None = None,
    ) -> None:
        if not entry_point.isidentifier():
            raise ValueError(f"RecordReplayVerifier: entry_point must be a Python name, not {entry_point!r}")
        super().__init__(name=name, visibility=visibility, timeout_s=timeout_s, memory_mb=memory_mb, sandbox=sandbox)
        self.spec = CheckSpec(context, test, entry_point, reference)
        self.record_timeout_s = record_timeout_s
        self.source: FeedbackSource = source

    async def recording(self) -> Recording:
        """The recorded calls (cached; recorded in a subprocess on first use). GradeError if that fails."""
        return await _wait(record_many([self.spec], timeout_s=self.record_timeout_s)[0])

    async def verify(self, candidate: str) -> Feedback:
        """Run `candidate` (source defining the entry point) on the recorded inputs and replay the test."""
        recording = await self.recording()
        run = await run_calls(
            self._pool(),
            candidate,
            self.spec.entry_point,
            recording.stdin,
            len(recording.calls),
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
        )
        reason = why_not_run(run.exec)
        results = [
            r if r.ok or not r.error.startswith("no result") else CallResult(False, error=f"{r.error} ({reason})")
            for r in run.results
        ]
        passed, why = replay(self.spec, recording, results)
        if passed and not run.exec.ok:
            passed, why = False, f"every call answered, but then {reason}"
        text = "all 1 tests passed" if passed else f"0/1 tests passed; {self.name} failed:\n{why}"
        return Feedback(
            source=self.source,
            name=self.name,
            score=1.0 if passed else 0.0,
            passed=passed,
            text=cut(text),
            evidence={
                "tests": [{"name": self.name, "passed": passed, "error": cut(why, 600)}],
                "calls": len(recording.calls),
                "status": run.exec.status,
                "duration_s": round(run.exec.duration_s, 4),
                "output": cut(run.output.strip(), 500),
            },
            visibility=self.visibility,
        )


async def _wait(fut: Future[Recording]) -> Recording:
    return await asyncio.wrap_future(fut)  # the record thread only ever sets a Recording or a GradeError


def prefetch(specs: Sequence[CheckSpec], timeout_s: float = 30.0) -> None:
    """Start recording every spec not cached yet, in one subprocess (an environment's whole test set)."""
    record_many(specs, timeout_s=timeout_s)
