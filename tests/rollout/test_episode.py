from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from _echo_env import EchoEnv, say_number

from hone.core import Account, Budget, Message, ModelCall, Sampling, ToolSpec
from hone.envs import Environment
from hone.models import ChatModel, Scripted, call_tool
from hone.rollout import EpisodeLimits, metered_call, run_episode


def test_echo_env_satisfies_protocol() -> None:
    assert isinstance(EchoEnv(), Environment)


async def test_ok_episode_is_graded_and_costed() -> None:
    env = EchoEnv()
    task = env.tasks()[3]
    tr = await run_episode(env, Scripted(say_number), task, sample=1, run_id="r")
    assert (tr.status, tr.stop_reason, tr.answer, tr.reward, tr.passed) == ("ok", "done", "3", 1.0, True)
    assert tr.usage.calls == 1 and tr.usage.tokens > 0 and tr.usage.env_steps == 1
    assert tr.subset == "s1" and tr.sample == 1 and tr.run_id == "r"
    assert [m.role for m in tr.messages()] == ["user", "assistant"]


async def test_tool_turn_then_answer() -> None:
    model = Scripted([call_tool("double", {"x": 2}), "2"])
    env = EchoEnv()
    tr = await run_episode(env, model, env.tasks()[2])
    assert tr.status == "ok" and tr.usage.tool_calls == 1 and tr.usage.calls == 2
    assert tr.steps[0].observations[0].content == "4"


async def test_broken_tool_json_fails_episode_with_raw_text_kept() -> None:
    env = EchoEnv()
    model = Scripted([call_tool("double", '{"x": 2')])
    tr = await run_episode(env, model, env.tasks()[2])
    assert tr.status == "error" and tr.error is not None
    assert tr.error.type == "ToolError" and tr.error.raw == '{"x": 2' and tr.error.step_index == 0
    assert tr.reward is None


async def test_unknown_tool_observed_when_asked() -> None:
    env = EchoEnv()
    model = Scripted([call_tool("nope", {}), "2"])
    tr = await run_episode(env, model, env.tasks()[2], limits=EpisodeLimits(tool_errors="observe"))
    assert tr.status == "ok" and tr.passed
    assert tr.steps[0].error is not None and tr.steps[0].error.type == "ToolError"


async def test_auto_tool_errors_follow_the_environment_choice() -> None:
    # An environment that teaches tool use (BuiltEnv) declares tool_errors="observe": the default
    # limits ("auto") then show the error and go on; an explicit "fail" still ends the episode.
    env = EchoEnv()
    env.tool_errors = "observe"  # type: ignore[attr-defined]
    tr = await run_episode(env, Scripted([call_tool("nope", {}), "2"]), env.tasks()[2])
    assert tr.status == "ok" and tr.passed and tr.steps[0].error is not None
    failed = await run_episode(
        env, Scripted([call_tool("nope", {}), "2"]), env.tasks()[2], limits=EpisodeLimits(tool_errors="fail")
    )
    assert failed.status == "error"
    plain = EchoEnv()  # no declared choice: auto means fail, as before
    assert (await run_episode(plain, Scripted([call_tool("nope", {}), "2"]), plain.tasks()[2])).status == "error"


@pytest.mark.parametrize(("boom", "kind"), [("reset", "EnvError"), ("step", "EnvError"), ("grade", "GradeError")])
async def test_environment_failures_are_typed(boom: str, kind: str) -> None:
    env = EchoEnv(boom=boom)
    tr = await run_episode(env, Scripted(say_number), env.tasks()[1])
    assert tr.status == "error" and tr.error is not None and tr.error.type == kind
    assert "exploded" in tr.error.message


async def test_model_failure_is_model_error() -> None:
    def broken(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        raise ConnectionError("socket closed")

    env = EchoEnv()
    tr = await run_episode(env, Scripted(broken), env.tasks()[1])
    assert tr.status == "error" and tr.error is not None and tr.error.type == "ModelError"
    assert "socket closed" in tr.error.message


async def test_max_turns_truncates() -> None:
    env = EchoEnv()
    model = Scripted(lambda m, t: call_tool("double", {"x": 1}))
    tr = await run_episode(env, model, env.tasks()[1], limits=EpisodeLimits(max_turns=3))
    assert (tr.status, tr.stop_reason, len(tr.steps)) == ("truncated", "max_turns", 3)
    assert tr.reward == 0.0


async def test_max_tool_calls_truncates() -> None:
    env = EchoEnv()
    model = Scripted(lambda m, t: call_tool("double", {"x": 1}))
    tr = await run_episode(env, model, env.tasks()[1], limits=EpisodeLimits(max_tool_calls=2))
    assert (tr.status, tr.stop_reason, tr.usage.tool_calls) == ("truncated", "max_tool_calls", 2)


async def test_timeout_truncates() -> None:
    env = EchoEnv(step_sleep=1.0)
    model = Scripted(lambda m, t: call_tool("double", {"x": 1}))
    tr = await asyncio.wait_for(
        run_episode(env, model, env.tasks()[1], limits=EpisodeLimits(timeout_s=0.05)), timeout=5
    )
    assert (tr.status, tr.stop_reason) == ("truncated", "timeout")


async def test_budget_exceeded_is_typed_and_never_passed() -> None:
    env = EchoEnv()
    acct = Account(Budget(calls=2))
    model = Scripted(lambda m, t: call_tool("double", {"x": 1}))
    tr = await run_episode(env, model, env.tasks()[1], account=acct)
    assert tr.status == "error" and tr.error is not None and tr.error.type == "BudgetExceeded"
    assert acct.ledger.calls == 2 and len(tr.steps) == 2


async def test_sampling_is_passed_through() -> None:
    seen: list[Sampling | None] = []

    class Spy(Scripted):
        async def generate(self, messages, tools=None, sampling=None):  # type: ignore[no-untyped-def]
            seen.append(sampling)
            return await super().generate(messages, tools, sampling)

    env = EchoEnv()
    await run_episode(env, Spy(say_number), env.tasks()[0], sampling=Sampling(temperature=0.3, seed=7))
    assert seen[0] is not None and seen[0].seed == 7 and seen[0].temperature == 0.3


async def test_context_follows_the_prompt_and_is_recorded_there() -> None:
    seen: list[list[str]] = []

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        seen.append([m.text for m in messages])
        return say_number(messages, tools)

    env = EchoEnv()
    hint = Message.user("an earlier answer was wrong")
    tr = await run_episode(env, Scripted(reply), env.tasks()[3], context=[hint])
    assert seen == [["say 3", "an earlier answer was wrong"]]
    assert [m.text for m in tr.prompt] == ["say 3", "an earlier answer was wrong"]
    assert tr.meta["context_messages"] == 1 and tr.passed


async def test_max_steps_leaves_a_partial_episode_that_a_prefix_continues() -> None:
    env = EchoEnv()
    task = env.tasks()[2]
    first = await run_episode(env, Scripted([call_tool("double", {"x": 2})]), task, max_steps=1, grade=False)
    assert (first.status, first.stop_reason, first.partial, len(first.steps)) == ("ok", "max_steps", True, 1)
    assert first.reward is None and first.feedback == [] and first.answer is None
    # Tamper with the recorded observation: the replay must run the tool again, not copy it.
    tampered = first.steps[0].model_copy(update={"observations": [Message.tool("999", "x", "double")]})
    acct = Account()
    rest = await run_episode(env, Scripted(["2"]), task, prefix=[tampered], account=acct)
    assert rest.meta["prefix_steps"] == 1 and not rest.partial and rest.stop_reason == "done"
    assert [s.call.message.text for s in rest.steps] == [first.steps[0].call.message.text, "2"]
    assert rest.steps[0].observations[0].content == "4"
    assert rest.usage.calls == 1 and rest.usage.tool_calls == 0 and acct.ledger.calls == 1  # the replay is free
    assert (rest.status, rest.passed) == ("ok", True)


async def test_a_prefix_counts_towards_max_turns() -> None:
    env = EchoEnv()
    task = env.tasks()[1]
    looping = Scripted(lambda m, t: call_tool("double", {"x": 1}))
    first = await run_episode(env, looping, task, max_steps=2, grade=False)
    rest = await run_episode(env, looping, task, prefix=first.steps, max_steps=5, limits=EpisodeLimits(max_turns=3))
    assert (rest.status, rest.stop_reason, len(rest.steps), rest.usage.calls) == ("truncated", "max_turns", 3, 1)


async def test_every_model_call_goes_through_the_given_call() -> None:
    accounts: list[Account | None] = []

    async def spy(
        model: ChatModel,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        sampling: Sampling | None,
        account: Account | None = None,
    ) -> ModelCall:
        accounts.append(account)
        return await metered_call(model, messages, tools, sampling, account)

    env = EchoEnv()
    run = Account()
    tr = await run_episode(env, Scripted([call_tool("double", {"x": 2}), "2"]), env.tasks()[2], account=run, call=spy)
    assert len(accounts) == 2 and all(a is not None and a.parent is run for a in accounts)
    assert tr.usage.calls == 2 and run.ledger.calls == 2 and tr.passed


async def test_a_call_refused_before_the_first_step_leaves_no_step() -> None:
    env = EchoEnv()
    tr = await run_episode(env, Scripted(say_number), env.tasks()[1], account=Account(Budget(calls=0)))
    assert tr.status == "error" and tr.error is not None and tr.error.type == "BudgetExceeded"
    assert tr.steps == [] and tr.usage.calls == 0 and tr.reward is None
