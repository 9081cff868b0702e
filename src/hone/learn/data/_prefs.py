"""Preference data: best-vs-worst pairs per task, step-level pairs between siblings, KTO labels."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from hone.core import ConfigError, Message, Trajectory
from hone.store import TrajectoryQuery

from ._records import Records
from ._source import (
    Source,
    chat,
    continuation,
    dedup_key,
    is_success,
    load_trajectories,
    message_key,
    reward_of,
    tool_dicts,
)


@dataclass
class PairStats:
    """Counts behind a `PairData`."""

    groups: int = 0  # groups with at least two scored trajectories
    pairs: int = 0
    below_margin: int = 0  # groups whose best and worst differ by less than the margin
    unscored: int = 0  # trajectories without a value (reward, hidden verdict; public value for step pairs)
    skipped: int = 0  # groups whose best and worst cannot be paired (different prompts, no diverging turn)


@dataclass
class PairData:
    """Preference pairs (format `preference`: `prompt`, `chosen`, `rejected`, `tools`) and their counts."""

    records: Records = field(default_factory=lambda: Records("preference"))
    stats: PairStats = field(default_factory=PairStats)


def step_value(traj: Trajectory) -> float | None:
    """What `step_pairs` compares siblings by: public values first, the reward last.

    A search-tree node's backed-up value (`meta["value"]` of a node with `visits`, as
    `hone.improve.MCTS` stores it), else the public verifier's score (`meta["public_score"]`),
    else `reward_of`. An honest search's candidates carry no reward, so their pairs are
    chosen from public signals only; an oracle search's values come from hidden grading.
    """
    meta = traj.meta
    visits, value = meta.get("visits"), meta.get("value")
    if isinstance(visits, int) and visits > 0 and isinstance(value, int | float):
        return float(value)
    public = meta.get("public_score")
    if isinstance(public, int | float):
        return float(public)
    return reward_of(traj)


def _scored(
    trajectories: list[Trajectory], stats: PairStats, value: Callable[[Trajectory], float | None] = reward_of
) -> list[tuple[float, Trajectory]]:
    out: list[tuple[float, Trajectory]] = []
    for traj in trajectories:
        score = value(traj)
        if score is None or not traj.steps:
            stats.unscored += 1
        else:
            out.append((score, traj))
    return out


def _best_worst(
    members: list[tuple[float, Trajectory]], margin: float, stats: PairStats
) -> tuple[Trajectory, Trajectory] | None:
    """The best and worst of a group (ties: the earlier sample), or None below the margin."""
    if len(members) < 2:
        return None
    stats.groups += 1
    ordered = sorted(members, key=lambda m: (m[1].sample, m[1].created_at, m[1].id))
    best = max(ordered, key=lambda m: m[0])
    worst = min(ordered, key=lambda m: m[0])
    if best[0] - worst[0] < margin - 1e-9 or best[0] == worst[0]:  # 1.0 - 0.8 is a margin of 0.2
        stats.below_margin += 1
        return None
    return best[1], worst[1]


def _no_pairs(what: str, stats: PairStats, margin: float, measure: str = "reward") -> ConfigError:
    return ConfigError(
        f"no preference pairs: {stats.groups} {what} with two or more scored trajectories, "
        f"{stats.below_margin} below the {measure} margin {margin:g}; sample more per task or lower margin="
    )


def preference_pairs(
    source: Source,
    *,
    margin: float = 0.5,
    query: TrajectoryQuery | None = None,
    **filters: Any,
) -> PairData:
    """Multi-turn preference pairs: the best vs the worst trajectory of each task's group.

    Groups are (run_id, task_id). A pair is made when the best reward exceeds the worst by
    at least `margin` (rewards fall back to 1/0 from hidden grading). `prompt` is the shared
    opening prompt; `chosen`/`rejected` are the whole continuations (assistant turns and tool
    results) of the better and the worse trajectory, in TRL's conversational preference
    format. Raises `ConfigError` when nothing matches or no group yields a pair.
    """
    data = PairData()
    groups: dict[tuple[str, str], list[Trajectory]] = defaultdict(list)
    for traj in load_trajectories(source, query, **filters):
        groups[(traj.run_id, traj.task_id)].append(traj)
    for members in groups.values():
        pair = _best_worst(_scored(members, data.stats), margin, data.stats)
        if pair is None:
            continue
        best, worst = pair
        if chat(best.prompt) != chat(worst.prompt):
            data.stats.skipped += 1
            continue
        row = {
            "prompt": chat(best.prompt),
            "chosen": chat(continuation(best)),
            "rejected": chat(continuation(worst)),
            "tools": tool_dicts(best.tools),
        }
        data.records.add(row, best.id, worst.id)
        data.stats.pairs += 1
    if not data.records:
        raise _no_pairs("task groups", data.stats, margin)
    return data


def _divergence(a: list[Message], b: list[Message]) -> int | None:
    """The index of the first differing message when both have an assistant turn there, else None."""
    k = 0
    while k < len(a) and k < len(b) and message_key(a[k]) == message_key(b[k]):
        k += 1
    if k == len(a) or k == len(b) or a[k].role != "assistant" or b[k].role != "assistant":
        return None
    return k


def step_pairs(
    source: Source,
    *,
    margin: float = 0.5,
    completion: Literal["turn", "rest"] = "turn",
    query: TrajectoryQuery | None = None,
    **filters: Any,
) -> PairData:
    """Step-level preference pairs between siblings of a search tree.

    Siblings are trajectories whose last parent (`parent_ids[-1]`) is the same: the children
    of one node of a stored search tree (`hone.improve.MCTS` stores its root, so depth-1
    nodes are siblings too). In each sibling group the best and worst by `step_value`
    (public values before rewards), at least `margin` apart, are compared:
    their common message prefix is the `prompt`, and `chosen`/`rejected` are the first
    differing assistant turn of each (`completion="turn"`) or everything from there on
    (`"rest"`). Pairs whose first difference is not an assistant turn (a tool gave other
    output) are skipped. Raises `ConfigError` when no sibling group yields a pair.
    """
    if completion not in ("turn", "rest"):
        raise ConfigError(f"completion must be 'turn' or 'rest', got {completion!r}")
    data = PairData()
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for traj in load_trajectories(source, query, **filters):
        if traj.parent_ids:
            groups[traj.parent_ids[-1]].append(traj)
    for members in groups.values():
        pair = _best_worst(_scored(members, data.stats, step_value), margin, data.stats)
        if pair is None:
            continue
        best, worst = pair
        a, b = best.messages(), worst.messages()
        k = _divergence(a, b)
        if k is None:
            data.stats.skipped += 1
            continue
        end_a, end_b = (k + 1, k + 1) if completion == "turn" else (len(a), len(b))
        row = {"prompt": chat(a[:k]), "chosen": chat(a[k:end_a]), "rejected": chat(b[k:end_b])}
        data.records.add({**row, "tools": tool_dicts(best.tools)}, best.id, worst.id)
        data.stats.pairs += 1
    if not data.records:
        raise _no_pairs("sibling groups (same parent_ids[-1])", data.stats, margin, "value")
    return data


def kto_data(
    source: Source,
    *,
    success_reward: float | None = None,
    dedup: bool = True,
    query: TrajectoryQuery | None = None,
    **filters: Any,
) -> Records:
    """Unpaired preference records for KTO: `{"prompt", "completion", "label", "tools"}`.

    `prompt` is the opening prompt, `completion` the whole continuation, `label` True for a
    success (passed hidden grading, or reward >= `success_reward`), False otherwise.
    With `dedup`, repeats (same prompt, tools and assistant outputs) count once.
    Trajectories without steps are left out. Raises `ConfigError` when nothing matches.
    """
    records = Records("unpaired_preference")
    seen: set[str] = set()
    for traj in load_trajectories(source, query, **filters):
        if not traj.steps:
            continue
        if dedup:
            key = dedup_key(traj)
            if key in seen:
                continue
            seen.add(key)
        row = {
            "prompt": chat(traj.prompt),
            "completion": chat(continuation(traj)),
            "label": is_success(traj, success_reward),
            "tools": tool_dicts(traj.tools),
        }
        records.add(row, traj.id)
    if not records:
        raise ConfigError("nothing to learn from: no matching trajectory has a model turn")
    return records
