"""`PropertyVerifier`: Hypothesis properties run in this (trusted) process against a sandboxed candidate.

The property code and Hypothesis run here; `candidate` in the property code is a proxy whose every call
is a round trip to one sandboxed `PythonSession` holding the candidate's code: arguments go in as plain
data, the result (or the exception's type and message) comes back as plain data (`_calls`). The
candidate never sees the property code nor Hypothesis, and the assertions run on built-in values.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from hone.core import ConfigError, Feedback, Visibility

from ._calls import RUNNER_LIB, describe_call, parse_rows
from ._code import CodeVerifier, TestOutcome, cut, why_not_run
from ._plain import PlainError, encode, plain_repr
from ._replay import candidate_exception

if TYPE_CHECKING:
    from hone.sandbox import PythonSession, Sandbox

# Hypothesis keeps global state while a test runs: one verification at a time in this process, on a
# thread of its own (waiting verifications queue here, not in the event loop's default executor).
_HYPOTHESIS_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hone-properties")
MAX_RESTARTS = 5
"""Sessions started again after the candidate killed or hung one, before the verification gives up."""

_SESSION_LIB = r"""
def _hone_load(source, entry):
    ns = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(compile(source, "<candidate>", "exec"), ns)
    fn = ns.get(entry)
    if not callable(fn):
        raise NameError("the candidate does not define " + entry)
    return fn


def _hone_call(text):
    import sys
    args, kwargs = _hone_decode(_hone_json.loads(text))
    payload = _hone_payload(lambda: _hone_fn(*args, **kwargs))
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    import os
    _hone_write_fd1(os.write, _hone_line(0, payload))
"""


class CandidateFailed(Exception):
    """A call of the candidate gave no result (it hung, crashed its interpreter or returned non-plain data)."""


class _Abort(BaseException):
    """Stops Hypothesis at once (it treats Exceptions as failures to shrink, not BaseExceptions)."""


class _Proxy:
    """`candidate` in the property code: each call runs in the sandboxed session (restarted if it dies)."""

    def __init__(self, verifier: PropertyVerifier, source: str, deadline: float) -> None:
        self.verifier = verifier
        self.source = source
        self.deadline = deadline
        self.session: PythonSession | None = None
        self.starts = 0
        self.calls = 0
        self.status = "ok"
        self.last_death = ""
        # The first call without a result in the running property: it fails that property even if the property
        # code catches the exception that signals it (`except Exception: return` must not pass a crash).
        self.problem: str | None = None

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._give_up(f"timed out after {self.verifier.timeout_s:g} s ({self.calls} calls)")
        return left

    def _open(self) -> PythonSession:
        if self.starts > MAX_RESTARTS:
            raise self._give_up(
                f"gave up: the candidate's interpreter ended {MAX_RESTARTS} times (last: {self.last_death})"
            )
        self.starts += 1
        v = self.verifier
        session = v._pool().session(timeout_s=v.timeout_s, memory_mb=v.memory_mb)
        load = f"{RUNNER_LIB}\n{_SESSION_LIB}\n_hone_fn = _hone_load({self.source!r}, {v.entry_point!r})\n"
        result = session.run(load, timeout_s=self._remaining())
        if not result.ok:
            session.close()
            self.status = result.status
            raise self._give_up(f"the candidate failed to load: {why_not_run(result)}")
        self.session = session
        return session

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        call = describe_call(self.verifier.entry_point, args, kwargs)
        try:
            text = json.dumps(encode([list(args), dict(kwargs)]), separators=(",", ":"))
        except PlainError as exc:
            raise TypeError(f"the property passes a value that is not plain data to {call} ({exc})") from None
        session = self.session or self._open()
        result = session.run(f"_hone_call({text!r})", timeout_s=min(self._remaining(), self.verifier.call_timeout_s))
        [row] = parse_rows(result.stdout, 1)
        if not session.alive:
            self.session = None
            session.close()
            self.last_death = f"{call}: {why_not_run(result)}"
        if not result.ok and result.status != "error":
            self.status = result.status
        if row.ok:
            return row.value
        if row.raised:
            raise candidate_exception(row.raised, row.error.partition(": ")[2])
        failed = CandidateFailed(f"{call}: {row.error}" + ("" if result.ok else f" ({why_not_run(result)})"))
        self.problem = self.problem or f"{type(failed).__name__}: {failed}"
        raise failed

    def _give_up(self, why: str) -> _Abort:
        self.problem = self.problem or why
        return _Abort(why)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


class PropertyVerifier(CodeVerifier):
    """Hypothesis properties against a candidate function; a counterexample becomes the feedback text. Sound.

    `properties` is Python source defining functions named `prop_*`, each decorated with
    `@given(...)` and calling the candidate as `candidate`, e.g.::

        from hypothesis import given, strategies as st

        @given(st.lists(st.integers()))
        def prop_sorted(xs):
            assert candidate(xs) == sorted(xs)

    The properties run in this process; `candidate(...)` calls the entry point in one sandboxed
    session per verification, with plain data both ways (see the module doc). Each property runs
    `max_examples` derandomized examples (reproducible feedback, shrunk counterexamples).
    `timeout_s` bounds the whole verification, `call_timeout_s` one call. Hypothesis must be
    installed in this Python (`pip install 'hone[props]'`).
    """

    sound = True

    def __init__(
        self,
        properties: str,
        entry_point: str,
        *,
        max_examples: int = 100,
        name: str = "properties",
        visibility: Visibility = "public",
        timeout_s: float = 30.0,
        call_timeout_s: float = 5.0,
        memory_mb: int = 1024,
        sandbox: Sandbox | None = None,
    ) -> None:
        if not entry_point.isidentifier():
            raise ConfigError(f"PropertyVerifier: entry_point must be a Python name, not {entry_point!r}")
        if importlib.util.find_spec("hypothesis") is None:
            raise ConfigError("PropertyVerifier needs hypothesis in this Python: pip install 'hone[props]'")
        super().__init__(name=name, visibility=visibility, timeout_s=timeout_s, memory_mb=memory_mb, sandbox=sandbox)
        self.properties = properties
        self.entry_point = entry_point
        self.max_examples = max_examples
        self.call_timeout_s = call_timeout_s

    async def verify(self, candidate: str) -> Feedback:
        """Check every property against `candidate` (source defining `entry_point`)."""
        loop = asyncio.get_running_loop()
        outcomes, proxy = await loop.run_in_executor(_HYPOTHESIS_THREAD, self._check_all, candidate)
        failures = [o for o in outcomes if not o.passed]
        if failures:
            text = f"{len(outcomes) - len(failures)}/{len(outcomes)} properties hold; {failures[0].name} fails:\n"
            text += failures[0].error.strip()
        else:
            text = f"all {len(outcomes)} properties hold on {self.max_examples} examples each"
        return Feedback(
            source="verifier",
            name=self.name,
            score=(len(outcomes) - len(failures)) / len(outcomes),
            passed=not failures,
            text=cut(text),
            evidence={
                "properties": [{"name": o.name, "passed": o.passed, "error": cut(o.error, 600)} for o in outcomes],
                "status": proxy.status,
                "calls": proxy.calls,
            },
            visibility=self.visibility,
        )

    def _check_all(self, candidate: str) -> tuple[list[TestOutcome], _Proxy]:
        from hypothesis import HealthCheck, settings

        proxy = _Proxy(self, candidate, time.monotonic() + self.timeout_s)
        namespace: dict[str, Any] = {"__name__": "__hone_properties__", "candidate": proxy}
        try:
            exec(compile(self.properties, "<properties>", "exec"), namespace)
        except Exception as exc:
            raise ConfigError(f"PropertyVerifier: the property code fails: {type(exc).__name__}: {exc}") from exc
        props = sorted((k, v) for k, v in namespace.items() if k.startswith("prop_") and callable(v))
        if not props:
            raise ConfigError("PropertyVerifier: the property code defines no prop_* function")
        cfg = settings(
            max_examples=self.max_examples,
            database=None,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        outcomes: list[TestOutcome] = []
        try:
            for name, prop in props:
                outcomes.append(self._check_one(name, cfg(prop), proxy))
        finally:
            proxy.close()
        return outcomes, proxy

    @staticmethod
    def _check_one(name: str, prop: Any, proxy: _Proxy) -> TestOutcome:
        proxy.problem = None
        try:
            prop()
        except _Abort as exc:
            return TestOutcome(name, False, str(exc))
        except Exception as exc:
            notes = [plain_repr(n) if type(n) is not str else n for n in getattr(exc, "__notes__", [])][:6]
            try:
                text = str(exc)
            except Exception:  # e.g. `assert ok, value` with a value that has no str()
                text = "(a message that has no printable form)"
            message = type(exc).__name__ + (f": {text}" if text else "")
            return TestOutcome(name, False, "\n".join([*notes, message]))
        if proxy.problem is not None:  # the property code caught it
            return TestOutcome(name, False, f"a call of the candidate gave no result: {proxy.problem}")
        return TestOutcome(name, True, "")
