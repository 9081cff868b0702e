"""SFT data by rejection sampling: successful trajectories, de-duplicated, loss on the model's tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hone.core import ConfigError, Trajectory
from hone.store import TrajectoryQuery

from ._records import Records
from ._source import Source, chat, dedup_key, is_success, load_trajectories, tool_dicts
from ._tokens import TokenMismatch, chain_mismatches, has_token_ids, token_record


@dataclass
class SFTStats:
    """Counts behind an `SFTData`."""

    considered: int = 0  # trajectories matching the filters
    successful: int = 0  # passed (or reached `success_reward`)
    duplicates: int = 0  # successful ones dropped as repeats of an earlier one
    token_exact: int = 0  # kept as token records
    conversational: int = 0  # kept as conversational records
    chain_broken: int = 0  # had token ids, but the prefix chain broke: fell back to conversational


@dataclass
class SFTData:
    """Rejection-sampled SFT data.

    `tokens` (format `tokens`: `input_ids` + `assistant_masks`) holds the trajectories whose
    every step has token ids and whose prefix chain holds: exactly the tokens generated,
    loss on the completions only. `conversations` (format `conversational`: `messages` +
    `tools`) holds the rest; train on them with TRL's `assistant_only_loss=True` and a chat
    template with `{% generation %}` markers so the loss stays on assistant turns.
    `mismatches` lists why trajectories with token ids fell back.
    """

    conversations: Records = field(default_factory=lambda: Records("conversational"))
    tokens: Records = field(default_factory=lambda: Records("tokens"))
    mismatches: list[TokenMismatch] = field(default_factory=list)
    stats: SFTStats = field(default_factory=SFTStats)


def conversation_record(traj: Trajectory) -> dict[str, Any]:
    """`{"messages", "tools"}`: the whole conversation in TRL's conversational format."""
    return {"messages": chat(traj.messages()), "tools": tool_dicts(traj.tools)}


def _nothing_passed(n: int, success_reward: float | None) -> ConfigError:
    bar = "passed hidden grading" + (f" or reached reward >= {success_reward:g}" if success_reward is not None else "")
    hint = "collect more samples per task" + ("" if success_reward is not None else ", or set success_reward=")
    return ConfigError(f"nothing to learn from: none of the {n} matching trajectories {bar}; {hint}")


def sft_data(
    source: Source,
    *,
    success_reward: float | None = None,
    token_exact: bool = True,
    dedup: bool = True,
    query: TrajectoryQuery | None = None,
    **filters: Any,
) -> SFTData:
    """Successful trajectories of `source` as SFT records (rejection sampling).

    A trajectory is kept when hidden grading passed it, or its reward is at least
    `success_reward` (when given); `error` trajectories and ones without steps never are.
    With `dedup`, trajectories with the same prompt, tools and assistant outputs count once
    (the first is kept). With `token_exact`, trajectories whose steps all hold token ids and
    chain (each prompt extends the previous prompt + completion) become token records; a
    broken chain falls back to a conversational record and its mismatches are reported.
    Filters are `TrajectoryQuery` fields (`run_id`, `env`, `split`, `status`, `min_reward`...).
    Raises `ConfigError` when nothing matches or nothing succeeded.
    """
    trajectories = load_trajectories(source, query, **filters)
    data = SFTData()
    data.stats.considered = len(trajectories)
    seen: set[str] = set()
    for traj in trajectories:
        if not is_success(traj, success_reward):
            continue
        data.stats.successful += 1
        if dedup:
            key = dedup_key(traj)
            if key in seen:
                data.stats.duplicates += 1
                continue
            seen.add(key)
        if token_exact and has_token_ids(traj):
            record = token_record(traj)
            if record is not None:
                data.tokens.add(record, traj.id)
                data.stats.token_exact += 1
                continue
            data.stats.chain_broken += 1
            data.mismatches.extend(chain_mismatches(traj))
        data.conversations.add(conversation_record(traj), traj.id)
        data.stats.conversational += 1
    if not data.stats.successful:
        raise _nothing_passed(len(trajectories), success_reward)
    return data
