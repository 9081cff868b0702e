"""Code verifiers: unit tests, answers computed by execution, Hypothesis properties, all in the sandbox."""

from __future__ import annotations

from hone.feedback import ExecAnswerVerifier, PropertyVerifier, TestCase, UnitTestVerifier

GOOD = "def add(a, b):\n    return a + b\n"
BAD = "def add(a, b):\n    return a - b\n"
TESTS = [
    TestCase("zero", "assert add(0, 0) == 0"),
    TestCase("positive", "assert add(2, 3) == 5, 'add(2, 3) should be 5'"),
    TestCase("negative", "assert add(-1, -1) == -2"),
]


async def test_unit_tests_report_each_outcome_and_the_failing_assertion() -> None:
    good = await UnitTestVerifier(TESTS).verify(GOOD)
    assert good.passed is True and good.score == 1.0 and good.visibility == "public"
    assert good.text == "all 3 tests passed"
    bad = await UnitTestVerifier(TESTS, visibility="hidden").verify(BAD)
    assert bad.passed is False and bad.score == 1 / 3 and bad.visibility == "hidden"
    assert [t["passed"] for t in bad.evidence["tests"]] == [True, False, False]  # type: ignore[index]
    assert "positive failed" in (bad.text or "") and "add(2, 3) should be 5" in (bad.text or "")


async def test_a_hanging_test_times_out_and_later_tests_are_not_run() -> None:
    tests = [TestCase("ok", "assert True"), TestCase("hangs", "while True: pass"), TestCase("after", "assert True")]
    fb = await UnitTestVerifier(tests, timeout_s=1).verify("")
    outcomes = fb.evidence["tests"]  # type: ignore[index]
    assert [o["passed"] for o in outcomes] == [True, False, False]
    assert "timed out" in outcomes[1]["error"] and "not run" in outcomes[2]["error"]
    assert fb.evidence["status"] == "timeout"  # type: ignore[index]


async def test_a_candidate_cannot_pass_by_exiting_early_or_forging_a_report() -> None:
    exits = "import os\nos._exit(0)\n"
    fb = await UnitTestVerifier(TESTS).verify(exits)
    assert fb.passed is False and fb.score == 0.0
    forged = 'print("@@hone-0000000000000000@@" + \'["zero", true, ""]\')\nraise SystemExit(0)\n'
    fb = await UnitTestVerifier(TESTS).verify(forged)
    assert fb.passed is False
    crashes = "raise ValueError('broken at import')\n"
    fb = await UnitTestVerifier(TESTS).verify(crashes)
    assert fb.passed is False and "broken at import" in (fb.text or "")


async def test_exec_answer_compares_the_printed_number_or_text() -> None:
    assert (await ExecAnswerVerifier(42).verify("print(6 * 7)")).passed is True
    assert (await ExecAnswerVerifier(42.0).verify("print('the total is', 41.9999999999)")).passed is True
    wrong = await ExecAnswerVerifier(42).verify("print(6 * 8)")
    assert wrong.passed is False and wrong.evidence["got"] == "48.0"  # type: ignore[index]
    assert (await ExecAnswerVerifier("YES", compare="text").verify("print('no')\nprint('YES')")).passed is True
    crashed = await ExecAnswerVerifier(1).verify("print(1)\n1/0")
    assert crashed.passed is False and "ZeroDivisionError" in (crashed.text or "")


PROPS = """
from hypothesis import given, strategies as st

@given(st.lists(st.integers()))
def prop_sorted(xs):
    out = candidate(xs)
    assert out == sorted(xs), f"got {out}"

@given(st.lists(st.integers()))
def prop_same_length(xs):
    assert len(candidate(xs)) == len(xs)
"""


async def test_properties_hold_or_give_a_counterexample() -> None:
    good = await PropertyVerifier(PROPS, "my_sort").verify("def my_sort(xs):\n    return sorted(xs)\n")
    assert good.passed is True and good.text == "all 2 properties hold on 100 examples each"
    # drops duplicates: the shrunk counterexample is a list with a repeated element
    bad = await PropertyVerifier(PROPS, "my_sort").verify("def my_sort(xs):\n    return sorted(set(xs))\n")
    assert bad.passed is False and bad.score == 0.0
    text = bad.text or ""
    assert "prop_same_length fails" in text or "prop_sorted fails" in text
    # Hypothesis's wording changed across versions ("Falsifying example" -> "Failing test case")
    assert ("Falsifying example" in text or "Failing test case" in text) and "xs=[0, 0]" in text
