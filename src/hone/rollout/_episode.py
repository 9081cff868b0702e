"""One episode: an environment, a model, a task; always returns a Trajectory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

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
    utcnow,
)
from hone.envs import Environment
from hone.models import ChatModel

from ._config import EpisodeLimits

log = logging.getLogger(__name__)


class _Stop(Exception):
    """Internal: the episode ended early with a status and maybe an error."""

    def __init__(self, status: str, reason: str, error: ErrorInfo | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error = error


async def _generate(
    model: ChatModel, messages: Sequence[Message], tools: Sequence[ToolSpec], sampling: Sampling
) -> ModelCall:
    try:
        return await model.generate(messages, tools, sampling)
    except HoneError:
        raise
    except Exception as exc:  # a backend bug or transport error: typed, never a crash of the run
        raise ModelError(f"{type(exc).__name__}: {exc}") from exc


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
) -> Trajectory:
    """Run `model` on `task` in `env` (a fresh episode instance) and grade the result.

    Failures never escape: they become the trajectory's `status` ("error" with a typed
    `error`, or "truncated" with a `stop_reason`). Spending goes to `account` (a child of
    it, if given), so a run Budget is enforced across concurrent episodes.
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
    try:
        if limits.timeout_s is None:
            await _loop(env, model, task, traj, sampling, limits, acct)
        else:
            async with asyncio.timeout(limits.timeout_s):
                await _loop(env, model, task, traj, sampling, limits, acct)
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


async def _loop(
    env: Environment,
    model: ChatModel,
    task: Task,
    traj: Trajectory,
    sampling: Sampling,
    limits: EpisodeLimits,
    acct: Account,
) -> None:
    try:
        reset = await env.reset(task)
    except HoneError:
        raise
    except Exception as exc:
        raise EnvError(f"{env.name}.reset({task.id}) raised {type(exc).__name__}: {exc}") from exc
    traj.prompt = list(reset.messages)
    traj.tools = list(reset.tools)
    messages = list(reset.messages)
    tool_calls_used = 0
    for turn in range(limits.max_turns):
        acct.reserve_call()
        call = await _generate(model, messages, reset.tools, sampling)
        acct.record_usage(call.usage.prompt_tokens, call.usage.completion_tokens, call.cost_usd)
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
            result = await env.step(call.message)
        except ToolError as exc:
            raise _Stop("error", "error", ErrorInfo.from_exception(exc, step_index=turn)) from exc
        except HoneError:
            raise
        except Exception as exc:
            raise EnvError(f"{env.name}.step raised {type(exc).__name__}: {exc}") from exc
        acct.record_env_step()
        step.observations = list(result.observations)
        step.feedback = [f.model_copy(update={"step_index": turn}) for f in result.feedback]
        messages.extend(result.observations)
        if result.tool_errors:
            first = result.tool_errors[0].model_copy(update={"step_index": turn})
            step.error = first
            if limits.tool_errors == "fail":
                raise _Stop("error", "error", first)
        if result.done:
            traj.answer = result.answer
            traj.stop_reason = "done"
            return
    raise _Stop("truncated", "max_turns")


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
    scores = [f.score for f in feedback if f.visibility == "hidden" and f.score is not None]
    traj.reward = sum(scores) / len(scores) if scores else None
