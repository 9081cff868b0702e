"""BuiltEnv over a hand-written built directory, episodes run in the real sandbox."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from _buildbank import bank_source

from hone.core import ConfigError, Message, Step, ToolCall, Trajectory
from hone.envs import Environment, StepResult
from hone.envs.build import build
from hone.envs.build._env import BuiltEnv
from hone.envs.build._envkit import NOT_SPECIFIC, answers_match, final_answer, schema_error
from hone.models import Scripted
from hone.testing._builtenv import write_shop_env


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shop_env(tmp_path_factory.mktemp("shop"))


@pytest.fixture
def env(shop_dir: Path) -> BuiltEnv:
    return BuiltEnv.load(shop_dir, call_timeout_s=1.0)


def call(name: str, call_id: str = "c0", **arguments: object) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=dict(arguments))


def calls(*tool_calls: ToolCall) -> Message:
    return Message.assistant(None, list(tool_calls))


async def drive(env: BuiltEnv, task_id: str, replies: Sequence[Message | str]) -> tuple[Trajectory, list[StepResult]]:
    """One episode as the Runner runs it (clone, reset, steps, aclose, then grade) with scripted replies."""
    traj, results, _ = await drive_on(env.clone(), task_id, replies)
    return traj, results


async def drive_on(
    episode: BuiltEnv, task_id: str, replies: Sequence[Message | str]
) -> tuple[Trajectory, list[StepResult], BuiltEnv]:
    env = episode
    task = next(t for s in env.splits() for t in env.tasks(s) if t.id == task_id)
    model = Scripted(list(replies))
    reset = await episode.reset(task)
    messages = list(reset.messages)
    steps: list[Step] = []
    results: list[StepResult] = []
    answer = None
    for _ in range(len(replies)):
        made = await model.generate(messages, reset.tools)
        result = await episode.step(made.message)
        results.append(result)
        steps.append(Step(call=made, observations=result.observations))
        messages += [made.message, *result.observations]
        if result.done:
            answer = result.answer
            break
    await episode.aclose()
    traj = Trajectory(task_id=task.id, env=env.name, model="scripted", prompt=reset.messages, tools=reset.tools)
    traj.steps, traj.answer = steps, answer
    traj.feedback = await episode.grade(traj)
    return traj, results, episode


def verdict(traj: Trajectory) -> tuple[bool, float | None]:
    by_name = {f.name: f for f in traj.feedback}
    assert by_name["completeness"].visibility == "hidden" and by_name["tool_calls"].passed is None
    return traj.passed, by_name["tool_calls"].score


def test_loads_tasks_splits_and_meta(env: BuiltEnv) -> None:
    assert isinstance(env, Environment)
    assert env.name == "shop" and len(env.version) == 12
    assert env.splits() == ["train", "test"]
    test = env.tasks("test")
    assert {t.id for t in test} == {"shop-L1", "shop-L2", "shop-L4", "shop-L5", "shop-L6"}
    assert [t.meta["level"] for t in test] == [1, 2, 4, 5, 6]  # dealt level by level
    assert env.tasks("test", seed=3) == env.tasks("test", seed=3)
    assert [t.id for t in env.tasks("test", n=2)] == ["shop-L1", "shop-L2"]
    first = test[0]
    assert first.input == {"prompt": "How many apples are in stock?"}
    assert first.meta == {"level": 1, "subset": "single", "scenario": "shop", "heldout": False}
    assert env.tasks("heldout") == []
    with pytest.raises(ConfigError, match="unknown split"):
        env.tasks("dev")


async def test_reset_offers_the_task_tools_in_order(env: BuiltEnv) -> None:
    task = next(t for t in env.tasks("test") if t.id == "shop-L2")
    reset = await env.clone().reset(task)
    assert [m.role for m in reset.messages] == ["system", "user"]
    assert "Answer: <value>" in (reset.messages[0].content or "")
    assert reset.messages[1].content == "What does one pear cost?"
    assert [t.name for t in reset.tools] == ["get_weather", "get_price", "get_stock"]
    assert reset.tools[1].parameters["required"] == ["item"]


@pytest.mark.parametrize(
    ("task_id", "replies"),
    [
        ("shop-L1", [calls(call("get_stock", item="apple")), "There are 3.\nAnswer: 3"]),
        ("shop-L1b", [calls(call("add_stock", item="pear", qty=4)), "Done."]),
        ("shop-L1n", [calls(call("set_price", item="apple", price=1.5)), "Done."]),
        ("shop-L2", [calls(call("get_price", item="pear")), "Answer: 2"]),
        (
            "shop-L3",
            [calls(call("add_stock", "a", item="pear", qty=2), call("add_stock", "b", item="apple", qty=1)), "Done."],
        ),
        (
            "shop-L3r",
            [calls(call("get_stock", "a", item="pear"), call("get_stock", "b", item="apple")), "3 apples, 5 pears."],
        ),
        ("shop-L4", [calls(call("get_stock", item="apple")), calls(call("add_stock", item="pear", qty=3)), "Done."]),
        ("shop-L5", ["How many units (quantity) should I add?", calls(call("add_stock", item="apple", qty=6)), "Ok."]),
        ("shop-L6", ["I have no tool for that: Paris is the capital of France."]),
    ],
)
async def test_the_reference_behaviour_passes_every_level(
    env: BuiltEnv, task_id: str, replies: list[Message | str]
) -> None:
    traj, results = await drive(env, task_id, replies)
    assert verdict(traj) == (True, 1.0), traj.feedback
    assert not any(r.tool_errors for r in results)


async def test_level_5_user_answers_named_facts_only(env: BuiltEnv) -> None:
    traj, results = await drive(env, "shop-L5", ["Can you help?", "Which quantity?", "Answer: ok"])
    assert results[0].observations[0].role == "user" and results[0].observations[0].content == NOT_SPECIFIC
    assert results[1].observations[0].content == "The qty is 6."
    assert results[2].done
    assert verdict(traj)[0] is False  # it never added the apples


async def test_level_5_user_answers_at_most_three_times(env: BuiltEnv) -> None:
    _, results = await drive(env, "shop-L5", ["Hm?", "What?", "Which?", "Anything?"])
    assert [r.done for r in results] == [False, False, False, True]


async def test_schema_errors_are_public_feedback_and_never_run(env: BuiltEnv) -> None:
    broken = [
        call("add_stock", "a", item="pear", qty="4"),  # wrong type
        call("add_stock", "b", item="pear"),  # missing argument
        call("add_stock", "c", item="pear", qty=0),  # below the minimum
        call("add_stock", "d", item="pear", qty=4, note="x"),  # unknown argument
        call("get_weather", "e", city="Oslo"),  # not offered in this task
        ToolCall(id="f", name="add_stock", arguments_raw="{qty: 4", parse_error="invalid JSON"),
        call("add_stock", "g", item="p" * 200_000, qty=4),  # too large to send
        call("add_stock", "h", item="pear", qty=float("nan")),  # not plain JSON
    ]
    traj, results = await drive(env, "shop-L1b", [calls(*broken), "Done."])
    first = results[0]
    assert len(first.observations) == len(first.tool_errors) == 8
    texts = [o.content or "" for o in first.observations]
    assert all(t.startswith("error: ") for t in texts) and all(o.error for o in first.observations)
    assert "should be integer, got string" in texts[0]
    assert "missing required argument 'qty'" in texts[1]
    assert "must be >= 1" in texts[2]
    assert "unknown argument 'note'" in texts[3]
    assert "unknown tool 'get_weather'" in texts[4]
    assert "not a valid JSON object" in texts[5]
    assert "characters (at most 100000)" in texts[6]
    assert texts[7].startswith("error: add_stock: ")
    assert verdict(traj)[0] is False  # nothing ran: the pears were never added


async def test_a_tool_refusing_input_is_feedback_without_a_protocol_error(env: BuiltEnv) -> None:
    _, results = await drive(env, "shop-L1", [calls(call("get_stock", item="plum")), "Answer: 0"])
    obs = results[0].observations[0]
    assert obs.content == "error: unknown item 'plum'" and obs.error == "unknown item 'plum'"
    assert results[0].tool_errors == []


async def test_a_hanging_tool_is_cut_and_the_episode_goes_on(env: BuiltEnv) -> None:
    traj, results = await drive(
        env, "shop-L6", [calls(call("hang_forever")), calls(call("get_stock", item="apple")), "Answer: Paris"]
    )
    assert "ran past its time limit" in (results[0].observations[0].content or "")
    assert results[0].tool_errors and results[0].tool_errors[0].type == "ToolError"
    assert results[1].observations[0].content == "3"  # the same interpreter answers the next call
    assert verdict(traj)[0] is False  # level 6: calling a tool at all fails


async def test_a_crashed_backend_gives_clear_errors_and_the_run_goes_on(env: BuiltEnv) -> None:
    traj, results = await drive(
        env, "shop-L6", [calls(call("crash_backend")), calls(call("get_stock", item="apple")), "Paris"]
    )
    assert "ended the tool backend" in (results[0].observations[0].content or "")
    later = results[1].observations[0].content or ""
    assert later.startswith("error: ") and "no tool can run in this episode" in later
    assert traj.feedback and traj.passed is False


async def test_arguments_carrying_code_are_data(env: BuiltEnv) -> None:
    payloads = [
        "x'); state['stock']['apple'] = 100; ('",
        'x"""); __import__("os")._exit(1); ("""',
        "__import__('os')._exit(1)",
        "\\'; state.clear(); '",
    ]
    tool_calls = [call("get_stock", f"p{i}", item=p) for i, p in enumerate(payloads)]
    traj, results = await drive(
        env, "shop-L1", [calls(*tool_calls), calls(call("get_stock", item="apple")), "Answer: 3"]
    )
    assert all((o.content or "").startswith("error: unknown item") for o in results[0].observations)
    assert results[1].observations[0].content == "3"  # the state is untouched and the interpreter alive
    assert traj.passed


async def test_listing_candidate_answers_does_not_pass(env: BuiltEnv) -> None:
    for reply in ("Answer: 2, 3, 4", "Answer: 3 or 4", "It is 3 or maybe 4.", "Answer: 33"):
        traj, _ = await drive(env, "shop-L1", [calls(call("get_stock", item="apple")), reply])
        assert traj.passed is False, reply


async def test_reads_without_an_answer_need_the_calls(env: BuiltEnv) -> None:
    for replies in (["3 apples and 5 pears."], [calls(call("get_stock", item="apple")), "3 apples."]):
        traj, _ = await drive(env, "shop-L3r", replies)
        assert traj.passed is False, replies
        assert "cannot show were not made" in (next(f for f in traj.feedback if f.name == "completeness").text or "")


async def test_unobservable_calls_must_be_made(env: BuiltEnv) -> None:
    """A read beside a write (no answer states it) and a write that changes nothing: the state cannot tell."""
    cases: list[tuple[str, list[Message | str], bool]] = [
        ("shop-L3m", [calls(call("add_stock", item="pear", qty=1)), "Done."], False),
        (
            "shop-L3m",
            [calls(call("add_stock", item="pear", qty=1), call("get_price", "b", item="pear")), "Done."],
            False,
        ),
        (
            "shop-L3m",
            [calls(call("add_stock", item="pear", qty=1), call("get_price", "b", item="apple")), "Done."],
            True,
        ),
        ("shop-L1n", ["Done, the price is set."], False),
        ("shop-L1n", [calls(call("set_price", item="apple", price=1.5)), "Done."], True),
    ]
    for task_id, replies, passes in cases:
        traj, _ = await drive(env, task_id, replies)
        assert traj.passed is passes, (task_id, replies)


async def test_a_write_task_needs_the_state_change(env: BuiltEnv) -> None:
    cases: list[list[Message | str]] = [
        ["Done, I added 4 pears."],
        [calls(call("get_stock", item="pear")), "Done."],
        [calls(call("add_stock", item="pear", qty=5)), "Done."],
        [calls(call("add_stock", item="pear", qty=2)), calls(call("add_stock", item="pear", qty=2)), "Done."],
    ]
    for replies in cases:
        traj, _ = await drive(env, "shop-L1b", replies)
        expected_pass = len(replies) == 3  # 2 + 2 pears is the same final state: completeness is the state
        assert traj.passed is expected_pass, replies


async def test_a_stored_trajectory_is_regraded_by_replay(env: BuiltEnv, shop_dir: Path) -> None:
    traj, _ = await drive(
        env, "shop-L4", [calls(call("get_stock", item="apple")), calls(call("add_stock", item="pear", qty=3)), "Done."]
    )
    stored = Trajectory.model_validate_json(traj.model_dump_json())
    fresh = BuiltEnv.load(shop_dir)
    again = await fresh.grade(stored)
    assert [(f.name, f.passed, f.score) for f in again] == [(f.name, f.passed, f.score) for f in traj.feedback]
    tampered = stored.model_copy(deep=True)
    tampered.steps = [tampered.steps[0], tampered.steps[2]]  # the write dropped
    assert Trajectory(**{**tampered.model_dump(), "feedback": await fresh.grade(tampered)}).passed is False


async def test_the_live_state_is_used_only_for_the_episode_it_belongs_to(env: BuiltEnv) -> None:
    replies: list[Message | str] = [calls(call("add_stock", item="pear", qty=4)), "Done."]
    traj, _, episode = await drive_on(env.clone(), "shop-L1b", replies)
    assert traj.passed
    other = traj.model_copy(deep=True)
    other.steps = other.steps[1:]  # the same task without the write: replayed, not the live state
    feedback = await episode.grade(other)
    assert next(f for f in feedback if f.name == "completeness").passed is False


def test_load_errors_are_one_line(tmp_path: Path, shop_dir: Path) -> None:
    with pytest.raises(ConfigError, match="is not a built environment"):
        BuiltEnv.load(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("hone_env.json", "splits.json"):
        (broken / name).write_bytes((shop_dir / name).read_bytes())
    (broken / "tasks.jsonl").write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tasks.jsonl:1: not a readable built environment") as info:
        BuiltEnv.load(broken)
    assert "\n" not in str(info.value)
    (broken / "tasks.jsonl").write_bytes((shop_dir / "tasks.jsonl").read_bytes())
    (broken / "splits.json").write_text(json.dumps({"test": ["nope"]}), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        BuiltEnv.load(broken)


def test_schema_and_answer_helpers() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "mode": {"enum": ["a", "b"]},
            "n": {"type": ["integer", "null"]},
        },
        "required": ["mode"],
    }
    assert schema_error({"mode": "a", "tags": ["x"], "n": None}, schema) is None
    assert schema_error({"mode": "c"}, schema) == "argument 'mode' must be one of ['a', 'b'], got 'c'"
    assert schema_error({"mode": "a", "tags": ["x", 1]}, schema) == "argument 'tags'[1] should be string, got integer"
    assert schema_error({"mode": "a", "n": True}, schema) == "argument 'n' should be integer or null, got boolean"
    assert schema_error({"mode": "a", "tags": ["1", "2", "3"]}, schema) == "argument 'tags' must have at most 2 items"
    assert final_answer("x\nAnswer: **Paris**.\nthanks") == "**Paris**."
    assert final_answer("no marker") is None
    assert answers_match("**Paris**.", "paris") and answers_match(" 1,234 ", "1234") and answers_match("2.0", "2")
    assert (
        not answers_match("2, 3", "2") and not answers_match(None, "2") and not answers_match("Paris, France", "Paris")
    )
    assert answers_match("a,b", "a, b")


async def test_a_distractor_lent_by_another_scenario_is_offered_and_answers_with_feedback(tmp_path: Path) -> None:
    # The bank's "exchange" scenario has two tools: level-2 distractors come from "accounts" too.
    build(bank_source(), tmp_path / "bank", tasks_per_level=4, levels=(2,), heldout_share=0)
    env = BuiltEnv.load(tmp_path / "bank")
    lent = [
        t
        for t in env.built_tasks()
        if any(n not in {d.name for d in env.scenarios[t.scenario].tools} for n in t.offered)
    ]
    assert lent, "the fixture should need distractors from another scenario"
    task = lent[0]
    own = {d.name for d in env.scenarios[task.scenario].tools}
    foreign = next(n for n in task.offered if n not in own)
    schema = next(d for s in env.scenarios.values() for d in s.tools if d.name == foreign).parameters
    arguments = {k: 1 if v.get("type") in ("integer", "number") else "x" for k, v in schema["properties"].items()}
    reference = [calls(*(call(c.name, f"r{i}", **c.arguments) for i, c in enumerate(step))) for step in task.reference]
    traj, results = await drive(env, task.id, [calls(call(foreign, **arguments)), *reference, f"Answer: {task.answer}"])
    first = results[0].observations[0]
    assert "another service" in first.text and first.error
    assert results[0].tool_errors == []  # public feedback, not a protocol error
    assert traj.passed  # the wrong pick cost a call, the right one still solved it


async def test_an_fsm_goal_is_reached_by_any_path(tmp_path: Path) -> None:
    from hone.envs.build import load_source

    spec = Path(__file__).parent / "specs" / "checkout.yaml"
    build(load_source(spec), tmp_path / "shop", tasks_per_level=1, heldout_share=0)
    env = BuiltEnv.load(tmp_path / "shop")
    task = next(t for t in env.built_tasks() if t.id.startswith("fsm-two_paid"))
    assert task.goal is not None and [c.name for s in task.reference for c in s] == [
        "log_in",
        "add_item",
        "add_item",
        "pay",
    ]
    other = "pen" if task.reference[1][0].arguments["item"] != "pen" else "lamp"
    path = [call("log_in"), call("add_item", item=other), call("add_item", item="lamp"), call("pay")]
    passed, _ = verdict((await drive(env, task.id, [*(calls(c) for c in path), "Done."]))[0])
    assert passed  # another route to the same goal: AutoWebWorld counts reaching the goal
    short = [call("log_in"), call("add_item", item="book"), call("pay")]
    failed, _ = verdict((await drive(env, task.id, [*(calls(c) for c in short), "Done."]))[0])
    assert not failed  # one item paid: the goal (two items, paid) does not hold
    # A stored trajectory regraded by a fresh instance (replay) agrees.
    traj = (await drive(env, task.id, [*(calls(c) for c in path), "Done."]))[0]
    regraded = await BuiltEnv.load(tmp_path / "shop").grade(traj)
    assert next(f for f in regraded if f.name == "completeness").passed
