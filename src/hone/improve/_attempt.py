"""One attempt: an episode that may start with extra context or from a prefix of earlier steps.

`context` messages (feedback, reflections, guidance) are shown after the environment's
opening prompt and recorded there (`meta["context_messages"]` says how many, so learners
can strip them). A `prefix` trajectory's steps are replayed through a fresh environment
(its tool calls run again, no model calls), so search can continue a partial trajectory;
they are copied into the new trajectory, which therefore holds the whole path. `max_steps`
stops after that many new steps, leaving a partial trajectory (`meta["partial"]`) that a
later attempt can extend. Nothing is graded: the environment is the public view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hone.core import (
    Account,
    BudgetExceeded,
    EnvError,
    ErrorInfo,
    HoneError,
    Message,
    Sampling,
    Step,
    ToolError,
    Trajectory,
    utcnow,
)
from hone.envs import Environment, StepResult
from hone.models import ChatModel
from hone.rollout import close_episode

if TYPE_CHECKING:
    from ._search import Search


class _Stop(Exception):
    def __init__(self, status: str, reason: str, error: ErrorInfo | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.error = status, reason, error


async def _step(env: Environment, message: Message) -> StepResult:
    try:
        return await env.step(message)
    except HoneError:
        raise
    except Exception as exc:
        raise EnvError(f"{env.name}.step raised {type(exc).__name__}: {exc}") from exc


async def run_attempt(
    search: Search,
    *,
    context: Sequence[Message],
    prefix: Trajectory | None,
    parents: Sequence[str],
    sampling: Sampling,
    max_steps: int | None,
    op: str,
    model: ChatModel,
    meta: dict[str, object],
) -> Trajectory | None:
    """Run the attempt; None when the budget refused its first call (nothing was made)."""
    env = search.env.clone()
    limits = search.strategy.limits
    task = search.task
    traj = Trajectory(
        task_id=task.id,
        env=env.name,
        env_version=env.version,
        subset=task.subset,
        model=model.name,
        parent_ids=list(parents),
        meta={"op": op, **meta},
    )
    acct = search.work_account.child()
    prefix_steps = list(prefix.steps) if prefix is not None else []
    try:
        if limits.timeout_s is None:
            await _loop(search, env, model, traj, context, prefix_steps, sampling, max_steps, acct)
        else:
            async with asyncio.timeout(limits.timeout_s):
                await _loop(search, env, model, traj, context, prefix_steps, sampling, max_steps, acct)
    except _Stop as stop:
        traj.status, traj.stop_reason, traj.error = stop.status, stop.reason, stop.error  # type: ignore[assignment]
    except BudgetExceeded as exc:
        if len(traj.steps) == len(prefix_steps):
            return None  # refused before its first new call: not an attempt
        traj.status, traj.stop_reason = "error", "error"
        traj.error = ErrorInfo.from_exception(exc, step_index=len(traj.steps) - 1)
    except TimeoutError:
        traj.status, traj.stop_reason = "truncated", "timeout"
        traj.error = ErrorInfo(type="Timeout", message=f"attempt passed its {limits.timeout_s:g}s timeout")
    except HoneError as exc:
        traj.status, traj.stop_reason = "error", "error"
        traj.error = ErrorInfo.from_exception(exc, step_index=len(traj.steps) - 1 if traj.steps else None)
    traj.usage = acct.close()
    await close_episode(env)
    traj.finished_at = utcnow()
    return traj


async def _loop(
    search: Search,
    env: Environment,
    model: ChatModel,
    traj: Trajectory,
    context: Sequence[Message],
    prefix_steps: list[Step],
    sampling: Sampling,
    max_steps: int | None,
    acct: Account,
) -> None:
    limits = search.strategy.limits
    reset = await env.reset(search.task)
    traj.prompt = [*reset.messages, *context]
    traj.tools = list(reset.tools)
    if context:
        traj.meta["context_messages"] = len(context)
    messages = list(traj.prompt)
    tool_calls_used = 0
    for old in prefix_steps:  # replay: the environment's state must match the prefix
        result = await _step(env, old.call.message)
        traj.steps.append(old.model_copy(update={"observations": list(result.observations)}))
        messages += [old.call.message, *result.observations]
        tool_calls_used += len(old.call.message.tool_calls or ())
        if result.done:
            traj.answer, traj.stop_reason = result.answer, "done"
            return
    if prefix_steps:
        traj.meta["prefix_steps"] = len(prefix_steps)
    turns = limits.max_turns - len(prefix_steps)
    if max_steps is not None:
        turns = min(turns, max_steps)
    for _ in range(max(0, turns)):
        index = len(traj.steps)
        call = await search.call(model, messages, reset.tools, sampling, account=acct)
        step = Step(call=call)
        traj.steps.append(step)
        messages.append(call.message)
        n_calls = len(call.message.tool_calls or ())
        if tool_calls_used + n_calls > limits.max_tool_calls:
            raise _Stop("truncated", "max_tool_calls")
        for _ in range(n_calls):
            acct.reserve_tool_call()
        tool_calls_used += n_calls
        try:
            result = await _step(env, call.message)
        except ToolError as exc:
            raise _Stop("error", "error", ErrorInfo.from_exception(exc, step_index=index)) from exc
        acct.record_env_step()
        step.observations = list(result.observations)
        step.feedback = [f.model_copy(update={"step_index": index}) for f in result.feedback]
        messages.extend(result.observations)
        if result.tool_errors:
            step.error = result.tool_errors[0].model_copy(update={"step_index": index})
            if limits.tool_errors == "fail":
                raise _Stop("error", "error", step.error)
        if result.done:
            traj.answer, traj.stop_reason = result.answer, "done"
            return
    if len(traj.steps) >= limits.max_turns:
        raise _Stop("truncated", "max_turns")
    traj.meta["partial"] = True  # stopped by max_steps: a node a later attempt may extend
