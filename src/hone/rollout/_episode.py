"""One episode: an environment, a model, a task; always returns a Trajectory.

The same engine runs the Runner's episodes and the attempts of `hone.improve`'s
strategies, which may open with extra `context` messages, continue a `prefix` of earlier
steps, stop after `max_steps` new steps, meter calls through their own budget (`call`) and
leave grading to the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from hone.core import (
    Account,
    EnvError,
    ErrorInfo,
    GradeError,
    HoneError,
    Message,
    ModelCall,
    ModelError,
    Sampling,
    Step,
    Task,
    ToolError,
    ToolSpec,
    Trajectory,
    duplicate_tool_name,
    hidden_reward,
    utcnow,
)
from hone.envs import Environment, StepResult
from hone.models import ChatModel

from ._config import EpisodeLimits

log = logging.getLogger(__name__)


class CallModel(Protocol):
    """How an episode makes one model call: reserve it in `account`, generate, record the usage.

    Raises `BudgetExceeded` before the call when the budget refuses it, `ModelError` (or
    another `HoneError`) when the call fails. `hone.improve`'s `Search.call` is one: it also
    caps tokens and seconds at the strategy's budget and keeps per-model telemetry.
    """

    async def __call__(
        self,
        model: ChatModel,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        sampling: Sampling | None,
        account: Account | None = None,
    ) -> ModelCall: ...


class _Stop(Exception):
    """Internal: the episode ended early with a status and maybe an error."""

    def __init__(self, status: str, reason: str, error: ErrorInfo | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error = error


async def metered_call(
    model: ChatModel,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec] | None,
    sampling: Sampling | None,
    account: Account | None = None,
) -> ModelCall:
    """The default `CallModel`: reserve the call in `account`, generate, record tokens and cost."""
    if account is not None:
        account.reserve_call()
    try:
        call = await model.generate(messages, tools, sampling)
    except HoneError:
        raise
    except Exception as exc:  # a backend bug or transport error: typed, never a crash of the run
        raise ModelError(f"{type(exc).__name__}: {exc}") from exc
    if account is not None:
        account.record_usage(call.usage.prompt_tokens, call.usage.completion_tokens, call.cost_usd)
    return call


async def run_episode(
    env: Environment,
    model: ChatModel,
    task: Task,
    *,
    sample: int = 0,
    sampling: Sampling | None = None,
    limits: EpisodeLimits | None = None,
    account: Account | None = None,
    run_id: str = "",
    split: str | None = None,
    grade: bool = True,
    context: Sequence[Message] = (),
    prefix: Sequence[Step] = (),
    max_steps: int | None = None,
    call: CallModel = metered_call,
) -> Trajectory:
    """Run `model` on `task` in `env` (a fresh episode instance) and grade the result.

    Failures never escape: they become the trajectory's `status` ("error" with a typed
    `error`, or "truncated" with a `stop_reason`). Spending goes to `account` (a child of
    it, if given), so a run Budget is enforced across concurrent episodes; each model call
    goes through `call` (default `metered_call`).

    `context` messages follow the environment's opening prompt and are recorded in it
    (`meta["context_messages"]` says how many, so learners can strip them). `prefix` steps
    (of an earlier trajectory) are replayed through the fresh environment, their tool calls
    run again without model calls or spending, and copied into this trajectory, which
    therefore holds the whole path (`meta["prefix_steps"]`). `max_steps` stops after that
    many new steps, short of `limits.max_turns`, leaving a partial trajectory
    (`stop_reason="max_steps"`, `Trajectory.partial`) a later episode can continue. `grade=False` leaves it ungraded.
    """
    limits = limits or EpisodeLimits()
    sampling = sampling or Sampling()
    acct = account.child() if account is not None else Account()
    traj = Trajectory(
        run_id=run_id,
        task_id=task.id,
        sample=sample,
        env=env.name,
        env_version=env.version,
        split=split,
        subset=task.subset,
        model=model.name,
    )
    loop = _loop(env, model, task, traj, sampling, limits, acct, call, context, prefix, max_steps)
    try:
        if limits.timeout_s is None:
            await loop
        else:
            async with asyncio.timeout(limits.timeout_s):
                await loop
    except _Stop as stop:
        traj.status = stop.status  # type: ignore[assignment]
        traj.stop_reason = stop.reason  # type: ignore[assignment]
        traj.error = stop.error
    except TimeoutError:
        traj.status = "truncated"
        traj.stop_reason = "timeout"
        traj.error = ErrorInfo(type="Timeout", message=f"episode passed its {limits.timeout_s:g}s timeout")
    except HoneError as exc:
        traj.status = "error"
        traj.stop_reason = "error"
        traj.error = ErrorInfo.from_exception(exc, step_index=len(traj.steps) - 1 if traj.steps else None)
    traj.usage = acct.close()
    await close_episode(env)
    if grade and traj.status != "error":
        await _grade(env, traj)
    traj.finished_at = utcnow()
    return traj


async def close_episode(env: Environment) -> None:
    """Call the environment's optional `aclose()` (per-episode resources such as an interpreter session).

    A failure there is logged, never raised: the episode's record matters more than cleanup.
    """
    closer = getattr(env, "aclose", None)
    if closer is None:
        return
    try:
        await closer()
    except Exception as exc:  # cleanup must not lose the trajectory
        log.warning("%s.aclose() raised %s: %s", getattr(env, "name", "env"), type(exc).__name__, exc)


async def _step(env: Environment, message: Message) -> StepResult:
    try:
        return await env.step(message)
    except HoneError:
        raise
    except Exception as exc:
        raise EnvError(f"{env.name}.step raised {type(exc).__name__}: {exc}") from exc


async def _loop(
    env: Environment,
    model: ChatModel,
    task: Task,
    traj: Trajectory,
    sampling: Sampling,
    limits: EpisodeLimits,
    acct: Account,
    call_model: CallModel,
    context: Sequence[Message],
    prefix: Sequence[Step],
    max_steps: int | None,
) -> None:
    try:
        reset = await env.reset(task)
    except HoneError:
        raise
    except Exception as exc:
        raise EnvError(f"{env.name}.reset({task.id}) raised {type(exc).__name__}: {exc}") from exc
    traj.prompt = [*reset.messages, *context]
    traj.tools = list(reset.tools)
    twice = duplicate_tool_name(reset.tools)
    if twice is not None:  # before any call: a call naming it could not say which tool it means
        raise EnvError(f"{env.name}.reset({task.id}) offers two tools named {twice!r}; give every tool a distinct name")
    if context:
        traj.meta["context_messages"] = len(context)
    messages = list(traj.prompt)
    tool_calls_used = 0
    for old in prefix:  # replay: the environment's state must match the prefix
        result = await _step(env, old.call.message)
        traj.steps.append(old.model_copy(update={"observations": list(result.observations)}))
        messages += [old.call.message, *result.observations]
        tool_calls_used += len(old.call.message.tool_calls or ())
        if result.done:
            traj.answer = result.answer
            traj.stop_reason = "done"
            return
    if prefix:
        traj.meta["prefix_steps"] = len(prefix)
    turns = limits.max_turns - len(prefix)
    if max_steps is not None:
        turns = min(turns, max_steps)
    for _ in range(max(0, turns)):
        index = len(traj.steps)
        call = await call_model(model, messages, reset.tools, sampling, acct)
        step = Step(call=call)
        traj.steps.append(step)
        messages.append(call.message)
        n_calls = len(call.message.tool_calls or ())
        if tool_calls_used + n_calls > limits.max_tool_calls:
            raise _Stop("truncated", "max_tool_calls")
        for _ in range(n_calls):
            acct.reserve_tool_call()
        tool_calls_used += n_calls
        try:  # inline rather than `_step`: one coroutine less per turn
            result = await env.step(call.message)
        except ToolError as exc:
            raise _Stop("error", "error", ErrorInfo.from_exception(exc, step_index=index)) from exc
        except HoneError:
            raise
        except Exception as exc:
            raise EnvError(f"{env.name}.step raised {type(exc).__name__}: {exc}") from exc
        acct.record_env_step()
        step.observations = list(result.observations)
        step.feedback = [f.model_copy(update={"step_index": index}) for f in result.feedback]
        messages.extend(result.observations)
        if result.tool_errors:
            first = result.tool_errors[0].model_copy(update={"step_index": index})
            step.error = first
            if _ends_on_tool_errors(limits, env):
                raise _Stop("error", "error", first)
        if result.done:
            traj.answer = result.answer
            traj.stop_reason = "done"
            return
    if len(traj.steps) >= limits.max_turns:
        raise _Stop("truncated", "max_turns")
    traj.stop_reason = "max_steps"  # partial: a node a later episode may extend


def _ends_on_tool_errors(limits: EpisodeLimits, env: Environment) -> bool:
    """`limits.tool_errors`, with `"auto"` resolved to the environment's `tool_errors` (default `"fail"`)."""
    if limits.tool_errors == "auto":
        return getattr(env, "tool_errors", "fail") != "observe"
    return limits.tool_errors == "fail"


async def _grade(env: Environment, traj: Trajectory) -> None:
    try:
        feedback = await env.grade(traj)
    except Exception as exc:
        traj.status = "error"
        traj.error = ErrorInfo.from_exception(
            exc if isinstance(exc, GradeError) else GradeError(f"{env.name}.grade raised {type(exc).__name__}: {exc}")
        )
        return
    traj.feedback.extend(feedback)
    traj.reward = hidden_reward(traj.feedback)
