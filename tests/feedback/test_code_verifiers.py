"""Code verifiers: unit tests, call cases, record/replay, answers computed by execution, Hypothesis properties."""

from __future__ import annotations

import math

import pytest

from hone.core import ConfigError, GradeError
from hone.feedback import (
    CallCase,
    CallTestVerifier,
    ExecAnswerVerifier,
    PlainError,
    PlainLimits,
    PropertyVerifier,
    RecordReplayVerifier,
    TestCase,
    UnitTestVerifier,
)
from hone.feedback._calls import parse_rows
from hone.feedback._plain import dumps, loads, plain_equal, plain_same

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
    bad = await UnitTestVerifier(TESTS, visibility="hidden", unsound_ok=True).verify(BAD)
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


def test_unit_tests_are_unsound_and_refuse_hidden_without_an_explicit_opt_in() -> None:
    assert UnitTestVerifier.sound is False
    assert CallTestVerifier.sound and RecordReplayVerifier.sound and PropertyVerifier.sound and ExecAnswerVerifier.sound
    with pytest.raises(ConfigError, match=r"not sound.*unsound_ok=True"):
        UnitTestVerifier(TESTS, visibility="hidden")


def test_plain_data_round_trips_and_the_decoder_enforces_its_limits() -> None:
    value = {"a": [1, -(2**100), (2.5, float("inf"))], 3: {True, None}, "f": frozenset({b"\x00"}), "t": ()}
    back = loads(dumps(value))
    assert back == value and type(back["a"][2]) is tuple and type(back["f"]) is frozenset
    assert math.isnan(loads(dumps(float("nan"))))
    with pytest.raises(PlainError, match="unencodable: MyInt"):
        dumps(type("MyInt", (int,), {})(3))
    for text, why in [
        ("5", "JSON number"),
        ('["i", "ff" ]' + " " * 2_000_000, "bytes"),
        ('["l", [' * 100 + "null" + "]]" * 100, "deeper"),
        ('["i", "' + "f" * 9_000 + '"]', "int"),
        ('["l", [' + ",".join(['""'] * 200_001) + "]]", "elements"),
        ('["s", [["l", []]]]', "unhashable"),
        ('["x", []]', "unknown tag"),
        ('{"a": 1}', "JSON number"),
    ]:
        with pytest.raises(PlainError, match=why):
            loads(text)
    # a set of distinct ints that all hash alike (quadratic to build) is refused
    colliding = ",".join(f'["i", "{format(k * (2**61 - 1), "x")}"]' for k in range(1, 100))
    with pytest.raises(PlainError, match="collisions"):
        loads(f'["s", [{colliding}]]')
    assert loads(f'["l", [{colliding}]]', PlainLimits())  # the same values in a list are fine
    assert plain_equal(1.0, 1) is False and plain_equal(1, 1.0)  # want an int: exactly; want a float: a number
    assert plain_equal(1.0 + 1e-12, 1.0, rel_tol=1e-9) and not plain_equal(True, 1) and not plain_equal([1], (1,))


def test_exact_types_hold_for_set_members_and_dict_keys_too() -> None:
    # Built-in hashing takes True, 1 and 1.0 for one key: exact comparison must not, at any depth.
    for got, want in [({True: "a"}, {1: "a"}), ({True, 2}, {1, 2}), ({(True,): 0}, {(1,): 0}), ({1.0: 0}, {1: 0})]:
        assert not plain_equal(got, want) and not plain_same(got, want), (got, want)
    assert not plain_equal([frozenset({True})], [frozenset({1})])
    assert plain_equal({(1, "x"): [1.0 + 1e-12], 2: {3}}, {2: {3}, (1, "x"): [1.0]}, rel_tol=1e-9)
    assert plain_same({(1, "x"): frozenset({b"y"})}, {(1, "x"): frozenset({b"y"})})


def test_result_rows_are_read_strictly() -> None:
    rows = parse_rows('@hone-call 0 ["ok",["i","2"]]\n@hone-call 1 ["ok",null]\n@hone-call 1 ["ok",null]\nnoise\n', 3)
    assert rows[0].ok and rows[0].value == 2
    assert not rows[1].ok and "several result rows" in rows[1].error
    assert not rows[2].ok and "ended before this call" in rows[2].error
    [garbled] = parse_rows('@hone-call 0 ["ok",2]', 1)
    assert not garbled.ok and "garbled" in garbled.error
    [raised] = parse_rows('@hone-call 0 ["raise","ValueError","bad"]', 1)
    assert not raised.ok and raised.raised == "ValueError" and raised.error == "ValueError: bad"


CASES = [
    CallCase("zero", (0, 0), expected=0),
    CallCase("positive", (2, 3), expected=5),
    CallCase("keywords", (), {"a": -1, "b": -1}, expected=-2),
    CallCase("floats", (0.1, 0.2), expected=0.3, rel_tol=1e-9),
]


async def test_call_cases_compare_in_the_parent_with_exact_types() -> None:
    good = await CallTestVerifier(CASES, "add").verify(GOOD)
    assert good.passed is True and good.score == 1.0 and good.visibility == "hidden"
    assert good.text == "all 4 tests passed"
    bad = await CallTestVerifier(CASES, "add").verify(BAD)
    assert bad.passed is False and bad.score == 0.25
    assert "positive failed:\nadd(2, 3) returned -1, expected 5" in (bad.text or "")
    as_text = await CallTestVerifier(CASES, "add").verify("def add(a, b):\n    return str(a + b)\n")
    assert as_text.passed is False and "returned '0', expected 0" in (as_text.text or "")
    raises = await CallTestVerifier(CASES, "add").verify("def add(a, b):\n    raise ValueError('no')\n")
    assert raises.passed is False and "ValueError: no" in (raises.text or "")
    missing = await CallTestVerifier(CASES, "add").verify("def plus(a, b):\n    return a + b\n")
    assert missing.passed is False and "does not define add" in (missing.text or "")
    with pytest.raises(ConfigError, match="not plain data"):
        CallTestVerifier([CallCase("x", (object(),), expected=1)], "add")


async def test_a_hanging_call_fails_that_call_and_the_rest() -> None:
    hangs = "def add(a, b):\n    while a == 2:\n        pass\n    return a + b\n"
    fb = await CallTestVerifier(CASES, "add", timeout_s=1).verify(hangs)
    tests = fb.evidence["tests"]  # type: ignore[index]
    assert [t["passed"] for t in tests] == [True, False, False, False] and fb.evidence["status"] == "timeout"  # type: ignore[index]
    assert "timed out" in tests[1]["error"]


RECORD_TEST = """
def check(candidate):
    import random
    for _ in range(20):
        xs = [random.randint(-50, 50) for _ in range(random.randint(0, 8))]
        assert candidate(list(xs)) == sorted(xs)
    assert candidate([]) == []
"""


async def test_record_replay_grades_check_code_in_the_parent() -> None:
    reference = "def my_sort(xs):\n    return sorted(xs)\n"
    verifier = RecordReplayVerifier(RECORD_TEST, "my_sort", reference)
    assert len((await verifier.recording()).calls) == 21
    good = await verifier.verify("def my_sort(xs):\n    xs.sort()\n    return xs\n")
    assert good.passed is True and good.evidence["calls"] == 21  # type: ignore[index]
    bad = await verifier.verify("def my_sort(xs):\n    return sorted(set(xs))\n")
    assert bad.passed is False and "AssertionError" in (bad.text or "") and "assert candidate(" in (bad.text or "")
    assert "last call: my_sort(" in (bad.text or "")
    broken = RecordReplayVerifier(RECORD_TEST, "my_sort", "def my_sort(xs):\n    return xs\n")
    with pytest.raises(GradeError, match="reference solution fails its own test"):
        await broken.verify(reference)


def test_property_verifier_needs_hypothesis_in_this_python(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hypothesis" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs hypothesis in this Python: pip install 'hone\[props\]'"):
        PropertyVerifier(PROPS, "my_sort")


async def test_a_hanging_candidate_fails_its_properties_within_the_time_limit() -> None:
    hangs = "def my_sort(xs):\n    while len(xs) > 2:\n        pass\n    return sorted(xs)\n"
    fb = await PropertyVerifier(PROPS, "my_sort", timeout_s=8, call_timeout_s=1).verify(hangs)
    assert fb.passed is False and fb.evidence["status"] == "timeout"  # type: ignore[index]


async def test_a_hanging_or_crashing_reference_is_a_grade_error_not_a_verdict() -> None:
    hangs = RecordReplayVerifier(
        RECORD_TEST, "my_sort", "def my_sort(xs):\n    while True:\n        pass\n", record_timeout_s=1
    )
    with pytest.raises(GradeError, match="took too long"):
        await hangs.verify("def my_sort(xs):\n    return sorted(xs)\n")
    crashes = RecordReplayVerifier(RECORD_TEST, "my_sort", "import os\nos._exit(3)\n")
    with pytest.raises(GradeError, match="ended without a result"):
        await crashes.verify("def my_sort(xs):\n    return sorted(xs)\n")


async def test_subclasses_of_plain_types_come_back_as_their_base_value() -> None:
    cases = [CallCase("counts", ("abca",), expected={"a": 2, "b": 1, "c": 1})]
    counter = "from collections import Counter\ndef count(s):\n    return Counter(s)\n"
    assert (await CallTestVerifier(cases, "count").verify(counter)).passed is True
    point = [CallCase("point", (), expected=(1, 2))]
    named = "from collections import namedtuple\nP = namedtuple('P', 'x y')\ndef count():\n    return P(1, 2)\n"
    assert (await CallTestVerifier(point, "count").verify(named)).passed is True
    # what comes back is the value, not the object: an always-equal int subclass is just its number
    sly = "class I(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
    fb = await CallTestVerifier(point, "count").verify(sly + "def count():\n    return I(7)\n")
    assert fb.passed is False and "returned 7, expected (1, 2)" in (fb.text or "")


def test_loose_cases_compare_like_a_docstring_means_it() -> None:
    loose = CallCase("x", expected=1, exact=False)
    assert loose.matches(True) and loose.matches(1.0) and not loose.matches("1")
    assert CallCase("f", expected=0.5, rel_tol=1e-6, abs_tol=1e-6, exact=False).matches(0.5000001)
    strict = CallCase("x", expected=1)
    assert not strict.matches(True) and not strict.matches(1.0) and strict.matches(1)


RAISES_TEST = """
def check(candidate):
    assert candidate(4) == 2
    try:
        candidate(-1)
    except ValueError:
        pass
    else:
        raise AssertionError("a negative number must raise ValueError")
"""


async def test_a_candidates_own_exception_class_counts_as_its_builtin_base() -> None:
    reference = "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return int(x ** 0.5)\n"
    verifier = RecordReplayVerifier(RAISES_TEST, "root", reference)
    own = (
        "class NegativeError(ValueError):\n    pass\n"
        "def root(x):\n    if x < 0:\n        raise NegativeError('negative')\n    return int(x ** 0.5)\n"
    )
    assert (await verifier.verify(own)).passed is True
    wrong = "def root(x):\n    if x < 0:\n        raise TypeError('negative')\n    return int(x ** 0.5)\n"
    assert (await verifier.verify(wrong)).passed is False
