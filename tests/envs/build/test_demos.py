"""Demonstrations of built environments: real graded episodes, by level and style, deterministic, split-safe."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hone.core import ConfigError, ToolCall, Trajectory
from hone.envs import Demonstrator, make_env
from hone.envs.build import BuiltEnv
from hone.envs.build._demos import demonstrations
from hone.envs.build._envkit import NOT_SPECIFIC, answers_match, final_answer
from hone.envs.build._toolgen import Toolgen
from hone.testing._builtenv import write_shop_env

SCENARIOS = ["bakery", "hotel", "zoo"]  # zoo is held out


@pytest.fixture(scope="module")
def toolgen() -> Toolgen:
    return Toolgen(scenarios=SCENARIOS)


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shop_env(tmp_path_factory.mktemp("shop"))


def _demos(env: BuiltEnv, n: int, **kwargs: object) -> list[Trajectory]:
    return asyncio.run(demonstrations(env, n, **kwargs))  # type: ignore[arg-type]


def _turns(traj: Trajectory) -> list[object]:
    return [s.call.message.model_dump(mode="json") for s in traj.steps]


def test_every_built_env_is_a_demonstrator(shop_dir: Path) -> None:
    assert isinstance(make_env("toolgen"), Demonstrator)
    assert isinstance(BuiltEnv.load(shop_dir), Demonstrator)


def test_clean_demonstrations_are_real_episodes_that_pass_at_every_level(toolgen: Toolgen) -> None:
    demos = toolgen.demonstrations(12, seed=1, mix={"clean": 1})
    assert Counter(int(toolgen.built_task(d.task_id).level) for d in demos) == {lv: 2 for lv in range(1, 7)}
    for traj in demos:
        task = toolgen.built_task(traj.task_id)
        assert traj.passed and traj.reward == 1.0, (task.id, traj.feedback)
        assert traj.meta == {"style": "clean", "flaw": None} and traj.split == "train"
        assert traj.prompt[-1].text == task.prompt and [t.name for t in traj.tools] == task.offered
        calls = [c for s in traj.steps for c in s.call.message.tool_calls or []]
        assert [[(c.name, c.arguments) for c in s] for s in _call_steps(traj)] == [
            [(c.name, c.arguments) for c in step] for step in task.reference
        ]
        assert len({c.id for c in calls}) == len(calls)
        assert all(c.arguments_raw is not None and json.loads(c.arguments_raw) == c.arguments for c in calls)
        last = traj.steps[-1].call.message
        assert not last.tool_calls and traj.stop_reason == "done"
        if task.answer is not None:  # reads end with "Answer: <value>" read off the tool's real result
            assert answers_match(final_answer(last.text), task.answer)
        if task.level == 5:  # a question naming the missing argument, the user's reply, then the call
            fact = next(iter(task.hidden_facts))
            assert fact.replace("_", " ") in (traj.steps[0].call.message.text or "")
            assert not traj.steps[0].call.message.tool_calls
            reply = traj.steps[0].observations[0]
            assert reply.role == "user" and task.hidden_facts[fact] in (reply.text or "")
        if task.level == 6:
            assert not calls and len(traj.steps) == 1


def _call_steps(traj: Trajectory) -> list[list[ToolCall]]:
    return [list(s.call.message.tool_calls) for s in traj.steps if s.call.message.tool_calls]


def test_observations_and_grades_are_the_environments_own(toolgen: Toolgen) -> None:
    demos = toolgen.demonstrations(18, seed=2)
    tasks = {t.id: t for t in toolgen.tasks("train")}

    async def replay(traj: Trajectory) -> tuple[list[Any], list[Any]]:
        episode = toolgen.clone()
        await episode.reset(tasks[traj.task_id])
        seen: list[Any] = []
        for step in traj.steps:
            result = await episode.step(step.call.message)
            seen.append([(m.role, m.text, m.error, m.tool_call_id) for m in result.observations])
        await episode.aclose()
        return seen, [f.model_dump(mode="json") for f in await toolgen.clone().grade(traj)]

    for traj in demos:
        seen, graded = asyncio.run(replay(traj))
        assert seen == [[(m.role, m.text, m.error, m.tool_call_id) for m in s.observations] for s in traj.steps]
        assert graded == [f.model_dump(mode="json") for f in traj.feedback]


def test_recovered_demonstrations_fix_a_refused_mistake_and_still_pass(toolgen: Toolgen) -> None:
    demos = toolgen.demonstrations(30, seed=3, mix={"recovered": 1})
    flaws = Counter(d.meta["flaw"] for d in demos)
    assert {"bad_argument", "vague_question", "call_without"} <= set(flaws) and flaws[None] == 5  # level 6: clean
    for traj in demos:
        assert traj.passed, (traj.task_id, traj.meta, traj.feedback)
        flaw = traj.meta["flaw"]
        observed = [m for s in traj.steps for m in s.observations]
        if flaw == "vague_question":
            assert observed[0].role == "user" and observed[0].text == NOT_SPECIFIC
        elif flaw == "distractor_first":  # a tool that cannot change the state (a read, or another service's)
            used = {c.name for step in toolgen.built_task(traj.task_id).reference for c in step}
            assert traj.steps[0].call.message.tool_calls[0].name not in used  # type: ignore[index]
        elif flaw is not None:  # the environment refused the first try (schema or backend)
            assert any(m.role == "tool" and (m.text or "").startswith("error:") for m in observed)
        if flaw not in (None, "vague_question"):
            assert traj.reward is not None and traj.reward < 1.0  # the wasted call costs tool-call precision


def test_flawed_demonstrations_fail(toolgen: Toolgen) -> None:
    demos = toolgen.demonstrations(36, seed=4, mix={"flawed": 1})
    assert {d.meta["style"] for d in demos} == {"flawed"}
    for traj in demos:
        if traj.meta["flaw"] in ("wrong_answer", "needless_call", "skipped_call", "wrong_tool"):
            assert not traj.passed, (traj.task_id, traj.meta)
    assert sum(d.passed for d in demos) <= 0.2 * len(demos)


def test_the_default_mix_leaves_room_to_improve(toolgen: Toolgen) -> None:
    demos = toolgen.demonstrations(60, seed=5)
    styles = Counter(d.meta["style"] for d in demos)
    assert styles["clean"] > styles["recovered"] > 0 and styles["flawed"] > 0
    assert 0.6 <= sum(d.passed for d in demos) / len(demos) <= 0.95


def test_demonstrations_are_deterministic_and_prefixes(toolgen: Toolgen) -> None:
    a = toolgen.demonstrations(10, seed=7)
    b = toolgen.demonstrations(14, seed=7)
    assert [(d.task_id, d.meta, _turns(d)) for d in a] == [(d.task_id, d.meta, _turns(d)) for d in b[:10]]
    assert [d.reward for d in a] == [d.reward for d in b[:10]]
    other = toolgen.demonstrations(10, seed=8)
    assert [(d.task_id, _turns(d)) for d in other] != [(d.task_id, _turns(d)) for d in a]


def test_train_demonstrations_never_touch_heldout_scenarios(toolgen: Toolgen, shop_dir: Path) -> None:
    heldout = set(toolgen.splits() and toolgen._split_ids("heldout"))
    train = toolgen.demonstrations(24, seed=0)
    assert not {d.task_id for d in train} & heldout
    assert {toolgen.built_task(d.task_id).scenario for d in train} <= {"bakery", "hotel"}
    held = toolgen.demonstrations(6, seed=0, split="heldout", mix={"clean": 1})
    assert {toolgen.built_task(d.task_id).scenario for d in held} == {"zoo"} and all(d.passed for d in held)
    # A train split that (wrongly) names a held-out scenario's task still yields none of it.
    env = BuiltEnv.load(shop_dir)
    env.scenarios["shop"] = env.scenarios["shop"].model_copy(update={"heldout": True})
    with pytest.raises(ConfigError, match="no tasks"):
        env.demonstrations(3)


def test_more_demonstrations_than_tasks_deal_the_split_again(shop_dir: Path) -> None:
    env = BuiltEnv.load(shop_dir, call_timeout_s=1)
    train = set(env._split_ids("train"))
    demos = env.demonstrations(12, seed=0)
    assert len(demos) == 12 and {d.task_id for d in demos} == train
    assert all(d.split == "train" and d.steps for d in demos)


def test_bad_requests_are_refused(shop_dir: Path) -> None:
    env = BuiltEnv.load(shop_dir)
    assert env.demonstrations(0) == []
    with pytest.raises(ConfigError, match="at least 0"):
        env.demonstrations(-1)
    with pytest.raises(ConfigError, match="unknown split"):
        env.demonstrations(2, split="dev")
    with pytest.raises(ConfigError, match="unknown demonstration style"):
        env.demonstrations(2, mix={"perfect": 1})
    with pytest.raises(ConfigError, match="no tasks"):
        env.demonstrations(2, split="heldout")
