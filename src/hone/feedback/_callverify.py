"""`CallTestVerifier`: named input/expected cases, the candidate called in the sandbox, compared here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hone.core import ConfigError, Feedback, FeedbackSource, Visibility

from ._calls import describe_call, encode_calls, run_calls
from ._code import CodeVerifier, TestOutcome, cut, why_not_run
from ._plain import PlainError, encode, plain_equal, plain_repr

if TYPE_CHECKING:
    from hone.sandbox import Sandbox


@dataclass(frozen=True)
class CallCase:
    """One case: call the entry point with `args`/`kwargs` (plain data) and expect `expected`.

    With `exact` (default) types must match exactly (True is not 1, a tuple is not a list); a float
    `expected` accepts an int or float within `rel_tol`/`abs_tol` (nested floats too), and nan equals
    nan. With `exact=False`, Python's `==` on the decoded built-in values (what a docstring example
    means), a float `expected` still within the tolerances.
    """

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    expected: Any = None
    rel_tol: float = 0.0
    abs_tol: float = 0.0
    exact: bool = True

    def matches(self, got: Any) -> bool:
        """Whether a decoded (built-in) output is what this case expects."""
        if self.exact:
            return plain_equal(got, self.expected, self.rel_tol, self.abs_tol)
        if type(self.expected) is float and type(got) in (bool, int, float):
            return plain_equal(float(got), self.expected, self.rel_tol, self.abs_tol)
        return bool(got == self.expected)  # built-in values on both sides: built-in equality


class CallTestVerifier(CodeVerifier):
    """Calls a candidate function on each case's inputs in one sandboxed program; compares here. Sound.

    Only the inputs enter the program; each output comes back as plain data (`hone.feedback._plain`)
    and is compared with `expected` in this process, so nothing the candidate does to its interpreter
    (rebinding builtins, odd `__eq__`, forged output, exiting early) changes the verdict. `score` is
    the fraction of cases passed; `passed` needs every case and a normal exit. `evidence` holds
    `tests` (name, passed, error), the sandbox `status`, `duration_s` and the program's own `output`.
    """

    sound = True

    def __init__(
        self,
        cases: Sequence[CallCase],
        entry_point: str,
        *,
        name: str = "call_tests",
        visibility: Visibility = "hidden",
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        source: FeedbackSource = "verifier",
        sandbox: Sandbox | None = None,
    ) -> None:
        if not entry_point.isidentifier():
            raise ConfigError(f"CallTestVerifier: entry_point must be a Python name, not {entry_point!r}")
        super().__init__(name=name, visibility=visibility, timeout_s=timeout_s, memory_mb=memory_mb, sandbox=sandbox)
        self.cases = list(cases)
        self.entry_point = entry_point
        self.source: FeedbackSource = source
        for case in self.cases:
            try:
                encode(case.expected)
            except PlainError as exc:
                raise ConfigError(
                    f"CallTestVerifier: case {case.name!r} expects a value that is not plain data ({exc})"
                ) from None
        try:
            self._stdin = encode_calls([(c.args, c.kwargs) for c in self.cases])
        except PlainError as exc:
            raise ConfigError(f"CallTestVerifier: a case's arguments are not plain data ({exc})") from None

    async def verify(self, candidate: str) -> Feedback:
        """Call `candidate`'s entry point on every case and compare."""
        run = await run_calls(
            self._pool(),
            candidate,
            self.entry_point,
            self._stdin,
            len(self.cases),
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
        )
        outcomes = []
        for case, result in zip(self.cases, run.results, strict=True):
            call = describe_call(self.entry_point, case.args, case.kwargs)
            if not result.ok:
                error = f"{call}: {result.error}"
                if result.error.startswith("no result"):
                    error += f" ({why_not_run(run.exec)})"
            elif not case.matches(result.value):
                got, want = cut(plain_repr(result.value), 300), cut(plain_repr(case.expected), 300)
                error = f"{call} returned {got}, expected {want}"
            else:
                error = ""
            outcomes.append(TestOutcome(case.name, not error, error))
        failures = [o for o in outcomes if not o.passed]
        passed = bool(outcomes) and not failures and run.exec.ok
        if not self.cases:
            text = f"no cases; the program ended with status {run.exec.status}"
        elif failures:
            text = f"{len(outcomes) - len(failures)}/{len(outcomes)} tests passed; {failures[0].name} failed:\n"
            text += failures[0].error
        elif not run.exec.ok:
            text = f"all {len(outcomes)} calls answered correctly, but then {why_not_run(run.exec)}"
        else:
            text = f"all {len(outcomes)} tests passed"
        return Feedback(
            source=self.source,
            name=self.name,
            score=(len(outcomes) - len(failures)) / len(outcomes) if outcomes else 0.0,
            passed=passed,
            text=cut(text),
            evidence={
                "tests": [{"name": o.name, "passed": o.passed, "error": cut(o.error, 600)} for o in outcomes],
                "status": run.exec.status,
                "duration_s": round(run.exec.duration_s, 4),
                "output": cut(run.output.strip(), 500),
            },
            visibility=self.visibility,
        )
