"""Verifiers that run model-written code in `hone.sandbox`: the shared base, `UnitTestVerifier` and
`ExecAnswerVerifier`.

A verifier is `sound` when no program can forge its verdict: the expected values never enter the
sandboxed program (nor any run of the sandbox pool) and the comparison happens in this process on
plain data. `ExecAnswerVerifier` is sound; so are `CallTestVerifier`, `RecordReplayVerifier` and
`PropertyVerifier` (their own modules). `UnitTestVerifier` is not: its tests are arbitrary code that
runs in the candidate's interpreter, which can rewrite whatever reports the outcome. The sandbox
still contains such a program, but its verdict can be forged, so it is public-only by default.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hone.core import ConfigError, Feedback, FeedbackSource, Visibility, numbers_match, parse_number, run_sync

if TYPE_CHECKING:
    from hone.sandbox import ExecResult, Sandbox

MAX_TEXT = 2_000
"""Feedback text longer than this is cut from the middle (tracebacks keep their last lines)."""


def shared_sandbox() -> Sandbox:
    """The process-wide sandbox pool verifiers use when not given one (`hone.sandbox.default_sandbox`)."""
    from hone.sandbox import default_sandbox

    return default_sandbox()


@dataclass(frozen=True)
class TestCase:
    """One named test: statements that raise (an `assert`, usually) when the candidate is wrong."""

    __test__ = False  # not a pytest test class, despite the name
    name: str
    code: str


@dataclass(frozen=True)
class TestOutcome:
    """What happened to one test: passed, or the error (exception line and short traceback)."""

    name: str
    passed: bool
    error: str = ""


_HARNESS = """
# --- hone test harness ---
def _hone_run_tests(_hone_tests, _hone_marker):
    import json as _j, sys as _s, traceback as _t
    for _hone_name, _hone_src in _hone_tests:
        try:
            exec(compile(_hone_src, "<test " + _hone_name + ">", "exec"), globals())
            _hone_row = [_hone_name, True, ""]
        except BaseException as _hone_exc:  # SystemExit and KeyboardInterrupt are failures too
            _hone_tb = _t.format_exception(type(_hone_exc), _hone_exc, _hone_exc.__traceback__)
            _hone_row = [_hone_name, False, "".join(_hone_tb[-6:])]
        _s.stdout.write("\\n" + _hone_marker + _j.dumps(_hone_row) + "\\n")
        _s.stdout.flush()
_hone_run_tests({tests!r}, {marker!r})
"""


def cut(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


def _reports(stdout: str, marker: str) -> list[Any]:
    rows: list[Any] = []
    for line in stdout.splitlines():
        if line.startswith(marker):
            try:
                rows.append(json.loads(line[len(marker) :]))
            except json.JSONDecodeError:
                continue
    return rows


def _program_output(result: ExecResult, marker: str) -> str:
    """stdout without the harness's report lines (what the program itself printed)."""
    return "\n".join(line for line in result.stdout.splitlines() if not line.startswith(marker)).strip()


class CodeVerifier:
    """What the code verifiers share: a name, a visibility, limits per run, the sandbox pool, and `sound`
    (True when no program can forge the verdict; see the module doc)."""

    sound: bool = True

    def __init__(
        self, *, name: str, visibility: Visibility, timeout_s: float, memory_mb: int, sandbox: Sandbox | None
    ) -> None:
        self.name = name
        self.visibility: Visibility = visibility
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._sandbox = sandbox

    def _pool(self) -> Sandbox:
        return self._sandbox or shared_sandbox()

    async def _execute(self, program: str) -> ExecResult:
        return await self._pool().run(program, timeout_s=self.timeout_s, memory_mb=self.memory_mb)

    async def verify(self, code: str) -> Feedback:
        """Run `code` and grade it."""
        raise NotImplementedError

    def verify_sync(self, code: str) -> Feedback:
        """`verify` from synchronous code."""
        return run_sync(self.verify(code))


class UnitTestVerifier(CodeVerifier):
    """Runs a candidate and then each test in one sandboxed program; one `Feedback` with per-test outcomes.

    `score` is the fraction of tests passed and `passed` is True only when all did.
    `evidence` holds `tests` (name, passed, error per test), the sandbox `status` and
    `duration_s`. A test that never ran (the candidate crashed at import, or an earlier
    test hung until the timeout) fails with the reason. `setup` is code run before the
    candidate (imports the task's prompt provides, say).

    Not sound (`sound = False`): the tests run in the candidate's interpreter, so a program written
    to cheat can make them report success, and the tests reach the sandbox pool, so they are not
    secret from other programs. `visibility="hidden"` is therefore refused unless `unsound_ok=True`;
    for hidden tests use `CallTestVerifier` (inputs and expected outputs) or `RecordReplayVerifier`.
    """

    sound = False

    def __init__(
        self,
        tests: Sequence[TestCase],
        *,
        name: str = "unit_tests",
        visibility: Visibility = "public",
        setup: str = "",
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        source: FeedbackSource = "verifier",
        sandbox: Sandbox | None = None,
        unsound_ok: bool = False,
    ) -> None:
        if visibility == "hidden" and not unsound_ok:
            raise ConfigError(
                "UnitTestVerifier is not sound (a candidate can forge its verdict and read its tests), so it is "
                "public-only; use CallTestVerifier or RecordReplayVerifier for hidden tests, or pass unsound_ok=True"
            )
        super().__init__(name=name, visibility=visibility, timeout_s=timeout_s, memory_mb=memory_mb, sandbox=sandbox)
        self.tests = list(tests)
        self.setup = setup
        self.source: FeedbackSource = source

    def program(self, candidate: str, marker: str) -> str:
        """The program that runs: setup, the candidate, then the harness over the tests."""
        tests = [(t.name, t.code) for t in self.tests]
        parts = [self.setup, candidate, _HARNESS.format(tests=tests, marker=marker)]
        return "\n\n".join(p for p in parts if p)

    async def verify(self, candidate: str) -> Feedback:
        """Run the tests against `candidate` (Python source) and report."""
        marker = f"@@hone-{secrets.token_hex(8)}@@"
        result = await self._execute(self.program(candidate, marker))
        outcomes = self._outcomes(result, marker)
        passed = sum(o.passed for o in outcomes)
        failures = [o for o in outcomes if not o.passed]
        if not self.tests:
            text = f"no tests; the program ended with status {result.status}"
        elif not failures:
            text = f"all {len(outcomes)} tests passed"
        else:
            first = failures[0]
            text = f"{passed}/{len(outcomes)} tests passed; {first.name} failed:\n{first.error.strip()}"
        return Feedback(
            source=self.source,
            name=self.name,
            score=passed / len(outcomes) if outcomes else (1.0 if result.ok else 0.0),
            passed=bool(outcomes) and not failures and result.ok,
            text=cut(text),
            evidence={
                "tests": [{"name": o.name, "passed": o.passed, "error": cut(o.error, 600)} for o in outcomes],
                "status": result.status,
                "duration_s": round(result.duration_s, 4),
                "output": cut(_program_output(result, marker), 500),
            },
            visibility=self.visibility,
        )

    def _outcomes(self, result: ExecResult, marker: str) -> list[TestOutcome]:
        seen: dict[str, TestOutcome] = {}
        for row in _reports(result.stdout, marker):
            if isinstance(row, list) and len(row) == 3 and row[0] not in seen:
                seen[str(row[0])] = TestOutcome(str(row[0]), bool(row[1]), str(row[2]))
        why = why_not_run(result)
        out: list[TestOutcome] = []
        for t in self.tests:
            if t.name in seen:
                out.append(seen[t.name])
            else:  # the first unreported test is the one that hung or crashed the program
                reason = why if not any(o.error == why for o in out) else "not run: an earlier test ended the program"
                out.append(TestOutcome(t.name, False, reason))
        return out


def why_not_run(result: ExecResult) -> str:
    if result.status == "timeout":
        return "timed out (an infinite loop, or far too slow)"
    if result.status == "memory":
        return "ran out of memory"
    if result.status == "output_limit":
        return "printed too much output"
    if result.status == "killed":
        return f"the program was killed (return code {result.returncode})"
    tail = result.stderr.strip().splitlines()[-6:]
    detail = "\n".join(tail) if tail else f"return code {result.returncode}"
    return f"the program ended before this test ran:\n{detail}"


class ExecAnswerVerifier(CodeVerifier):
    """Runs a program and compares what it prints with `expected` (Loong-style answers computed by execution).

    `compare="number"` (default) matches the last number printed within tolerance;
    `"text"` matches the last non-empty line exactly (surrounding spaces ignored). Sound: `expected`
    never enters the program, the comparison happens here, and the program must end with status ok.
    """

    sound = True

    def __init__(
        self,
        expected: Any,
        *,
        compare: str = "number",
        name: str = "exec_answer",
        visibility: Visibility = "hidden",
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        rel_tol: float = 1e-6,
        sandbox: Sandbox | None = None,
    ) -> None:
        if compare not in ("number", "text"):
            raise ValueError(f"ExecAnswerVerifier: compare must be 'number' or 'text', not {compare!r}")
        super().__init__(name=name, visibility=visibility, timeout_s=timeout_s, memory_mb=memory_mb, sandbox=sandbox)
        self.expected = expected
        self.compare = compare
        self.rel_tol = rel_tol

    async def verify(self, program: str) -> Feedback:
        """Run `program` and grade its output."""
        result = await self._execute(program)
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        got = lines[-1] if lines else None
        if self.compare == "number":
            numbers = [parse_number(tok) for line in lines for tok in line.replace(",", " ").split()]
            found = [n for n in numbers if n is not None]
            got = None if not found else str(found[-1])
            passed = numbers_match(got, self.expected, rel_tol=self.rel_tol, abs_tol=self.rel_tol)
        else:
            passed = got is not None and got == str(self.expected).strip()
        passed = passed and result.ok
        if result.ok:
            text = f"printed {got if got is not None else 'nothing'}; expected {self.expected}"
        else:
            text = f"the program ended with status {result.status}:\n{cut(result.stderr.strip(), 800)}"
        return Feedback(
            source="verifier",
            name=self.name,
            score=1.0 if passed else 0.0,
            passed=passed,
            text=text,
            evidence={"expected": self.expected, "got": got, "status": result.status},
            visibility=self.visibility,
        )
