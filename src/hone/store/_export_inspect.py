"""`export_inspect`: a run as an inspect_ai eval log (`.eval`, or `.json`) with one sample per
trajectory, for `inspect view` and inspect's log tools. Built from inspect_ai's own types,
imported lazily: without `inspect_ai` the export is refused in one line before anything is written.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hone.core import ConfigError, Message, Trajectory, stable_hash

from ._base import TrajectoryStore
from ._export import _write_atomically
from ._export_formats import _all_feedback, _feedback_row

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample, EvalStatus
    from inspect_ai.model import ChatMessage, StopReason

    from ._base import RunInfo


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)  # stored naive times are UTC


_INSPECT_HINT = "inspect export needs inspect_ai: pip install inspect_ai"

# inspect's StopReason for the finish reasons hone's backends report
_STOP_REASONS: dict[str, StopReason] = {
    "stop": "stop",
    "eos": "stop",
    "length": "max_tokens",
    "tool_calls": "tool_calls",
}
# hone's RunStatus -> inspect's EvalStatus
_EVAL_STATUS: dict[str, EvalStatus] = {
    "done": "success",
    "running": "started",
    "interrupted": "cancelled",
    "failed": "error",
}


def _inspect_message(
    m: Message, *, source: Literal["input", "generate"] | None = None, model: str | None = None
) -> ChatMessage:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser
    from inspect_ai.tool import ToolCall as InspectToolCall
    from inspect_ai.tool import ToolCallError

    if m.role == "system":
        return ChatMessageSystem(content=m.text, source=source)
    if m.role == "user":
        return ChatMessageUser(content=m.text, source=source)
    if m.role == "tool":
        error = ToolCallError("unknown", m.error) if m.error is not None else None
        return ChatMessageTool(content=m.text, tool_call_id=m.tool_call_id, function=m.name, error=error)
    calls = m.tool_calls or []
    # inspect's ToolCall has no field for arguments that did not parse: keep the model's text beside it
    raw = {c.id: c.arguments_raw for c in calls if c.parse_error is not None}
    return ChatMessageAssistant(
        content=m.text,
        tool_calls=[
            InspectToolCall(id=c.id, function=c.name, arguments=dict(c.arguments), parse_error=c.parse_error)
            for c in calls
        ]
        or None,
        model=model,
        source=source,
        metadata={"arguments_raw": raw} if raw else None,
    )


def _inspect_sample(t: Trajectory) -> EvalSample:
    from inspect_ai.log import EvalError, EvalSample
    from inspect_ai.model import ChatCompletionChoice, ChatMessageAssistant, ModelOutput, ModelUsage
    from inspect_ai.scorer import CORRECT, INCORRECT, Score

    prompt = [_inspect_message(m, source="input") for m in t.prompt]
    messages = list(prompt)
    output = ModelOutput(model=t.model)
    for step in t.steps:
        reply = _inspect_message(step.call.message, source="generate", model=step.call.model)
        assert isinstance(reply, ChatMessageAssistant)
        stop = _STOP_REASONS.get(step.call.finish_reason or "", "unknown")
        output = ModelOutput(model=step.call.model, choices=[ChatCompletionChoice(message=reply, stop_reason=stop)])
        messages.append(reply)
        messages.extend(_inspect_message(o) for o in step.observations)
    hidden = [f.text for f in t.feedback if f.visibility == "hidden" and f.text]
    scores = {
        "passed": Score(
            value=CORRECT if t.passed else INCORRECT,
            answer=t.answer,
            explanation="\n".join(hidden) or None,
            metadata={"feedback": [_feedback_row(*x, x[2].evidence) for x in _all_feedback(t)]},
        )
    }
    if t.reward is not None:
        scores["reward"] = Score(value=float(t.reward), answer=t.answer)
    u = t.usage
    usage = {}
    if u.calls or u.tokens:
        usage[t.model] = ModelUsage(
            input_tokens=u.prompt_tokens,
            output_tokens=u.completion_tokens,
            total_tokens=u.tokens,
            total_cost=u.cost_usd or None,
        )
    error = None
    if t.error is not None:
        error = EvalError(message=f"{t.error.type}: {t.error.message}", traceback=t.error.raw or "", traceback_ansi="")
    return EvalSample(
        id=t.task_id,
        epoch=t.sample + 1,  # inspect counts epochs from 1, hone samples from 0
        input=prompt or "",
        target="",  # a trajectory does not keep its task's target (hidden grading's)
        messages=messages,
        output=output,
        scores=scores,
        metadata={
            "task_id": t.task_id,
            "sample": t.sample,
            "trajectory_id": t.id,
            "run_id": t.run_id,
            "env_version": t.env_version,
            "split": t.split,
            "subset": t.subset,
            "status": t.status,
            "stop_reason": t.stop_reason,
            "reward": t.reward,
            "passed": t.passed,
            "usage": u.model_dump(),
            "tools": [tool.to_openai() for tool in t.tools],
            "strategy": t.strategy,
            "op": t.op,
            "parent_ids": t.parent_ids,
            "tags": t.tags,
            "meta": t.meta,
        },
        model_usage=usage,
        started_at=_utc(t.created_at).isoformat(),
        completed_at=_utc(t.finished_at).isoformat() if t.finished_at else None,
        total_time=u.seconds or None,
        uuid=t.id,
        error=error,
    )


def _mean_stderr(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (sample std / sqrt(n), as inspect's `stderr` metric)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def _inspect_scores(trajs: list[Trajectory]) -> list[Any]:
    from inspect_ai.log import EvalMetric, EvalScore

    if not trajs:
        return []
    acc, acc_err = _mean_stderr([1.0 if t.passed else 0.0 for t in trajs])
    metrics = {"accuracy": EvalMetric(name="accuracy", value=acc), "stderr": EvalMetric(name="stderr", value=acc_err)}
    scores = [EvalScore(name="passed", scorer="passed", scored_samples=len(trajs), unscored_samples=0, metrics=metrics)]
    rewards = [float(t.reward) for t in trajs if t.reward is not None]
    if rewards:
        mean, err = _mean_stderr(rewards)
        scores.append(
            EvalScore(
                name="reward",
                scorer="reward",
                scored_samples=len(rewards),
                unscored_samples=len(trajs) - len(rewards),
                metrics={"mean": EvalMetric(name="mean", value=mean), "stderr": EvalMetric(name="stderr", value=err)},
            )
        )
    return scores


def _inspect_log(run_id: str, run: RunInfo | None, trajs: list[Trajectory], samples: list[EvalSample]) -> EvalLog:
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalResults, EvalSpec, EvalStats
    from inspect_ai.model import ModelUsage

    from hone import __version__  # not at the top: importing `hone` imports this package

    first = trajs[0] if trajs else None
    env = first.env if first else (run.env if run else "")
    model = run.model if run else (first.model if first else "")
    split = run.split if run else (first.split if first else None)
    created = _utc(run.created_at if run else (first.created_at if first else datetime.now(UTC))).isoformat()
    task_ids = sorted({t.task_id for t in trajs})
    usage: dict[str, ModelUsage] = {}
    for sample in samples:
        for name, used in sample.model_usage.items():
            usage[name] = usage[name] + used if name in usage else used
    hone_meta: dict[str, Any] = {"run_id": run_id}
    if run is not None:
        hone_meta.update(kind=run.kind, status=run.status, parent_id=run.parent_id, config=run.config)
    finished = run is not None and run.status != "running"
    return EvalLog(
        status=_EVAL_STATUS[run.status] if run else "success",
        eval=EvalSpec(
            eval_id=stable_hash({"hone_run": run_id}, length=22),
            run_id=run_id,
            created=created,
            task=env,
            task_id=stable_hash({"hone_run": run_id, "env": env}, length=22),
            task_version=first.env_version if first else 0,
            dataset=EvalDataset(name=f"{env}:{split}" if split else env, samples=len(task_ids), sample_ids=task_ids),
            model=model,
            config=EvalConfig(epochs=max((t.sample for t in trajs), default=0) + 1),
            packages={"hone": __version__},
            metadata={"hone": hone_meta},
        ),
        results=EvalResults(total_samples=len(samples), completed_samples=len(samples), scores=_inspect_scores(trajs)),
        stats=EvalStats(
            started_at=created,
            completed_at=_utc(run.updated_at).isoformat() if run and finished else "",
            model_usage=usage,
        ),
        samples=samples,
    )


def export_inspect(store: TrajectoryStore, run_id: str, path: str | Path) -> int:
    """Write a run as an inspect_ai eval log (needs `inspect_ai`); returns the number of samples.

    One `EvalSample` per trajectory: id = task id, epoch = sample + 1, `input` the prompt,
    `messages` the whole conversation as inspect's chat messages (assistant tool calls with
    parsed arguments, tool results with their call ids and errors), `output` the last reply,
    scores `passed` ("C"/"I": hidden grading's verdict, with every feedback item in its
    metadata, `visibility` and `scope` marked) and `reward` (when set); metadata holds the
    task id, sample, subset, status, usage and tools, `model_usage` the trajectory's tokens
    and cost. `target` is empty: a trajectory does not keep its task's hidden target. The
    eval spec names the environment as the task, the run's model and creation time; results
    hold accuracy (the share passed, as `hone show` counts it) and the mean reward.

    A `.json` path gets inspect's JSON format, any other its `.eval` format (which `inspect
    view` lists from a log directory whatever the file's name). The log is built in memory.
    """
    try:
        import inspect_ai.log as inspect_log
    except ImportError as exc:
        raise ConfigError(_INSPECT_HINT) from exc
    target = Path(path)
    fmt: Literal["eval", "json"] = "json" if target.suffix.lower() == ".json" else "eval"
    trajs = list(store.query(run_id=run_id))
    samples = [_inspect_sample(t) for t in trajs]
    log = _inspect_log(run_id, store.get_run(run_id), trajs, samples)

    def write(tmp: Path) -> int:
        inspect_log.write_eval_log(log, str(tmp), format=fmt)
        return len(samples)

    return _write_atomically(target, write)
