"""Verification in the real sandbox: references run batched, failures dropped by reason, answers rendered."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest

from hone.envs.build import Backend, BuiltTask, Call, render_answer, state_digest
from hone.envs.build._verify import execute, verify_tasks
from hone.sandbox import Sandbox

SOURCE = """
import os, time

def put(key, value):
    state["items"][key] = value
    return value

def get(key):
    if key not in state["items"]:
        raise ValueError("no item %s" % key)
    return state["items"][key]

def record(key):
    return {"key": key, "stored": state["items"].get(key), "seen": True}

def crash():
    raise KeyError("boom")

def hang():
    while True:
        pass

def leave():
    os._exit(3)

def weird():
    return {1, 2}
"""
BACKEND = Backend(source=SOURCE, state={"items": {"a": 1, "b": "two"}})


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout_s=60) as sb:
        yield sb


def _task(i: int, calls: list[list[tuple[str, dict[str, Any]]]], prompt: str | None = None) -> BuiltTask:
    reference = [[Call(name=n, arguments=a) for n, a in step] for step in calls]
    return BuiltTask(
        id=f"t{i}", scenario="s", level=1, prompt=prompt or f"task {i}", offered=["get"], reference=reference
    )


def _expected_state(*puts: tuple[str, Any]) -> str:
    state = copy.deepcopy(BACKEND.state)
    for key, value in puts:
        state["items"][key] = value
    return state_digest(state)


def test_render_answer_rules() -> None:
    assert render_answer(3) == "3" and render_answer(2.0) == "2" and render_answer(2.5) == "2.5"
    assert render_answer(True) == "true" and render_answer(" Paris ") == "Paris"
    assert render_answer({"answer": 7, "other": 1}) == "7" and render_answer({"only": "x"}) == "x"
    assert render_answer(["a", "b"]) == "a, b"
    for refused in (None, {"a": 1, "b": 2}, [1] * 6, [{"a": 1}], {"value": [1]}, "", "x" * 300):
        assert render_answer(refused) is None


def test_verify_keeps_good_references_and_drops_failures_by_reason(sandbox: Sandbox) -> None:
    planned = [
        (_task(0, [[("put", {"key": "c", "value": 3})], [("get", {"key": "c"})]]), True),
        (_task(1, [[("get", {"key": "nope"})]]), True),  # ValueError
        (_task(2, [[("crash", {})]]), False),  # another exception
        (_task(3, [[("get", {"key": "b"})]]), True),
        (_task(4, [[("record", {"key": "a"})]]), True),  # a record has no short answer
        (_task(5, [[("weird", {})]]), False),  # not JSON
        (_task(6, [[("get", {"key": "a"})]], prompt="task 0"), True),  # the same prompt again
        (_task(7, [[("put", {"key": "a", "value": 9}), ("get", {"key": "b"})]]), False),
        (_task(8, []), False),  # level 6: no call, the initial state
    ]
    tasks, dropped = asyncio.run(verify_tasks(sandbox, planned, {"s": BACKEND}, chunk=4))
    assert dropped == {"value_error": 1, "exception": 1, "no_short_answer": 1, "not_json": 1, "duplicate_prompt": 1}
    by_id = {t.id: t for t in tasks}
    assert sorted(by_id) == ["t0", "t3", "t7", "t8"]
    assert by_id["t0"].results == [[3], [3]] and by_id["t0"].answer == "3"
    assert by_id["t0"].final_state == _expected_state(("c", 3))  # each task from a fresh initial state
    assert by_id["t3"].answer == "two" and by_id["t3"].final_state == _expected_state()
    assert by_id["t7"].answer is None and by_id["t7"].final_state == _expected_state(("a", 9))
    assert by_id["t8"].results == [] and by_id["t8"].final_state == _expected_state()


def test_a_hanging_or_exiting_tool_loses_only_its_own_task(sandbox: Sandbox) -> None:
    refs = [[[Call(name="get", arguments={"key": "a"})]]] * 3
    refs += [[[Call(name="hang")]], [[Call(name="get", arguments={"key": "b"})]], [[Call(name="leave")]]]
    refs += [[[Call(name="get", arguments={"key": "a"})]]] * 2
    [outcomes] = asyncio.run(execute(sandbox, [(BACKEND, refs)], chunk=100, call_timeout_s=0.5))
    reasons = [o.reason for o in outcomes]
    assert reasons == [None, None, None, "timeout", None, "crashed", None, None]
    assert outcomes[4].results == [["two"]] and outcomes[7].results == [[1]]


def test_many_tasks_over_many_programs_keep_their_order(sandbox: Sandbox) -> None:
    refs = [[[Call(name="put", arguments={"key": f"k{i}", "value": i})]] for i in range(57)]
    done: list[int] = []
    [outcomes] = asyncio.run(execute(sandbox, [(BACKEND, refs)], chunk=10, progress=done.append))
    assert [o.results for o in outcomes] == [[[i]] for i in range(57)]
    assert [o.final_state for o in outcomes] == [_expected_state((f"k{i}", i)) for i in range(57)]
    assert sum(done) == 57 and len(done) == 6  # six programs of <= 10 tasks


def test_output_over_the_limit_is_rerun_in_smaller_programs(sandbox: Sandbox) -> None:
    big = Backend(source=SOURCE, state={"items": {"pad": "x" * 20_000}})  # every result line carries the state
    refs = [[[Call(name="put", arguments={"key": f"k{i}", "value": i})]] for i in range(80)]
    with Sandbox(workers=2, timeout_s=60, max_output_bytes=600_000) as small:
        [outcomes] = asyncio.run(execute(small, [(big, refs)], chunk=80))
    assert [o.reason for o in outcomes] == [None] * 80 and [o.results for o in outcomes] == [[[i]] for i in range(80)]
