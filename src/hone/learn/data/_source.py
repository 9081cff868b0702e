"""Where learning data comes from: stored trajectories, filtered, scored and turned into chat dicts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hone.core import ConfigError, Message, ToolSpec, Trajectory, hidden_reward, stable_hash
from hone.store import TrajectoryQuery, TrajectoryStore

Source = TrajectoryStore | Iterable[Trajectory]


def _merge(query: TrajectoryQuery | None, filters: dict[str, Any]) -> TrajectoryQuery:
    unknown = sorted(set(filters) - set(TrajectoryQuery.model_fields))
    if unknown:
        known = ", ".join(TrajectoryQuery.model_fields)
        raise ConfigError(f"unknown trajectory filter(s) {', '.join(unknown)}; known: {known}")
    base = query.model_dump(exclude_unset=True) if query else {}
    return TrajectoryQuery.model_validate({**base, **filters})


def _matches(traj: Trajectory, q: TrajectoryQuery) -> bool:
    for name in ("run_id", "env", "split", "task_id", "status"):
        wanted = getattr(q, name)
        if wanted is not None and getattr(traj, name) != wanted:
            return False
    if q.min_reward is not None and (traj.reward is None or traj.reward < q.min_reward):
        return False
    return not (q.max_reward is not None and (traj.reward is None or traj.reward > q.max_reward))


def _describe(q: TrajectoryQuery) -> str:
    shown = [f"{k}={v!r}" for k, v in q.model_dump(exclude_none=True).items()]
    return ", ".join(shown) if shown else "no filters"


def load_trajectories(source: Source, query: TrajectoryQuery | None = None, **filters: Any) -> list[Trajectory]:
    """The trajectories of `source` (a `TrajectoryStore` or any iterable of them) matching the filters.

    Filters are `TrajectoryQuery` fields (`run_id`, `env`, `split`, `task_id`, `status`,
    `min_reward`, `max_reward`, `limit`); keyword filters override the same fields of `query`.
    An iterable is filtered with the same meaning as the store's SQL (a reward bound drops
    trajectories without a reward). Raises `ConfigError` when nothing matches.
    """
    q = _merge(query, filters)
    if isinstance(source, TrajectoryStore):
        found = list(source.query(q))
    else:
        found = [t for t in source if _matches(t, q)]
        if q.limit is not None:
            found = found[: q.limit]
    if not found:
        raise ConfigError(
            f"no trajectories match {_describe(q)}; check the filters (`hone runs` lists the stored runs)"
        )
    return found


def reward_of(traj: Trajectory) -> float | None:
    """The trajectory's reward; without one, what its hidden grading gives (`hone.core.hidden_reward`);
    None when neither exists."""
    if traj.reward is not None:
        return float(traj.reward)
    return hidden_reward(traj.feedback)


def is_success(traj: Trajectory, success_reward: float | None = None) -> bool:
    """Passed hidden grading, or (with `success_reward`) reached that reward; never an `error` trajectory."""
    if traj.status == "error" or not traj.steps:
        return False
    if traj.passed:
        return True
    return success_reward is not None and traj.reward is not None and traj.reward >= success_reward


def chat(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as the OpenAI-style dicts chat templates and TRL read (as `HFLocal.render` passes them).

    Tool-call arguments are the exact text the model wrote where known, else the parsed object.
    """
    return [m.to_openai(object_arguments=True) for m in messages]


def tool_dicts(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs in the OpenAI `tools` format."""
    return [t.to_openai() for t in tools]


def continuation(traj: Trajectory) -> list[Message]:
    """Everything after the opening prompt: each assistant turn and the observations it caused."""
    return traj.messages()[len(traj.prompt) :]


def _output_key(message: Message) -> dict[str, Any]:
    calls = [
        [c.name, c.arguments_raw if c.arguments_raw is not None else c.arguments] for c in message.tool_calls or []
    ]
    return {"content": message.content or "", "calls": calls}


def dedup_key(traj: Trajectory) -> str:
    """Same opening prompt, tools and assistant outputs give the same key (tool-call ids are ignored)."""
    return stable_hash(
        {
            "prompt": chat(traj.prompt),
            "tools": tool_dicts(traj.tools),
            "outputs": [_output_key(s.call.message) for s in traj.steps],
        },
        length=32,
    )


def message_key(message: Message) -> str:
    """A message's identity for prefix comparison (all fields, ids included)."""
    return stable_hash(message.model_dump(mode="json"), length=32)
