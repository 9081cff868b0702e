"""What the code verifiers report, field by field, for every way a sandboxed program can end.

A scripted sandbox returns a chosen `ExecResult` (status, output, stderr), so each status the real
sandbox produces (memory, output limit, killed, timeout, a crash) is checked quickly and exactly; the
real sandbox's side is tested in tests/sandbox and tests/feedback/test_code_verifiers.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, cast

import pytest

from hone.core import ConfigError, Feedback
from hone.feedback import CallCase, CallTestVerifier, ExecAnswerVerifier, TestCase, UnitTestVerifier
from hone.feedback._calls import ROW_PREFIX, encode_calls
from hone.feedback._code import cut
from hone.feedback._plain import encode
from hone.sandbox import ExecResult, Sandbox

TESTS = [TestCase("zero", "assert f(0) == 0"), TestCase("one", "assert f(1) == 1"), TestCase("two", "assert f(2) == 4")]
Stdout = Callable[[str], str]  # the harness's marker -> what the program printed


class Scripted:
    """A sandbox that records each run's settings and answers with a scripted result."""

    def __init__(
        self, status: str = "ok", stdout: str | Stdout = "", stderr: str = "", rc: int | None = 0, duration: float = 0.5
    ) -> None:
        self.status, self.stdout, self.stderr, self.rc, self.duration = status, stdout, stderr, rc, duration
        self.runs: list[dict[str, Any]] = []

    async def run(
        self,
        code: str,
        *,
        stdin: str | None = None,
        files: Any = None,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
    ) -> ExecResult:
        markers = re.findall(r"@@hone-[0-9a-f]+@@", code)
        self.runs.append(
            {"code": code, "stdin": stdin, "timeout_s": timeout_s, "memory_mb": memory_mb, "markers": markers}
        )
        marker = markers[-1] if markers else ""
        out = self.stdout(marker) if callable(self.stdout) else self.stdout
        return ExecResult(cast("Any", self.status), self.rc, out, self.stderr, self.duration)

    @property
    def sandbox(self) -> Sandbox:
        return cast("Sandbox", self)


def reported(*rows: tuple[str, bool, str], before: str = "") -> Stdout:
    return lambda m: before + "".join(f"\n{m}{json.dumps(list(r))}\n" for r in rows)


async def unit(sandbox: Scripted, tests: list[TestCase] = TESTS, **kw: Any) -> Feedback:
    return await UnitTestVerifier(tests, sandbox=sandbox.sandbox, **kw).verify("def f(x): return x")


def errors(fb: Feedback) -> list[str]:
    return [t["error"] for t in fb.evidence["tests"]]  # type: ignore[index]


# --- settings reach the sandbox; defaults ---


async def test_each_verifier_passes_its_limits_to_the_sandbox() -> None:
    box = Scripted()
    await UnitTestVerifier(TESTS, timeout_s=2.5, memory_mb=300, sandbox=box.sandbox).verify("")
    await ExecAnswerVerifier(1, timeout_s=3.5, memory_mb=301, sandbox=box.sandbox).verify("")
    await CallTestVerifier(
        [CallCase("c", (1,), expected=1)], "f", timeout_s=4.5, memory_mb=302, sandbox=box.sandbox
    ).verify("")
    assert [(r["timeout_s"], r["memory_mb"]) for r in box.runs] == [(2.5, 300), (3.5, 301), (4.5, 302)]
    assert box.runs[2]["stdin"] == encode_calls([((1,), {})])  # the inputs go on stdin, not into the program
    assert [r["stdin"] for r in box.runs[:2]] == [None, None]


def test_defaults_are_the_documented_ones() -> None:
    u, e, c = UnitTestVerifier(TESTS), ExecAnswerVerifier(1), CallTestVerifier([], "f")
    assert (u.name, u.visibility, u.timeout_s, u.memory_mb, u.setup) == ("unit_tests", "public", 10.0, 512, "")
    assert (e.name, e.visibility, e.timeout_s, e.memory_mb, e.rel_tol) == ("exec_answer", "hidden", 10.0, 512, 1e-6)
    assert (c.name, c.visibility, c.timeout_s, c.memory_mb) == ("call_tests", "hidden", 10.0, 512)


async def test_setup_runs_before_the_candidate() -> None:
    box = Scripted()
    await UnitTestVerifier(TESTS, setup="import math", sandbox=box.sandbox).verify("def f(x): return x")
    assert box.runs[0]["code"].startswith("import math\n\ndef f(x): return x\n")


async def test_the_report_marker_is_64_random_bits_new_for_every_run() -> None:
    box = Scripted()
    await unit(box)
    await unit(box)
    first, second = box.runs[0]["markers"][-1], box.runs[1]["markers"][-1]
    assert re.fullmatch(r"@@hone-[0-9a-f]{16}@@", first) and first != second


# --- UnitTestVerifier ---


async def test_unit_feedback_in_full() -> None:
    out = reported(("zero", True, ""), ("one", True, ""), ("two", False, "AssertionError\n"), before="hello\nworld\n")
    fb = await unit(Scripted(stdout=out, duration=1.23456789))
    assert fb.name == "unit_tests" and fb.source == "verifier" and fb.visibility == "public"
    assert (fb.score, fb.passed) == (2 / 3, False)
    assert fb.text == "2/3 tests passed; two failed:\nAssertionError"
    assert fb.evidence == {
        "tests": [
            {"name": "zero", "passed": True, "error": ""},
            {"name": "one", "passed": True, "error": ""},
            {"name": "two", "passed": False, "error": "AssertionError\n"},
        ],
        "status": "ok",
        "duration_s": 1.2346,
        "output": "hello\nworld",  # the report lines left out
    }


def test_long_text_is_cut_from_the_middle() -> None:
    assert cut("x" * 2000) == "x" * 2000  # the limit itself is not cut
    assert cut("a" * 10 + "b" * 10, 10) == "aaaaa\n[... 10 characters cut ...]\nbbbbb"
    assert cut("a" * 11 + "b" * 10, 10) == "aaaaa\n[... 11 characters cut ...]\nbbbbb"


async def test_long_output_and_errors_are_cut_in_the_evidence() -> None:
    long_error, printed = "E" * 1000, "p" * 1200
    fb = await unit(Scripted(stdout=reported(("zero", False, long_error), before=printed)), tests=TESTS[:1])
    assert fb.evidence["output"] == cut(printed, 500)  # type: ignore[index]
    assert errors(fb) == [cut(long_error, 600)]


@pytest.mark.parametrize(
    ("status", "rc", "stderr", "why"),
    [
        ("timeout", None, "", "timed out (an infinite loop, or far too slow)"),
        ("memory", -9, "", "ran out of memory"),
        ("output_limit", None, "", "printed too much output"),
        ("killed", -9, "", "the program was killed (return code -9)"),
        ("error", 1, "", "the program ended before this test ran:\nreturn code 1"),
        (
            "error",
            1,
            "\n".join(f"line {i}" for i in range(1, 9)) + "\n",
            "the program ended before this test ran:\n" + "\n".join(f"line {i}" for i in range(3, 9)),
        ),
    ],
)
async def test_tests_that_never_ran_say_why(status: str, rc: int | None, stderr: str, why: str) -> None:
    fb = await unit(Scripted(status, reported(("zero", True, "")), stderr, rc))
    assert errors(fb) == ["", why, "not run: an earlier test ended the program"]
    assert [t["name"] for t in fb.evidence["tests"]] == ["zero", "one", "two"]  # type: ignore[index]
    assert (fb.score, fb.passed, fb.evidence["status"]) == (1 / 3, False, status)


async def test_no_tests_score_by_how_the_program_ended() -> None:
    fb = await unit(Scripted(), tests=[])
    assert (fb.score, fb.passed, fb.text) == (1.0, False, "no tests; the program ended with status ok")
    fb = await unit(Scripted("error", rc=1), tests=[])
    assert (fb.score, fb.passed, fb.text) == (0.0, False, "no tests; the program ended with status error")


async def test_garbled_short_and_repeated_reports_are_ignored() -> None:
    def out(m: str) -> str:
        return (
            f'{m}not json\n{m}5\n{m}["zero"]\n{m}["one", false, "first"]\n{m}["one", true, ""]\n{m}["zero", true, ""]\n'
        )

    fb = await unit(Scripted(stdout=out), tests=TESTS[:2])
    assert [(t["name"], t["passed"], t["error"]) for t in fb.evidence["tests"]] == [  # type: ignore[index]
        ("zero", True, ""),  # the garbled and short rows before it did not end the reading
        ("one", False, "first"),  # the first report of a test counts
    ]


async def test_a_program_that_ends_badly_after_all_tests_passed_does_not_pass() -> None:
    fb = await unit(Scripted("error", reported(*[(t.name, True, "") for t in TESTS]), "boom", 1))
    assert (fb.score, fb.passed, fb.text) == (1.0, False, "all 3 tests passed")


# --- ExecAnswerVerifier ---


async def exec_answer(expected: Any, box: Scripted, **kw: Any) -> Feedback:
    return await ExecAnswerVerifier(expected, sandbox=box.sandbox, **kw).verify("print(42)")


async def test_exec_answer_feedback_in_full() -> None:
    fb = await exec_answer(42, Scripted(stdout="thinking\n42\n"))
    assert (fb.name, fb.source, fb.visibility, fb.score, fb.passed) == ("exec_answer", "verifier", "hidden", 1.0, True)
    assert fb.text == "printed 42.0; expected 42"
    assert fb.evidence == {"expected": 42, "got": "42.0", "status": "ok"}
    fb = await exec_answer(42, Scripted(stdout="41\n"))
    assert (fb.score, fb.passed, fb.text) == (0.0, False, "printed 41.0; expected 42")


async def test_exec_answer_with_nothing_printed_or_no_number() -> None:
    for stdout in ("", "no numbers here\n"):
        fb = await exec_answer(42, Scripted(stdout=stdout))
        assert (fb.passed, fb.text, fb.evidence["got"]) == (False, "printed nothing; expected 42", None)  # type: ignore[index]
    fb = await exec_answer("yes", Scripted(stdout=""), compare="text")
    assert (fb.passed, fb.text) == (False, "printed nothing; expected yes")
    fb = await exec_answer("yes", Scripted(stdout="no\n  yes  \n\n"), compare="text")
    assert (fb.passed, fb.evidence["got"]) == (True, "yes")  # type: ignore[index]


async def test_exec_answer_reads_the_last_number_of_a_comma_list() -> None:
    fb = await exec_answer(4, Scripted(stdout="3,4\n"))
    assert (fb.passed, fb.evidence["got"]) == (True, "4.0")  # type: ignore[index]


async def test_exec_answer_tolerances_are_relative_and_absolute() -> None:
    assert (await exec_answer(100, Scripted(stdout="100.5"), rel_tol=0.01)).passed  # 0.5% off
    assert (await exec_answer(0, Scripted(stdout="0.005"), rel_tol=0.01)).passed  # near zero: absolute
    assert not (await exec_answer(100, Scripted(stdout="100.5"))).passed


async def test_exec_answer_a_failed_program_fails_and_shows_its_stderr_cut() -> None:
    stderr = "x" * 2000
    fb = await exec_answer(42, Scripted("error", "42\n", stderr, 1))
    assert (fb.score, fb.passed) == (0.0, False)
    assert fb.text == f"the program ended with status error:\n{cut(stderr, 800)}"


def test_exec_answer_refuses_an_unknown_comparison() -> None:
    with pytest.raises(ValueError, match="compare must be 'number' or 'text', not 'fuzzy'"):
        ExecAnswerVerifier(1, compare="fuzzy")


# --- CallTestVerifier ---


def rows(*values: Any) -> str:
    return "".join(f"\n{ROW_PREFIX}{i} {json.dumps(['ok', encode(v)])}\n" for i, v in enumerate(values))


async def calls(cases: list[CallCase], box: Scripted) -> Feedback:
    return await CallTestVerifier(cases, "f", sandbox=box.sandbox).verify("def f(x): return x")


CASES = [CallCase("a", (1,), expected=1), CallCase("b", (2,), expected=2), CallCase("c", (3,), expected=3)]


async def test_call_feedback_in_full() -> None:
    fb = await calls(CASES, Scripted(stdout="hi\n" + rows(1, 5, 3), duration=0.123456))
    assert (fb.name, fb.source, fb.visibility, fb.score, fb.passed) == (
        "call_tests",
        "verifier",
        "hidden",
        2 / 3,
        False,
    )
    assert fb.text == "2/3 tests passed; b failed:\nf(2) returned 5, expected 2"
    assert fb.evidence == {
        "tests": [
            {"name": "a", "passed": True, "error": ""},
            {"name": "b", "passed": False, "error": "f(2) returned 5, expected 2"},
            {"name": "c", "passed": True, "error": ""},
        ],
        "status": "ok",
        "duration_s": 0.1235,
        "output": "hi",
    }


async def test_calls_without_a_result_say_why_the_program_ended() -> None:
    fb = await calls(CASES, Scripted("timeout", rows(1), rc=None))
    assert errors(fb)[1:] == [
        "f(2): no result: the program ended before this call (timed out (an infinite loop, or far too slow))",
        "f(3): no result: the program ended before this call (timed out (an infinite loop, or far too slow))",
    ]
    assert fb.text.startswith("1/3 tests passed; b failed:\nf(2): no result")


async def test_all_answers_right_but_a_bad_exit_does_not_pass() -> None:
    fb = await calls(CASES, Scripted("memory", rows(1, 2, 3), rc=-9))
    assert (fb.score, fb.passed) == (1.0, False)
    assert fb.text == "all 3 calls answered correctly, but then ran out of memory"


async def test_no_cases_score_zero() -> None:
    fb = await calls([], Scripted())
    assert (fb.score, fb.passed, fb.text) == (0.0, False, "no cases; the program ended with status ok")


async def test_long_values_are_cut_in_messages_and_evidence() -> None:
    got, want = "g" * 1000, "w" * 1000
    fb = await calls([CallCase("a", (1,), expected=want)], Scripted(stdout=rows(got) + "o" * 700))
    error = f"f(1) returned {cut(repr(got), 300)}, expected {cut(repr(want), 300)}"
    assert errors(fb) == [cut(error, 600)]
    assert fb.evidence["output"] == cut("o" * 700, 500)  # type: ignore[index]


def test_call_case_tolerances() -> None:
    assert CallCase("c", expected=0.0, abs_tol=1e-3).matches(1e-4)
    assert not CallCase("c", expected=0.0, rel_tol=1e-3).matches(1e-4)
    assert CallCase("c", expected=100.0, rel_tol=0.01).matches(100.5)
    loose = CallCase("c", expected=100.0, rel_tol=0.01, exact=False)
    assert loose.matches(101) and not loose.matches(102)
    assert CallCase("c", expected=0.0, abs_tol=0.01, exact=False).matches(0.005)
    assert not CallCase("c", expected=0.0, rel_tol=0.01, exact=False).matches(0.005)


def test_call_verifier_setup_mistakes_are_named() -> None:
    with pytest.raises(ConfigError, match="entry_point must be a Python name, not 'f x'"):
        CallTestVerifier([], "f x")
    with pytest.raises(ConfigError, match="case 'odd' expects a value that is not plain data"):
        CallTestVerifier([CallCase("odd", expected=object())], "f")
    with pytest.raises(ConfigError, match="a case's arguments are not plain data"):
        CallTestVerifier([CallCase("odd", (object(),), expected=1)], "f")


def test_verify_sync_is_verify_from_plain_code() -> None:
    box = Scripted(stdout=reported(("zero", True, "")))
    fb = UnitTestVerifier(TESTS[:1], sandbox=box.sandbox).verify_sync("def f(x): return x")
    assert (fb.passed, fb.text) == (True, "all 1 tests passed")
    assert "def f(x): return x" in box.runs[0]["code"]
