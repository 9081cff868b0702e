"""A tiny in-test environment implementing the protocol directly, to pin Runner semantics."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from hone.core import ErrorInfo, Feedback, Message, Task, ToolSpec, Trajectory
from hone.envs import Reset, StepResult


class EchoEnv:
    """Task: say the number. A tool `double` exists; `boom` flags make it raise on purpose."""

    name = "echo"
    version = "1"

    def __init__(self, n: int = 10, boom: str = "", step_sleep: float = 0.0) -> None:
        self.n = n
        self.boom = boom
        self.step_sleep = step_sleep
        self.task: Task | None = None

    def splits(self) -> list[str]:
        return ["test"]

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        count = self.n if n is None else min(n, self.n)
        return [Task(id=f"e{i}", input={"x": i}, target=str(i), meta={"subset": f"s{i % 2}"}) for i in range(count)]

    def clone(self) -> EchoEnv:
        fresh = copy.copy(self)
        fresh.task = None
        return fresh

    async def reset(self, task: Task) -> Reset:
        if self.boom == "reset":
            raise RuntimeError("reset exploded")
        self.task = task
        spec = ToolSpec(name="double", parameters={"type": "object", "properties": {"x": {"type": "integer"}}})
        return Reset(messages=[Message.user(f"say {task.input['x']}")], tools=[spec])

    async def step(self, message: Message) -> StepResult:
        if self.step_sleep:
            await asyncio.sleep(self.step_sleep)
        if self.boom == "step":
            raise ValueError("step exploded")
        if message.tool_calls:
            obs, errors = [], []
            for tc in message.tool_calls:
                if tc.name != "double" or tc.parse_error:
                    errors.append(ErrorInfo(type="ToolError", message=f"bad call {tc.name}", raw=tc.arguments_raw))
                    obs.append(Message.tool("error: bad call", tc.id, tc.name))
                else:
                    obs.append(Message.tool(str(2 * int(tc.arguments["x"])), tc.id, tc.name))
            return StepResult(observations=obs, tool_errors=errors)
        return StepResult(done=True, answer=message.text.strip())

    async def grade(self, trajectory: Trajectory) -> list[Feedback]:
        if self.boom == "grade":
            raise KeyError("grade exploded")
        target = trajectory.task_id[1:]
        ok = trajectory.answer == target
        return [Feedback(source="verifier", name="exact", score=float(ok), passed=ok, visibility="hidden")]


def say_number(messages: Any, tools: Any) -> str:
    """A scripted policy that answers every task correctly."""
    first = messages[0].content
    return first.split()[-1]
