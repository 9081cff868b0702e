from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

import pytest

from hone.core import ConfigError, Message, Trajectory
from hone.envs import DEMONSTRATION_MIX, GSM8K, Arith, Demonstrator, evaluate_expression, format_number, numbers_match
from hone.envs._arith import owner, solution_expression
from hone.envs._demos import left_to_right, malformed, slip, split_expression
from hone.models import request_digest

ANSWER = re.compile(r"The answer is (-?\d+(?:\.\d+)?)\.")
VOLATILE = {"id", "created_at", "finished_at"}  # unique per call by design; everything else is deterministic


@pytest.fixture(scope="module")
def demos() -> list[Trajectory]:
    return Arith().demonstrations(2000)


def content(trajectories: list[Trajectory]) -> list[dict[str, Any]]:
    return [t.model_dump(exclude=VOLATILE) for t in trajectories]


def styled(demos: list[Trajectory], style: str, level: int | None = None) -> list[Trajectory]:
    return [d for d in demos if d.meta["style"] == style and (level is None or d.subset == f"L{level}")]


def rate(demos: list[Trajectory]) -> float:
    assert demos
    return sum(d.passed for d in demos) / len(demos)


def test_protocol() -> None:
    env: Demonstrator = Arith()  # statically too: the extra `mix` option keeps the protocol's signature
    assert isinstance(env, Demonstrator)
    assert not hasattr(GSM8K, "demonstrations")  # optional: environments may not implement it


def test_trajectories_are_recorded_like_real_episodes(demos: list[Trajectory]) -> None:
    env = Arith()
    tools = [t.spec for t in env.tools]
    for demo in demos[:150]:
        task = env.find_task(demo.task_id)
        assert (demo.env, demo.env_version, demo.split, demo.subset) == ("arith", "1", "train", task.subset)
        assert (demo.model, demo.strategy, demo.status, demo.stop_reason) == (
            "demonstration",
            "demonstration",
            "ok",
            "done",
        )
        assert demo.meta == {"style": demo.meta["style"]} and demo.meta["style"] in DEMONSTRATION_MIX
        assert demo.prompt == env.prompt(task) and demo.tools == tools
        *calls, final = [s.call.message for s in demo.steps]
        assert final.role == "assistant" and final.tool_calls is None and not demo.steps[-1].observations
        match = ANSWER.fullmatch(final.text)
        assert match is not None and demo.answer == match.group(1)
        for i, call in enumerate(calls):
            assert call.content is None and call.tool_calls is not None and len(call.tool_calls) == 1
            [tc] = call.tool_calls
            assert (tc.id, tc.name, list(tc.arguments)) == (f"call_{i}", "calculator", ["expression"])
        history = list(demo.prompt)
        for step in demo.steps:
            assert step.call.model == "demonstration" and step.error is None
            assert step.call.request_digest == request_digest("demonstration", history, demo.tools, None)
            history += [step.call.message, *step.observations]
        assert demo.usage.calls == demo.usage.env_steps == len(demo.steps)
        assert demo.usage.tool_calls == len(calls)
        [fb] = demo.feedback
        assert fb.visibility == "hidden" and demo.reward == fb.score == (1.0 if demo.passed else 0.0)
        assert Trajectory.model_validate_json(demo.model_dump_json()) == demo


def test_deterministic_per_seed_and_prefix_stable(demos: list[Trajectory]) -> None:
    env = Arith()
    again = env.demonstrations(100)
    assert content(again) == content(demos[:100])  # same seed, and a smaller n is a prefix
    other = env.demonstrations(100, seed=1)
    assert [d.task_id for d in other] != [d.task_id for d in again]
    assert all("-s1-" in d.task_id for d in other)
    assert [d.meta["style"] for d in other] != [d.meta["style"] for d in again]


def test_style_mix(demos: list[Trajectory]) -> None:
    counts = Counter(d.meta["style"] for d in demos)
    assert set(counts) == set(DEMONSTRATION_MIX)
    for style, share in DEMONSTRATION_MIX.items():
        assert abs(counts[style] / len(demos) - share) < 0.03, (style, counts)
    only_tool = Arith(levels="2").demonstrations(40, mix={"tool": 1.0})
    assert {d.meta["style"] for d in only_tool} == {"tool"}


def test_tool_demonstrations_always_pass(demos: list[Trajectory]) -> None:
    tool = styled(demos, "tool")
    assert all(d.passed for d in tool)
    assert all(len(d.steps) == 2 for d in tool)
    for d in tool:
        assert d.answer == d.steps[0].observations[0].content  # the answer is the calculator's output


def test_direct_accuracy_falls_with_level(demos: list[Trajectory]) -> None:
    direct = styled(demos, "direct")
    assert all(len(d.steps) == 1 and d.tool_call_count == 0 for d in direct)
    assert rate(styled(demos, "direct", 1)) > 0.6
    assert rate(styled(demos, "direct", 5)) < 0.3
    assert rate(styled(demos, "direct", 4)) < 0.3


def test_clumsy_demonstrations_recover(demos: list[Trajectory]) -> None:
    clumsy = styled(demos, "clumsy")
    assert all(d.passed for d in clumsy)
    kinds: Counter[str] = Counter()
    for d in clumsy:
        assert d.tool_call_count == 2 and len(d.steps) == 3
        first, second = (s.observations[0].text for s in d.steps[:2])
        assert not second.startswith("error:")
        assert d.feedback[0].evidence is not None and numbers_match(second, d.feedback[0].evidence["expected"])
        kinds["error" if first.startswith("error: calculator: ") else "split"] += 1
    assert kinds["error"] > 50 and kinds["split"] > 50
    assert not any(s.error for d in clumsy for s in d.steps)  # a calculator error is output, not a ToolError


async def test_observations_are_what_a_fresh_episode_produces(demos: list[Trajectory]) -> None:
    replayed = Counter[str]()
    for demo in demos[:600]:
        episode = Arith()
        await episode.reset(episode.find_task(demo.task_id))
        for step in demo.steps:
            result = await episode.step(Message.model_validate_json(step.call.message.model_dump_json()))
            assert [o.model_dump_json() for o in result.observations] == [
                o.model_dump_json() for o in step.observations
            ]
        assert result.done and result.answer == demo.answer
        replayed[demo.meta["style"]] += 1
    assert min(replayed.values()) > 50 and set(replayed) == set(DEMONSTRATION_MIX)


def test_word_problems_call_the_hidden_formula(demos: list[Trajectory]) -> None:
    env = Arith()
    pairs = [(d, env.find_task(d.task_id)) for d in demos[:1000] if d.subset in ("L4", "L5")]
    words = [(d, t) for d, t in pairs if t.meta["kind"] == "word"]
    assert len(words) > 150
    for demo, task in words:
        assert solution_expression(task) != task.input["question"]
        calls = [tc.arguments["expression"] for s in demo.steps for tc in s.call.message.tool_calls or []]
        if demo.meta["style"] == "tool":
            assert evaluate_expression(calls[0]) == task.target
        elif demo.meta["style"] == "clumsy":
            assert evaluate_expression(calls[1]) == task.target


def test_train_split_by_default_and_test_only_when_asked(demos: list[Trajectory]) -> None:
    assert all(d.task_id.startswith("arith-train-") and d.split == "train" for d in demos)
    # every problem text belongs to one split: the train split's, never the test split's
    assert {owner(d.prompt[1].text.removeprefix("Compute: ")) for d in demos} == {"train"}
    asked = Arith(levels="1").demonstrations(5, split="test")
    assert all(d.task_id.startswith("arith-test-L1-") and d.split == "test" for d in asked)


def test_levels_follow_the_configuration() -> None:
    assert {d.subset for d in Arith(levels="2,4").demonstrations(20)} == {"L2", "L4"}


def test_bad_requests_are_config_errors() -> None:
    assert Arith().demonstrations(0) == []
    with pytest.raises(ConfigError, match="at least 0"):
        Arith().demonstrations(-1)
    with pytest.raises(ConfigError, match="calculator"):
        Arith(tools="none").demonstrations(3)
    with pytest.raises(ConfigError, match="style 'lucky'"):
        Arith().demonstrations(3, mix={"lucky": 1.0})
    with pytest.raises(ConfigError, match="non-negative"):
        Arith().demonstrations(3, mix={"tool": -1.0, "direct": 2.0})
    with pytest.raises(ConfigError, match="unknown split"):
        Arith().demonstrations(3, split="dev")


async def test_sync_and_async_apis_agree_inside_a_running_loop() -> None:
    env = Arith(levels="3")
    assert content(env.demonstrations(10, seed=4)) == content(await env.ademonstrations(10, seed=4))


def test_slips_are_plausible_and_always_wrong() -> None:
    assert left_to_right("2 + 3 * 4") == 20
    assert left_to_right("(10 - 4) / 4 + 1") == 2.5
    assert left_to_right("2 ** 3") is None
    rng = random.Random(0)
    for value, expression in [(0, "0 * 5"), (7, "3 + 4"), (14, "2 + 3 * 4"), (-53966663338, "1"), (10**12, "1")]:
        for _ in range(50):
            assert not numbers_match(slip(rng, expression, value), value)


def test_malformed_and_split_calls() -> None:
    rng = random.Random(1)
    for expression in ("12 + 7", "21 * 93 + 66", "(218 * 110 - 41) / 37", "268 + (520 - (764 + 262) / 54)"):
        for _ in range(10):
            with pytest.raises(ValueError):
                evaluate_expression(malformed(rng, expression))
    assert split_expression(rng, "12 + 7") is None
    assert split_expression(rng, "(2 + 3) * 4") is None  # no top-level + or -
    for expression in ("991 + 819 + (792 - 467) - 903 * 2", "60 * 29 - 29", "5 - (7 * 3 - 1)"):
        for _ in range(10):
            parts = split_expression(rng, expression)
            assert parts is not None
            part, whole = parts
            assert format_number(evaluate_expression(part)) in whole
            assert evaluate_expression(whole) == evaluate_expression(expression)
