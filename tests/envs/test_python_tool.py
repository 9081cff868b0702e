"""The `python` tool: stateless or one session per episode, its mode in the record, usable from arith/gsm8k."""

from __future__ import annotations

from hone.core import Message, Trajectory
from hone.envs import Arith, make_env
from hone.envs._python_tool import PythonTool, python_mode
from hone.models import Scripted, call_tool
from hone.rollout import EpisodeLimits, run_episode


async def test_stateless_calls_start_fresh() -> None:
    tool = PythonTool("stateless")
    assert await tool.run({"code": "x = 6 * 7\nprint(x)"}) == "42"
    out = await tool.run({"code": "print(x)"})
    assert "NameError" in out  # nothing carried over
    assert await tool.run({"code": "pass"}) == "(no output)"


async def test_a_session_keeps_state_within_an_episode_only() -> None:
    tool = PythonTool("session").fresh()
    try:
        assert await tool.run({"code": "x = 6 * 7"}) == "(no output)"
        assert await tool.run({"code": "x + 1"}) == "43"  # a final expression is echoed, REPL style
        other = tool.fresh()  # the next episode's instance
        assert "NameError" in await other.run({"code": "print(x)"})
        await other.aclose()
    finally:
        await tool.aclose()


async def test_timeouts_and_errors_are_output_not_tool_failures() -> None:
    tool = PythonTool("stateless", timeout_s=1)
    out = await tool.run({"code": "while True: pass"})
    assert "[stopped: the code ran past its time limit]" in out
    out = await tool.run({"code": "1/0"})
    assert "ZeroDivisionError" in out
    session = PythonTool("session", timeout_s=1).fresh()
    try:
        await session.run({"code": "y = 1"})
        out = await session.run({"code": "while True: pass"})
        assert "session was restarted" in out
        assert "NameError" in await session.run({"code": "print(y)"})
    finally:
        await session.aclose()


async def test_arith_with_the_python_tool_records_the_mode() -> None:
    for tools, mode in (("python", "stateless"), ("python-session", "session")):
        env = make_env("arith", levels="2", tools=tools)
        task = env.tasks("test", n=1)[0]
        expression = str(task.input["question"]).removeprefix("Compute: ")

        def agent(messages: list[Message], _tools: object, expression: str = expression) -> Message | str:
            last = messages[-1]
            if last.role == "tool":
                return f"The answer is {last.text}."
            return call_tool("python", {"code": f"print({expression})"})

        traj = await run_episode(env.clone(), Scripted(agent), task)
        assert traj.status == "ok" and traj.tool_call_count == 1
        assert python_mode(traj) == mode
        assert "python tool" in traj.prompt[0].text
        assert traj.passed, traj.steps[0].observations[0].text


def test_calculator_alone_keeps_the_trained_prompt() -> None:
    from hone.envs._arith import SYSTEM_PROMPT

    env = Arith()
    task = env.tasks("test", n=1)[0]
    assert env.prompt(task)[0].text == SYSTEM_PROMPT
    both = Arith(tools="calculator,python")
    assert "calculator or python" in both.prompt(task)[0].text
    assert python_mode(Trajectory(task_id="t", env="arith", model="m")) is None


async def test_output_that_reads_like_an_error_is_not_a_failed_call() -> None:
    """Failure is `Message.error`, set by the tool machinery, never read off the output text."""
    from hone.improve._verify import execution_errors, step_ok, tool_results

    env = make_env("arith", levels="2", tools="python")
    task = env.tasks("test", n=1)[0]
    calls = iter([call_tool("python", {"code": "print('Error rate: 3')"}), call_tool("nope", {}), "The answer is 3."])
    limits = EpisodeLimits(tool_errors="observe")
    traj = await run_episode(env.clone(), Scripted(lambda _m, _t: next(calls)), task, limits=limits)
    printed, unknown = traj.steps[0].observations[0], traj.steps[1].observations[0]
    assert printed.text == "Error rate: 3" and printed.error is None
    assert unknown.text.startswith("error: unknown tool") and unknown.error is not None
    assert "unknown tool 'nope'" in unknown.error
    assert tool_results(traj) == ["Error rate: 3"]
    assert execution_errors(traj) == [traj.steps[1].error.message, unknown.text]  # type: ignore[union-attr]
    first = traj.model_copy(update={"steps": traj.steps[:1], "answer": None, "stop_reason": "max_steps"})
    assert step_ok(first) == 0.5  # the printed "Error" is no execution error
