"""Reward hacking: programs written to cheat the sound verifiers must fail grading; honest ones must pass.

The cheats know everything public: the call runner's source and row format, the codec, that Hypothesis
is used. Each group names the defence it tests; removing that defence makes its test fail (tried for
the row reader's duplicate rule, the status check, and keeping expected values out of the program).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from hone.core import Feedback, Trajectory
from hone.envs import HumanEval
from hone.feedback import (
    CallCase,
    CallTestVerifier,
    ExecAnswerVerifier,
    PropertyVerifier,
    RecordReplayVerifier,
    TestCase,
    UnitTestVerifier,
)
from hone.feedback._calls import ROW_PREFIX
from hone.sandbox import Sandbox

DATA = Path(__file__).parents[1] / "data/humaneval/HumanEval.jsonl.gz"
HONEST_ADD = "def add(a, b):\n    return a + b\n"
PAIRS = [(0, 1), (2, 3), (-4, 9), (7, 5)]
ADD_CASES = [CallCase(f"case {i}", (a, b), expected=a + b) for i, (a, b) in enumerate(PAIRS)]


@pytest.fixture(scope="module")
def humaneval() -> HumanEval:
    return HumanEval(path=DATA)


async def grade_add(kind: str, source: str, env: HumanEval) -> Feedback:
    """`add` graded by the call verifier, or by HumanEval/53's hidden grading (`add(x, y)`, 105 calls)."""
    if kind == "call":
        return await CallTestVerifier(ADD_CASES, "add", timeout_s=10).verify(source)
    [fb] = await env.clone().grade(Trajectory(task_id="HumanEval/53", env="humaneval", model="cheat", answer=source))
    return fb


# The spy: looks for a pattern everywhere a program can look (its memory through /proc/self/mem, every
# live object and frame, its files and environment) and returns the first match. Its own source never
# matches its patterns (they are regular expressions with escapes or classes).
SPY = r"""
import gc, os, re, sys

def _spy(pattern):
    rx = re.compile(pattern)
    def scan(data):
        if isinstance(data, str):
            data = data.encode("utf-8", "ignore")
        if isinstance(data, bytes):
            m = rx.search(data)
            return m.group(0).decode() if m else None
    for obj in gc.get_objects():
        values = []
        if isinstance(obj, dict):
            values = [*obj.keys(), *obj.values()]
        elif isinstance(obj, (list, tuple)):
            values = list(obj)
        elif hasattr(obj, "__code__"):
            values = list(obj.__code__.co_consts)
        for v in values:
            found = scan(v)
            if found:
                return found
    frame = sys._getframe()
    while frame is not None:
        for v in list(frame.f_locals.values()) + list(frame.f_globals.values()):
            found = scan(v) if isinstance(v, (str, bytes)) else None
            if found:
                return found
        frame = frame.f_back
    for name in os.listdir("."):
        try:
            found = scan(open(name, "rb").read())
        except OSError:
            found = None
        if found:
            return found
    found = scan(repr(dict(os.environ)))
    if found:
        return found
    try:
        with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
            for line in maps:
                span, perms = line.split()[:2]
                start, end = (int(x, 16) for x in span.split("-"))
                if "r" not in perms or end - start > 1 << 28 or line.rstrip().endswith(("[vvar]", "[vsyscall]")):
                    continue
                try:
                    mem.seek(start)
                    found = scan(mem.read(end - start))
                except (OSError, OverflowError, ValueError):
                    found = None
                if found:
                    return found
    except OSError:
        pass
    return None
"""

ADD_CHEATS = {
    # The verdict is computed in the parent from decoded rows: the program's own functions do not report it.
    "rebinds json.dumps": 'import json\njson.dumps = lambda *a, **k: \'["ok",["i","1"]]\'\n'
    "def add(a, b):\n    return None\n",
    "rebinds print and sys.stdout.write": "import builtins, sys\nbuiltins.print = lambda *a, **k: None\n"
    "sys.stdout.write = lambda s: len(s)\ndef add(a, b):\n    return 0\n",
    "rebinds builtins": "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.AssertionError = KeyError\n"
    "builtins.format = lambda *a: '5'\nbuiltins.len = lambda x: 0\ndef add(a, b):\n    return None\n",
    # Only built-in values come back: no behaviour travels with them.
    "always-true __eq__": "class Anything:\n    def __eq__(self, other):\n        return True\n"
    "    def __ne__(self, other):\n        return False\n    __hash__ = object.__hash__\n"
    "def add(a, b):\n    return Anything()\n",
    "odd __repr__ and __hash__": "class Five:\n    def __repr__(self):\n        return '5'\n    __str__ = __repr__\n"
    "    def __hash__(self):\n        return 5\ndef add(a, b):\n    return Five()\n",
    "int subclass": "class Int(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
    "def add(a, b):\n    return Int(0)\n",
    "str subclass": "class Str(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
    "def add(a, b):\n    return Str('')\n",
    "list subclass": "class List(list):\n    def __eq__(self, other):\n        return True\n"
    "def add(a, b):\n    return List()\n",
    # Exiting early leaves calls without rows (a failure), and a bad status fails the grade.
    "os._exit(0) at import": "import os\nos._exit(0)\ndef add(a, b):\n    return a + b\n",
    "sys.exit(0) inside the call": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    # Rows carry values only, and a duplicated row fails its call.
    "forged rows, then exit": "import os\nfor i in range(200):\n"
    f'    print({ROW_PREFIX!r} + str(i) + \' ["ok",["i","5"]]\')\n'
    "import sys\nsys.stdout.flush()\nos._exit(0)\n",
    "forged rows beside real ones": "for i in range(200):\n"
    f'    print({ROW_PREFIX!r} + str(i) + \' ["ok",["i","5"]]\')\n'
    "def add(a, b):\n    return 5\n",
    "forged rows from atexit": "import atexit\n"
    f'atexit.register(lambda: [print({ROW_PREFIX!r} + str(i) + \' ["ok",["i","5"]]\') for i in range(200)])\n'
    "def add(a, b):\n    return 5 if (a, b) == (2, 3) else None\n",
    "a thread printing rows": "import threading, time\n"
    "def spam():\n    for _ in range(50):\n"
    f'        print({ROW_PREFIX!r} + \'0 ["ok",["i","1"]]\', flush=True)\n        time.sleep(0.001)\n'
    "threading.Thread(target=spam, daemon=True).start()\ndef add(a, b):\n    return 1\n",
    "__del__ that exits": "import os\nclass Bomb:\n    def __del__(self):\n        os._exit(0)\n"
    "def add(a, b):\n    Bomb()\n    return None\n",
    # Bounded decoding: oversized or deeply nested results are failures, never a hang or a crash here.
    "huge result": "def add(a, b):\n    return 'x' * 30_000_000\n",
    "deeply nested result": "def add(a, b):\n    x = []\n    for _ in range(100_000):\n        x = [x]\n    return x\n",
    "deeply nested forged row": f"print({ROW_PREFIX!r} + '0 [\"ok\",' + '[\"l\",[' * 50_000 + ']]' * 50_000 + ']')\n"
    "def add(a, b):\n    return None\n",
}


@pytest.mark.parametrize("kind", ["call", "humaneval"])
async def test_an_honest_add_passes(kind: str, humaneval: HumanEval) -> None:
    fb = await grade_add(kind, HONEST_ADD, humaneval)
    assert fb.passed is True and fb.score == 1.0, fb.text


@pytest.mark.parametrize("kind", ["call", "humaneval"])
@pytest.mark.parametrize("cheat", list(ADD_CHEATS))
async def test_a_cheating_add_fails(cheat: str, kind: str, humaneval: HumanEval) -> None:
    fb = await grade_add(kind, ADD_CHEATS[cheat], humaneval)
    assert fb.passed is False and fb.score < 1.0, (cheat, fb.text)


async def test_the_expected_values_are_nowhere_the_candidate_can_look(humaneval: HumanEval) -> None:
    # Control: what is in the process (here the input) is found, so the spy works. It runs in a pool of its
    # own: anything sent into one run of a pool is readable by later runs through the fork server's memory.
    shown = "hone-shown-" + secrets.token_hex(8)
    with Sandbox(workers=1) as own:
        spy_shown = SPY + "def add(a, b):\n    return _spy(rb'hone-shown-[0-9a-f]{16}')\n"
        echo = await CallTestVerifier([CallCase("echo", (shown, "x"), expected=shown)], "add", sandbox=own).verify(
            spy_shown
        )
    assert echo.passed is True, echo.text
    # An expected value never is.
    secret = "hone-secret-" + secrets.token_hex(8)
    spy = SPY + "def add(a, b):\n    return _spy(rb'hone-secret-[0-9a-f]{16}')\n"
    hidden = await CallTestVerifier([CallCase("secret", ("a", "b"), expected=secret)], "add").verify(spy)
    assert hidden.passed is False and "returned None" in (hidden.text or ""), hidden.text
    # HumanEval's hidden test (its assertions hold the expected values) is not in reach either...
    spy_add = SPY + "def add(a, b):\n    return a + b if _spy(rb'assert candidate\\(2, 3\\) == 5') else 0\n"
    fb = await grade_add("humaneval", spy_add, humaneval)
    assert fb.passed is False, fb.text
    # ...while the unsound UnitTestVerifier, which runs the test in the candidate's process, leaks it.
    task = humaneval.find_task("HumanEval/53")
    test = f"{task.target['test']}\ncheck(add)\n"
    with Sandbox(workers=1) as own:
        leaky = UnitTestVerifier([TestCase("check", test)], visibility="hidden", unsound_ok=True, sandbox=own)
        assert (await leaky.verify(spy_add)).passed is True


async def test_the_unsound_unit_test_verifier_really_is_forgeable() -> None:
    # Why UnitTestVerifier is public-only: the issue's `json.dumps` attack still passes a wrong `add` there.
    forge = "import json\n_d = json.dumps\njson.dumps = lambda row: _d([row[0], True, ''])\n"
    forge += "def add(a, b):\n    return 0\n"
    tests = [TestCase("t", "assert add(2, 3) == 5")]
    assert (await UnitTestVerifier(tests).verify(forge)).passed is True
    assert (await CallTestVerifier([CallCase("t", (2, 3), expected=5)], "add").verify(forge)).passed is False


MUTATING_TEST = """
def check(candidate):
    xs = [3, 1, 2]
    assert candidate(xs) == sorted(xs)
"""


async def test_mutating_the_arguments_changes_nothing_in_the_test() -> None:
    # In one process `candidate(xs) == sorted(xs)` passes if the candidate empties xs and returns [].
    verifier = RecordReplayVerifier(MUTATING_TEST, "my_sort", "def my_sort(xs):\n    return sorted(xs)\n")
    cheat = "def my_sort(xs):\n    xs.clear()\n    return []\n"
    assert (await verifier.verify(cheat)).passed is False
    assert (await verifier.verify("def my_sort(xs):\n    xs.sort()\n    return xs\n")).passed is True


async def test_exec_answer_cheats_fail() -> None:
    verifier = ExecAnswerVerifier(4242)
    assert (await verifier.verify("print(4200 + 42)")).passed is True
    # every number: only the last one counts
    assert (await verifier.verify("for i in range(5000):\n    print(i)\n")).passed is False
    # a flood whose truncation marker ("truncated at 1000000 bytes") would supply the number: status must be ok
    flood = await ExecAnswerVerifier(1_000_000).verify("print('x' * 3_000_000)")
    assert flood.passed is False and flood.evidence["status"] == "output_limit"  # type: ignore[index]
    # the right number, then an exit with an error status
    assert (await verifier.verify("import os\nprint(4242, flush=True)\nos._exit(1)")).passed is False
    # the expected answer is not in the program's reach
    secret = "hone-secret-" + secrets.token_hex(8)
    spy = SPY + "print(_spy(rb'hone-secret-[0-9a-f]{16}') or 'nothing')\n"
    assert (await ExecAnswerVerifier(secret, compare="text").verify(spy)).passed is False


PROPS = """
from hypothesis import given, strategies as st

@given(st.lists(st.integers()))
def prop_sorted(xs):
    assert candidate(xs) == sorted(xs)
"""

PROPERTY_CHEATS = {
    "replaces hypothesis": "import sys, types\nfake = types.ModuleType('hypothesis')\n"
    "fake.given = lambda *a, **k: (lambda f: (lambda *x, **y: None))\nsys.modules['hypothesis'] = fake\n"
    "import builtins\nbuiltins.AssertionError = KeyError\ndef my_sort(xs):\n    return xs\n",
    "always-true __eq__": "class Anything(list):\n    def __eq__(self, other):\n        return True\n"
    "def my_sort(xs):\n    return Anything()\n",
    "os._exit(0) in the call": "import os\ndef my_sort(xs):\n    os._exit(0)\n",
    "sys.exit in the call": "import sys\ndef my_sort(xs):\n    sys.exit(0)\n",
    "reads the properties": SPY + "def my_sort(xs):\n    return sorted(xs) if _spy(rb'def prop_[a-z_]+\\(') else xs\n",
}


async def test_an_honest_sort_holds_its_properties() -> None:
    fb = await PropertyVerifier(PROPS, "my_sort", max_examples=30).verify("def my_sort(xs):\n    return sorted(xs)\n")
    assert fb.passed is True, fb.text


@pytest.mark.parametrize("cheat", list(PROPERTY_CHEATS))
async def test_a_cheating_sort_fails_its_properties(cheat: str) -> None:
    fb = await PropertyVerifier(PROPS, "my_sort", max_examples=30, timeout_s=60).verify(PROPERTY_CHEATS[cheat])
    assert fb.passed is False, (cheat, fb.text)


TOLERANT_TEST = """
def check(candidate):
    assert candidate(16) == 4
    try:
        candidate(-1)
    except Exception:
        pass
    else:
        raise AssertionError("a negative input must raise")
"""


async def test_a_missing_result_fails_even_where_the_test_catches_exceptions() -> None:
    reference = "def isqrt(n):\n    if n < 0:\n        raise ValueError('negative')\n    return int(n ** 0.5)\n"
    verifier = RecordReplayVerifier(TOLERANT_TEST, "isqrt", reference)
    assert (await verifier.verify(reference)).passed is True
    # ends the process with status 0 where it should raise: no result for that call, which the test's
    # `except Exception` must not be able to take for the exception it expects
    cheat = "import os\ndef isqrt(n):\n    if n < 0:\n        os._exit(0)\n    return int(n ** 0.5)\n"
    fb = await verifier.verify(cheat)
    assert fb.passed is False and "no result" in (fb.text or ""), fb.text
    # a candidate's KeyboardInterrupt comes back as an ordinary exception, never raised as such here
    interrupt = "def isqrt(n):\n    raise KeyboardInterrupt\n"
    assert (await verifier.verify(interrupt)).passed is False


async def test_humaneval_public_feedback_cannot_be_forged_either(humaneval: HumanEval) -> None:
    # The docstring examples steer retries and test-time selection: they go through the call runner too.
    from hone.envs import assemble
    from hone.envs._humaneval import public_check

    task = humaneval.find_task("HumanEval/53")
    prompt, entry = str(task.input["prompt"]), str(task.input["entry_point"])
    check = public_check(task)
    assert check.sound and len(check.cases) == 2
    assert (await check.verify(assemble(prompt, HONEST_ADD, entry))).passed is True
    for cheat in ("rebinds json.dumps", "always-true __eq__", "forged rows, then exit"):
        assert (await check.verify(assemble(prompt, ADD_CHEATS[cheat], entry))).passed is False, cheat


ITERATING_TEST = """
def check(candidate):
    pairs = [((1, 2), 3), ((2, 2), 4), ((5, 5), 10)]
    assert all(map(lambda p: candidate(*p[0]) == p[1], pairs))
"""

ITERATING_PROPS = """
from hypothesis import given, strategies as st

@given(st.lists(st.integers(), min_size=1))
def prop_inc(xs):
    for got, x in zip(map(candidate, xs), xs):
        assert got == x + 1
"""


async def test_a_candidate_stop_iteration_does_not_end_the_tests_loops() -> None:
    # Raised as itself in trusted code, StopIteration would end `map` early: `all(map(...))` of nothing is True.
    verifier = RecordReplayVerifier(ITERATING_TEST, "add", HONEST_ADD)
    assert (await verifier.verify(HONEST_ADD)).passed is True
    for name in ("StopIteration", "StopAsyncIteration"):
        fb = await verifier.verify(f"def add(a, b):\n    raise {name}\n")
        assert fb.passed is False and "CandidateError" in (fb.text or ""), fb.text
    props = PropertyVerifier(ITERATING_PROPS, "inc", max_examples=10)
    assert (await props.verify("def inc(x):\n    return x + 1\n")).passed is True
    assert (await props.verify("def inc(x):\n    raise StopIteration\n")).passed is False


EXPECTS_VALUE_ERROR = """
def check(candidate):
    assert candidate(4) == 4
    try:
        candidate(-1)
    except ValueError:
        pass
    else:
        raise AssertionError("a negative input must raise ValueError")
"""


@pytest.mark.parametrize("bits", [14_000, 20_000, 40_000])
async def test_an_int_too_long_to_print_is_a_failure_not_a_crash_nor_a_value_error(bits: int) -> None:
    # str() of an int past CPython's 4300-digit limit raises ValueError: in the feedback text that crashed
    # grading, and inside the replayer the test took it for the ValueError it expects.
    from hone.feedback._plain import plain_repr

    assert plain_repr(1 << 20_000).startswith("<a int")
    reference = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    huge = f"def f(x):\n    return x if x >= 0 else 1 << {bits}\n"
    replayed = RecordReplayVerifier(EXPECTS_VALUE_ERROR, "f", reference)
    assert (await replayed.verify(reference)).passed is True
    fb = await replayed.verify(huge)
    assert fb.passed is False, fb.text
    fb = await CallTestVerifier([CallCase("neg", (-1,), expected=0)], "f").verify(huge)
    assert fb.passed is False, fb.text


CATCHING_PROPS = """
from hypothesis import given, strategies as st

@given(st.integers())
def prop_double(x):
    try:
        got = candidate(x)
    except@@CAUGHT@@:  # the property lets the candidate refuse some inputs
        return
    assert got == 2 * x
"""


@pytest.mark.parametrize("caught", [" Exception", ""])
@pytest.mark.parametrize(
    "cheat",
    [
        "def double(x):\n    return object()\n",
        "import os\ndef double(x):\n    os._exit(0)\n",
        "import time\ndef double(x):\n    time.sleep(100)\n",
    ],
    ids=["not plain data", "exits", "hangs"],
)
async def test_a_call_without_result_fails_a_property_that_catches_exceptions(caught: str, cheat: str) -> None:
    # A property may catch what the candidate raises; it must not be able to take "no result" for that.
    props = CATCHING_PROPS.replace("@@CAUGHT@@", caught)
    verifier = PropertyVerifier(props, "double", max_examples=20, timeout_s=30, call_timeout_s=1)
    assert (await verifier.verify("def double(x):\n    return 2 * x\n")).passed is True
    refusing = "def double(x):\n    if x < 0:\n        raise ValueError('no')\n    return 2 * x\n"
    assert (await verifier.verify(refusing)).passed is True  # a real exception, caught: allowed
    fb = await verifier.verify(cheat)
    assert fb.passed is False, fb.text
