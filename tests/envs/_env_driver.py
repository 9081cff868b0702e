"""A minimal episode loop for env tests (independent of hone.rollout, so env tests pin env behaviour only)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hone.core import Message, Step, Task, ToolSpec, Trajectory
from hone.envs import Environment, StepResult
from hone.models import Scripted, call_tool


async def drive(
    env: Environment, model: Scripted, task: Task, max_turns: int = 6
) -> tuple[Trajectory, list[StepResult]]:
    """Run one episode on a clone of `env`, grade it, and return the trajectory and every StepResult."""
    env = env.clone()
    reset = await env.reset(task)
    messages = list(reset.messages)
    steps: list[Step] = []
    results: list[StepResult] = []
    answer = None
    for _ in range(max_turns):
        call = await model.generate(messages, reset.tools)
        result = await env.step(call.message)
        results.append(result)
        steps.append(Step(call=call, observations=result.observations))
        messages += [call.message, *result.observations]
        if result.done:
            answer = result.answer
            break
    tr = Trajectory(
        task_id=task.id,
        env=env.name,
        model=model.name,
        prompt=reset.messages,
        tools=reset.tools,
        steps=steps,
        answer=answer,
    )
    tr.feedback = await env.grade(tr)
    return tr, results


def calculator_agent(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Message | str:
    """Mock policy: send the `Compute:` expression to the calculator, then state its output as the answer."""
    last = messages[-1]
    if last.role == "tool":
        return f"The calculator says {last.text}. The answer is {last.text}."
    match = re.fullmatch(r"Compute: ([0-9 +\-*/()]+)", last.text)
    assert match is not None, f"not a pure arithmetic prompt: {last.text!r}"
    return call_tool("calculator", {"expression": match.group(1)})
