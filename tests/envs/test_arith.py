from __future__ import annotations

import re

import pytest
from _env_driver import calculator_agent, drive

from hone.core import ConfigError, EnvError, GradeError, Message, Task, Trajectory
from hone.envs import Arith, Environment, evaluate_expression, make_env
from hone.envs._arith import SPLITS, make_task, owner
from hone.models import Scripted, call_tool

NUMBER = re.compile(r"\d+")


def by_level(tasks: list[Task], level: int) -> list[Task]:
    return [t for t in tasks if t.meta["level"] == level]


def test_protocol_and_ids() -> None:
    env = Arith()
    assert isinstance(env, Environment)
    assert env.splits() == ["train", "test", "heldout"]
    tasks = env.tasks("test", n=10)
    assert [t.id for t in tasks[:3]] == ["arith-test-L1-0000", "arith-test-L2-0000", "arith-test-L3-0000"]
    assert [t.meta["level"] for t in tasks] == [1, 2, 3, 4, 5] * 2  # levels cycle evenly
    assert tasks[0].subset == "L1" and tasks[0].meta["subset"] == "L1"
    assert env.tasks("test", n=3, seed=7)[0].id == "arith-test-s7-L1-0000"
    assert len(env.tasks("train")) == 5 * 50  # n_per_level default


def test_tasks_are_deterministic_per_seed() -> None:
    a, b = Arith().tasks("test", n=40), Arith().tasks("test", n=40)
    assert [t.model_dump() for t in a] == [t.model_dump() for t in b]
    other = Arith().tasks("test", n=40, seed=1)
    assert [t.input for t in a] != [t.input for t in other]
    assert Arith().tasks("test", n=10) == a[:10]  # a prefix does not depend on n


def test_splits_are_disjoint_and_lists_have_no_duplicates() -> None:
    env = Arith()
    questions = {split: [t.input["question"] for t in env.tasks(split, n=300)] for split in SPLITS}
    for split, qs in questions.items():
        assert len(set(qs)) == len(qs)
        assert all(owner(q.removeprefix("Compute: ")) == split for q in qs if q.startswith("Compute: "))
    assert not set(questions["train"]) & set(questions["test"])
    assert not set(questions["train"]) & set(questions["heldout"])
    assert not set(questions["test"]) & set(questions["heldout"])


def test_level_characteristics() -> None:
    tasks = Arith().tasks("test", n=200)
    for level, (low, high) in {1: (2, 2), 2: (3, 3), 3: (4, 4), 4: (5, 6), 5: (7, 9)}.items():
        expressions = [t.input["expression"] for t in by_level(tasks, level) if t.meta["kind"] == "expression"]
        assert expressions
        for text in expressions:
            assert low <= len(NUMBER.findall(text)) <= high, (level, text)
    l1 = [t.input["expression"] for t in by_level(tasks, 1)]
    assert all(set(e) <= set("0123456789 +-") for e in l1)
    assert all(int(n) <= 50 for e in l1 for n in NUMBER.findall(e))
    l2 = [t.input["expression"] for t in by_level(tasks, 2)]
    assert all("*" in e and "(" not in e for e in l2)
    assert all(10 <= int(n) <= 99 for e in l2 for n in NUMBER.findall(e))
    assert all("(" in t.input["expression"] and "/" in t.input["expression"] for t in by_level(tasks, 3))
    for level in (4, 5):
        kinds = {t.meta["kind"] for t in by_level(tasks, level)}
        assert kinds == {"expression", "word"}
    assert all(t.meta["kind"] == "expression" for t in tasks if t.meta["level"] <= 3)
    words = [t for t in tasks if t.meta["kind"] == "word"]
    assert all("expression" not in t.input and not t.input["question"].startswith("Compute") for t in words)
    assert all(isinstance(t.target, int) and t.target > 0 for t in words)


def test_nested_parentheses_at_levels_4_and_5() -> None:
    def depth(text: str) -> int:
        d = best = 0
        for ch in text:
            d += (ch == "(") - (ch == ")")
            best = max(best, d)
        return best

    tasks = Arith(levels="4-5").tasks("train", n=60)
    assert all(depth(t.input["expression"]) >= 2 for t in tasks if "expression" in t.input)


def test_targets_equal_the_calculator_evaluation() -> None:
    tasks = [t for split in SPLITS for t in Arith().tasks(split, n=150)]
    checked = 0
    for task in tasks:
        if "expression" in task.input:
            assert task.input["question"] == f"Compute: {task.input['expression']}"
            assert evaluate_expression(task.input["expression"]) == task.target
            assert isinstance(task.target, int)
            checked += 1
    assert checked > 300


@pytest.mark.parametrize(
    ("levels", "expected"), [("3", [3]), ("2-4", [2, 3, 4]), ([5, 4], [4, 5]), ("L5", [5]), (2, [2]), ("1,3", [1, 3])]
)
def test_levels_option(levels: object, expected: list[int]) -> None:
    env = Arith(levels=levels)  # type: ignore[arg-type]
    assert env.levels == expected
    assert {t.meta["level"] for t in env.tasks("test", n=10)} == set(expected)


@pytest.mark.parametrize("levels", ["0", "6", "1-9", "three", ""])
def test_bad_levels_are_config_errors(levels: str) -> None:
    with pytest.raises(ConfigError, match="levels"):
        Arith(levels=levels)


def test_options_accept_strings_and_reject_bad_values() -> None:
    assert len(make_env("arith", levels="1", n_per_level="3").tasks("test")) == 3  # text from the CLI
    assert len(Arith(levels=[1], n_per_level=3).tasks("test")) == 3  # typed values from Python
    with pytest.raises(ConfigError, match="n_per_level='many'"):
        make_env("arith", n_per_level="many")
    with pytest.raises(ConfigError, match="n_per_level=0: input should be greater than or equal to 1"):
        Arith(n_per_level=0)
    with pytest.raises(ConfigError, match="tools='shell': input should be 'calculator', 'python'"):
        Arith(tools="shell")
    with pytest.raises(ConfigError, match="choose one python mode"):
        Arith(tools="python,python-session")
    with pytest.raises(ConfigError, match="unknown split"):
        Arith().tasks("validation", n=1)


async def test_prompt_format() -> None:
    env = Arith(levels="3")
    task = env.tasks("test", n=1)[0]
    reset = await env.clone().reset(task)
    system, user = reset.messages
    assert system.role == "system" and "calculator" in system.text and '"The answer is N."' in system.text
    assert re.fullmatch(r"Compute: [0-9 +\-*/()]+", user.text)
    assert [t.name for t in reset.tools] == ["calculator"]
    no_tools = await Arith(tools="none").reset(task)
    assert no_tools.tools == [] and "calculator" not in no_tools.messages[0].text


async def test_calculator_episode_grades_correct_for_every_level() -> None:
    env = Arith(levels="1-5")
    tasks = [t for t in env.tasks("test", n=30) if "expression" in t.input]
    for task in tasks:
        tr, results = await drive(env, Scripted(calculator_agent), task)
        assert results[0].observations[0].role == "tool" and results[0].observations[0].content == str(task.target)
        assert results[0].done is False and results[-1].done is True
        assert tr.answer == str(task.target)
        [fb] = tr.feedback
        assert (fb.source, fb.name, fb.visibility, fb.passed, fb.score) == (
            "verifier",
            "exact_match",
            "hidden",
            True,
            1.0,
        )
        assert fb.evidence == {"expected": task.target, "got": str(task.target)}
        assert tr.passed


async def test_wrong_answer_grades_zero() -> None:
    env = Arith(levels="2")
    task = env.tasks("test", n=1)[0]
    tr, _ = await drive(env, Scripted([f"The answer is {task.target + 1}."]), task)
    [fb] = tr.feedback
    assert fb.score == 0.0 and fb.passed is False and not tr.passed
    assert fb.text == f"expected {task.target}, got {task.target + 1}"
    tr, _ = await drive(env, Scripted(["I cannot tell."]), task)
    assert tr.answer is None and tr.feedback[0].passed is False and "no answer" in (tr.feedback[0].text or "")


async def test_failing_tool_calls_become_observations_not_exceptions() -> None:
    env = Arith(levels="1").clone()
    await env.reset(env.tasks("test", n=1)[0])
    msg = Message.assistant(
        None,
        [
            call_tool("search", {"q": "x"}, call_id="c1").tool_calls[0],  # type: ignore[index]
            call_tool("calculator", '{"expression": "1 +', call_id="c2").tool_calls[0],  # type: ignore[index]
            call_tool("calculator", {"expr": "1"}, call_id="c3").tool_calls[0],  # type: ignore[index]
            call_tool("calculator", {"expression": "1 / 0"}, call_id="c4").tool_calls[0],  # type: ignore[index]
            call_tool("calculator", {"expression": "2 + 2"}, call_id="c5").tool_calls[0],  # type: ignore[index]
        ],
    )
    result = await env.step(msg)
    assert not result.done and result.answer is None
    assert [o.tool_call_id for o in result.observations] == ["c1", "c2", "c3", "c4", "c5"]
    assert [o.name for o in result.observations] == ["search", "calculator", "calculator", "calculator", "calculator"]
    contents = [o.text for o in result.observations]
    assert contents[0] == "error: unknown tool 'search'; available tools: calculator"
    assert contents[1].startswith("error: calculator: arguments are not a valid JSON object (invalid JSON")
    assert contents[2].startswith("error: calculator: invalid arguments: missing argument 'expression'")
    assert "unexpected argument 'expr'" in contents[2]
    assert contents[3] == "error: calculator: division by zero"
    assert contents[4] == "4"
    # protocol errors are tool errors; the calculator reporting bad input is ordinary output
    assert len(result.tool_errors) == 3 and all(e.type == "ToolError" for e in result.tool_errors)
    assert result.tool_errors[1].raw == '{"expression": "1 +'
    assert result.tool_errors[2].raw == '{"expr": "1"}'
    assert result.feedback == []


async def test_step_before_reset_and_after_done_raise() -> None:
    env = Arith()
    with pytest.raises(EnvError, match="before reset"):
        await env.step(Message.assistant("The answer is 1."))
    await env.reset(env.tasks("test", n=1)[0])
    assert (await env.step(Message.assistant("The answer is 1."))).done
    with pytest.raises(EnvError, match="after the episode ended"):
        await env.step(Message.assistant("The answer is 2."))


async def test_grading_a_stored_trajectory_in_a_fresh_instance() -> None:
    env = Arith(levels="4")
    task = env.tasks("heldout", n=3, seed=5)[2]
    tr, _ = await drive(env, Scripted([f"So the answer is {task.target}."]), task)
    stored = Trajectory.model_validate_json(tr.model_dump_json())
    fresh = Arith(levels="1")  # other options, never reset, never listed tasks
    [fb] = await fresh.grade(stored)
    assert fb.passed is True and fb.evidence == {"expected": task.target, "got": str(task.target)}
    stored.answer = None  # an answer missing from the record is re-extracted from the final message
    assert (await fresh.grade(stored))[0].passed is True


async def test_grading_unknown_ids_raises_grade_error() -> None:
    for task_id in ("arith-dev-L1-0000", "arith-test-L9-0001", "gsm8k-3"):
        with pytest.raises(GradeError, match="not an arith task id"):
            await Arith().grade(Trajectory(task_id=task_id, env="arith", model="m", answer="1"))


async def test_clone_has_same_config_and_no_episode_state() -> None:
    env = Arith(levels="2-3", n_per_level=4)
    task = env.tasks("test", n=1)[0]
    await env.reset(task)
    twin = env.clone()
    assert twin is not env and twin.levels == [2, 3] and twin.n_per_level == 4 and twin.tools == env.tools
    with pytest.raises(EnvError, match="before reset"):
        await twin.step(Message.assistant("The answer is 1."))
    assert (await env.step(Message.assistant(f"The answer is {task.target}."))).answer == str(task.target)


def test_make_task_matches_listing() -> None:
    listed = Arith(levels="5").tasks("train", n=3, seed=2)
    assert make_task("train", 5, 2, seed=2) == listed[2]


@pytest.mark.parametrize("target", [12_345_678, 1_234_567_891, 98_765_432_109, 123_456_789_012_345, -40_000_000_001])
async def test_grading_is_exact_even_for_big_numbers(target: int) -> None:
    """Off by one is wrong at any size: a relative tolerance of 1e-9 would pass target + 1 above 1e9."""
    env = Arith(levels="1")
    task = env.tasks("test", n=1)[0].model_copy(update={"target": target})
    assert env.grade_answer(task, str(target))[0].passed
    assert env.grade_answer(task, f"{target:,}")[0].passed  # 12,345,678 is the same number
    for off in (target + 1, target - 1):
        assert not env.grade_answer(task, str(off))[0].passed, off


def test_some_level_5_targets_are_above_a_billion() -> None:
    """The case above is not hypothetical: level 5 has such targets, where tolerances decide grading."""
    big = [t for t in Arith(levels="5").tasks("test", n=200) if abs(float(t.target)) >= 1e9]
    assert big
