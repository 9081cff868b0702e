"""The sandbox harness of built environments, run in the real sandbox: calls, state, batches, hostile input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hone.envs.build._harness import (
    BatchOutcome,
    batch_program,
    call_code,
    new_nonce,
    parse_batch,
    parse_outcome,
    parse_state,
    setup_code,
    state_code,
)
from hone.envs.build._spec import Backend, Call, state_digest
from hone.sandbox import PythonSession, default_sandbox

SOURCE = '''
def add(name, qty=1):
    """Adds qty of name to the stock."""
    if qty < 0:
        raise ValueError("qty must be >= 0")
    print("a tool that prints must not corrupt the protocol")
    stock = state.setdefault("stock", {})
    stock[name] = stock.get(name, 0) + qty
    return stock[name]

def get(name):
    return state.get("stock", {}).get(name)

def echo(text):
    return text

def hang():
    while True:
        pass

def sleepy():
    import time
    time.sleep(60)

def as_set():
    return {1, 2}

def nan():
    return float("nan")

def boom():
    raise KeyError("no such row")

def quits():
    raise SystemExit(3)

def huge():
    return "x" * 2_000_000

def rebind():
    global state
    state = {"replaced": True}
    return None
'''
BACKEND = Backend(source=SOURCE, state={"stock": {"apple": 2}})

HOSTILE = [
    "it's",
    'say "hi"',
    "'''",
    '"""); __import__("os").system("touch /tmp/pwned"); ("',
    "\\",
    "\\'",
    "line\nbreak\r\n",
    "__import__('os').getcwd()",
    "{nonce}",
    "\x00nul",
    "ünï©ødé ✓",
]


@pytest.fixture(scope="module")
def session() -> Iterator[PythonSession]:
    sess = default_sandbox().session()
    result = sess.run(setup_code(BACKEND), timeout_s=30)
    assert result.ok, result.stderr
    yield sess
    sess.close()


def _call(sess: PythonSession, name: str, arguments: dict[str, Any], timeout_s: float | None = 5.0) -> Any:
    nonce = new_nonce()
    result = sess.run(call_code(name, arguments, nonce, timeout_s=timeout_s), timeout_s=60)
    return parse_outcome(result.stdout, nonce)


def test_calls_read_and_write_state_and_prints_are_captured(session: PythonSession) -> None:
    nonce = new_nonce()
    result = session.run(call_code("add", {"name": "pear", "qty": 3}, nonce, timeout_s=5), timeout_s=60)
    assert "must not corrupt" not in result.stdout  # the tool's print was captured
    outcome = parse_outcome(result.stdout, nonce)
    assert (outcome.ok, outcome.result, outcome.kind) == (True, 3, "ok")
    assert _call(session, "get", {"name": "pear"}).result == 3
    assert _call(session, "get", {"name": "apple"}).result == 2


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_arguments_travel_as_data(session: PythonSession, text: str) -> None:
    outcome = _call(session, "echo", {"text": text})
    assert outcome.ok and outcome.result == text


def test_hostile_argument_names_and_tool_names_do_not_execute(session: PythonSession) -> None:
    outcome = _call(session, "echo", {'text"); print("x': 1})
    assert outcome.kind == "exception"  # an unexpected keyword, not code
    outcome = _call(session, "__import__('os').getcwd", {})
    assert outcome.kind == "exception" and "no tool" in (outcome.error or "")
    assert _call(session, "_hone_call", {}).kind == "exception"  # private names are not tools


def test_failures_by_kind(session: PythonSession) -> None:
    bad = _call(session, "add", {"name": "x", "qty": -1})
    assert (bad.ok, bad.kind, bad.error) == (False, "value_error", "qty must be >= 0")
    assert _call(session, "boom", {}).kind == "exception"
    assert "KeyError" in (_call(session, "boom", {}).error or "")
    assert _call(session, "quits", {}).kind == "exception"
    assert _call(session, "as_set", {}).kind == "not_json"
    assert _call(session, "nan", {}).kind == "not_json"
    too_big = _call(session, "huge", {})
    assert too_big.kind == "exception" and "too large" in (too_big.error or "")
    assert session.alive


def test_a_hanging_tool_is_cut_and_the_session_goes_on(session: PythonSession) -> None:
    for name in ("hang", "sleepy"):
        outcome = _call(session, name, {}, timeout_s=0.5)
        assert outcome.kind == "timeout", outcome
    assert session.alive
    assert _call(session, "echo", {"text": "still here"}).result == "still here"


def test_state_digest_matches_the_host_canonical_form() -> None:
    with default_sandbox().session() as sess:
        assert sess.run(setup_code(BACKEND), timeout_s=30).ok
        _call(sess, "add", {"name": "ünï", "qty": 1})
        nonce = new_nonce()
        outcome = parse_state(sess.run(state_code(nonce), timeout_s=30).stdout, nonce)
        assert outcome.ok
        assert outcome.state == {"stock": {"apple": 2, "ünï": 1}}
        assert outcome.digest == state_digest(outcome.state)
        # A backend that rebinds the global `state` is read through the rebinding.
        _call(sess, "rebind", {})
        nonce = new_nonce()
        assert parse_state(sess.run(state_code(nonce), timeout_s=30).stdout, nonce).state == {"replaced": True}


def test_untrusted_output_parsing() -> None:
    nonce = new_nonce()
    other = new_nonce()
    assert parse_outcome("", nonce).kind == "missing"
    assert parse_outcome(f'{other} {{"ok": true, "kind": "ok", "result": 1}}\n', nonce).kind == "missing"
    assert parse_outcome(f'{nonce} {{"ok": true, "kind": "ok", "result": 1}}\n', nonce).result == 1
    assert parse_outcome(f"{nonce} not json\n", nonce).kind == "not_json"
    assert parse_outcome(f'{nonce} {{"ok": "yes", "kind": "ok"}}\n', nonce).kind == "not_json"
    assert parse_outcome(f'{nonce} {{"ok": false, "kind": "weird"}}\n', nonce).kind == "not_json"
    long_line = f'{nonce} {{"ok": true, "kind": "ok", "result": "{"x" * 1_100_000}"}}'
    assert parse_outcome(long_line, nonce).kind == "missing"
    # Noise without the nonce around the real line is ignored.
    ok = '{"ok": true, "kind": "ok", "result": %d}'
    noisy = f"junk\n{nonce}x {ok % 9}\n{nonce} {ok % 2}\n"
    assert parse_outcome(noisy, nonce).result == 2
    with pytest.raises(ValueError):
        call_code("echo", {}, "not a nonce")
    with pytest.raises(ValueError):
        call_code("echo", {"x": object()}, nonce)


def test_batch_runs_each_task_from_a_fresh_state() -> None:
    refs = [
        [[Call(name="add", arguments={"name": "apple", "qty": 1})], [Call(name="get", arguments={"name": "apple"})]],
        [[Call(name="add", arguments={"name": "apple", "qty": 5}), Call(name="add", arguments={"name": "kiwi"})]],
        [[Call(name="add", arguments={"name": "apple", "qty": -1})]],
        [[Call(name="get", arguments={"name": "apple"})], [Call(name="hang")]],
        [[Call(name="as_set")]],
        [],
    ]
    nonce = new_nonce()
    result = default_sandbox().run_sync(batch_program(BACKEND, refs, nonce, timeout_s=0.5), timeout_s=60)
    assert result.ok, result.stderr
    out = parse_batch(result.stdout, nonce, len(refs))
    assert [o.index for o in out] == list(range(len(refs)))
    assert out[0].results == [[3], [3]] and out[0].state == {"stock": {"apple": 3}}
    assert out[0].final_state == state_digest({"stock": {"apple": 3}})
    assert out[1].results == [[7, 1]]  # fresh copy: apple back at 2 before the +5
    assert out[2].error is not None and "value_error" in out[2].error and out[2].failed_step == 0
    assert out[3].error is not None and "timeout" in out[3].error and out[3].failed_step == 1
    assert out[4].error is not None and "not_json" in out[4].error
    assert out[5].results == [] and out[5].final_state == state_digest(BACKEND.state)


def test_batch_with_a_broken_source_and_missing_lines() -> None:
    nonce = new_nonce()
    broken = Backend(source="raise RuntimeError('bad module')\n", state={})
    result = default_sandbox().run_sync(batch_program(broken, [[], []], nonce), timeout_s=60)
    out = parse_batch(result.stdout, nonce, 2)
    assert all(o.error and "backend source failed" in o.error for o in out)
    # A truncated run: only task 0 printed; task 1 is reported missing, junk is ignored.
    line = json.dumps({"i": 0, "results": [], "error": None, "failed_step": None, "final_state": "x", "state": "{}"})
    parsed = parse_batch(f'{nonce} {line}\n{nonce} [1]\n{nonce} {{"i": 7}}\n', nonce, 2)
    assert parsed[0] == BatchOutcome(0, [], None, None, state_digest({}), {})
    assert parsed[1].results is None and "no result" in (parsed[1].error or "")
