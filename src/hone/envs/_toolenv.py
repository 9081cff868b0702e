"""`ToolEnv`: the common environment where the model calls tools until it answers in plain text."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

from hone.core import (
    TOOL_ERROR_PREFIX,
    ConfigError,
    EnvError,
    ErrorInfo,
    Feedback,
    GradeError,
    Message,
    Task,
    ToolCall,
    ToolError,
    Trajectory,
    duplicate_tool_name,
    numbers_match,
)

from ._answers import extract_final_answer
from ._base import Reset, StepResult
from ._calculator import calculator
from ._python_tool import PythonMode, PythonTool
from ._tools import Tool, ToolFailure

MAX_OUTPUT_CHARS = 10_000
"""Tool output longer than this is cut (with a note) so one call cannot flood the context."""


def _python(mode: PythonMode) -> Callable[[], Tool]:
    def make() -> Tool:
        return PythonTool(mode)

    return make


BUILTIN_TOOLS: dict[str, Callable[[], Tool]] = {
    "calculator": lambda: calculator,
    "python": _python("stateless"),
    "python-session": _python("session"),
}
"""Tool names a built-in env's `tools` option accepts: `python` runs each call as a fresh sandboxed
program, `python-session` keeps one sandboxed interpreter per episode."""


class ToolEnv:
    """Base class for environments where the model calls tools until it replies without one.

    Subclasses set `name` and `version`, pass their `Tool`s to `__init__` (kept in
    `self.tools`), and implement `splits`, `tasks` and `prompt`. `extract_answer` (default
    `extract_final_answer`) and `grade_answer` (default: numeric match of the answer against
    `task.target`, as hidden verifier feedback) may be overridden. The base class runs the
    episode: `reset` remembers the task; `step` executes tool calls (a failing call becomes
    an `"error: ..."` observation with `Message.error` set, plus a `tool_errors` entry for a
    protocol error; never an exception); a message without tool calls ends the episode with
    its extracted answer.

    Grading needs only `trajectory.task_id`: `find_task` looks the id up in an index built
    lazily from `tasks()` over every split, so a fresh instance can regrade a stored
    trajectory. Environments with unbounded or expensive task lists override `find_task`.
    """

    name: str = "toolenv"
    version: str = "1"
    # Tolerance of the default numeric grading (GSM8K-style answers may be rounded).
    grade_rel_tol: float = 1e-6
    grade_abs_tol: float = 1e-6

    def __init__(self, tools: Sequence[Tool] = ()) -> None:
        twice = duplicate_tool_name(t.spec for t in tools)
        if twice is not None:  # `step` finds a call's tool by name: a second one would never run
            raise ConfigError(f"{self.name}: two tools are named {twice!r}; give every tool a distinct name")
        self.tools: list[Tool] = list(tools)
        self._task_index: dict[str, Task] | None = None
        self._task: Task | None = None
        self._done = False

    # --- what subclasses provide -------------------------------------------------------

    def splits(self) -> list[str]:
        """The split names `tasks` accepts."""
        raise NotImplementedError

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        """Deterministic tasks of `split`: the same `n` and `seed` give the same list."""
        raise NotImplementedError

    def prompt(self, task: Task) -> list[Message]:
        """The opening messages of an episode on `task`."""
        raise NotImplementedError

    def extract_answer(self, text: str) -> str | None:
        """The final answer in the model's closing text (default: `extract_final_answer`)."""
        return extract_final_answer(text)

    def grade_answer(self, task: Task, answer: str | None) -> list[Feedback]:
        """Hidden feedback on `answer` (default: numeric match against `task.target`)."""
        return [numeric_match(task.target, answer, rel_tol=self.grade_rel_tol, abs_tol=self.grade_abs_tol)]

    # --- the Environment protocol --------------------------------------------------------

    def clone(self) -> Self:
        """A copy with the same configuration and no episode state (shares tools and loaded data)."""
        other = copy.copy(self)
        other.tools = [t.fresh() for t in self.tools]
        other._task = None
        other._done = False
        return other

    async def aclose(self) -> None:
        """End the episode's per-episode resources (a `python-session` interpreter); the Runner calls it."""
        for t in self.tools:
            await t.aclose()

    async def reset(self, task: Task) -> Reset:
        self._task = task
        self._done = False
        return Reset(messages=self.prompt(task), tools=[t.spec for t in self.tools])

    async def step(self, message: Message) -> StepResult:
        if self._task is None:
            raise EnvError(f"{self.name}: step() called before reset()")
        if self._done:
            raise EnvError(f"{self.name}: step() called after the episode ended")
        if not message.tool_calls:
            self._done = True
            return StepResult(done=True, answer=self.extract_answer(message.text))
        result = StepResult()
        for call in message.tool_calls:
            content, failed, error = await self._run_call(call)
            result.observations.append(Message.tool(content, tool_call_id=call.id, name=call.name, error=failed))
            if error is not None:
                result.tool_errors.append(error)
        return result

    async def grade(self, trajectory: Trajectory) -> list[Feedback]:
        task = self.find_task(trajectory.task_id)
        answer = trajectory.answer
        if answer is None:
            final = _final_text(trajectory)
            answer = None if final is None else self.extract_answer(final)
        try:
            return self.grade_answer(task, answer)
        except Exception as exc:
            raise GradeError(f"{self.name}: grading task {task.id!r} failed: {exc}") from exc

    # --- helpers ---------------------------------------------------------------------------

    def find_task(self, task_id: str) -> Task:
        """The task with `task_id`: the current episode's, else from the lazily built index."""
        if self._task is not None and self._task.id == task_id:
            return self._task
        if self._task_index is None:
            self._task_index = {t.id: t for split in self.splits() for t in self.tasks(split)}
        try:
            return self._task_index[task_id]
        except KeyError:
            raise GradeError(f"{self.name}: unknown task id {task_id!r}") from None

    def get_tool(self, name: str) -> Tool | None:
        """The tool called `name`, or None."""
        return next((t for t in self.tools if t.name == name), None)

    async def _run_call(self, call: ToolCall) -> tuple[str, str | None, ErrorInfo | None]:
        """The observation text, why the call failed (None if it ran), and the protocol error to record."""
        try:
            found = self.get_tool(call.name)
            if found is None:
                known = ", ".join(t.name for t in self.tools) or "none"
                raise ToolError(f"unknown tool {call.name!r}; available tools: {known}")
            if call.parse_error is not None:
                raise ToolError(f"{call.name}: arguments are not a valid JSON object ({call.parse_error})")
            output = await found.run(call.arguments)
        except ToolFailure as exc:
            return f"{TOOL_ERROR_PREFIX}{exc}", str(exc), None
        except ToolError as exc:
            raw = call.arguments_raw if call.arguments_raw is not None else _dump(call.arguments)
            return f"{TOOL_ERROR_PREFIX}{exc}", str(exc), ErrorInfo(type="ToolError", message=str(exc), raw=raw)
        if len(output) > MAX_OUTPUT_CHARS:
            output = f"{output[:MAX_OUTPUT_CHARS]}\n[output cut: {len(output)} characters in all]"
        return output, None, None


def numeric_match(
    expected: Any, got: str | None, name: str = "exact_match", *, rel_tol: float = 1e-6, abs_tol: float = 1e-6
) -> Feedback:
    """Hidden verifier feedback: 1.0 when `got` is the number `expected` within tolerance, else 0.0."""
    passed = numbers_match(got, expected, rel_tol=rel_tol, abs_tol=abs_tol)
    return Feedback(
        source="verifier",
        name=name,
        score=1.0 if passed else 0.0,
        passed=passed,
        text=f"expected {expected}, got {got if got is not None else 'no answer'}",
        evidence={"expected": expected, "got": got},
        visibility="hidden",
    )


def _final_text(trajectory: Trajectory) -> str | None:
    if not trajectory.steps:
        return None
    last = trajectory.steps[-1].call.message
    return None if last.tool_calls else last.text


def _dump(arguments: Mapping[str, Any]) -> str:
    return json.dumps(arguments, default=str)
