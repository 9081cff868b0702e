"""GRPO groups: the samples of each (run, task) with group-relative advantages."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hone.core import ConfigError, Trajectory
from hone.store import TrajectoryQuery

from ._records import Records
from ._source import Source, chat, continuation, load_trajectories, reward_of, tool_dicts


@dataclass
class GroupStats:
    """Counts behind a `GRPOData`. Zero-variance groups (every sample scored alike) teach nothing."""

    groups: int = 0
    trajectories: int = 0
    zero_variance_groups: int = 0
    unscored: int = 0  # trajectories without a reward or a hidden verdict (left out)

    @property
    def zero_variance_fraction(self) -> float:
        """The share of groups whose rewards are all equal (0.0 when there are no groups)."""
        return self.zero_variance_groups / self.groups if self.groups else 0.0

    @property
    def mean_group_size(self) -> float:
        """Scored trajectories per group."""
        return self.trajectories / self.groups if self.groups else 0.0


@dataclass
class GRPOData:
    """Group-relative data.

    `records` (format `grpo`) has one row per scored trajectory: `prompt`, `completion`
    (the whole continuation), `tools`, `reward`, `advantage`, and `group`/`run_id`/`task_id`
    naming its group. `prompts` (format `prompt_only`) has one row per group (`prompt`,
    `tools`, `task_id`), the input TRL's `GRPOTrainer` samples from online.
    """

    records: Records = field(default_factory=lambda: Records("grpo"))
    prompts: Records = field(default_factory=lambda: Records("prompt_only"))
    stats: GroupStats = field(default_factory=GroupStats)


def group_advantages(rewards: list[float], *, eps: float = 1e-4, scale: bool = True) -> tuple[list[float], bool]:
    """(r - mean) / (std + eps) for one group, and whether its rewards have zero variance.

    As TRL's `GRPOTrainer` computes them (`scale_rewards="group"`): std with Bessel's
    correction (0 for a group of one), eps 1e-4; `scale=False` leaves out the division.
    """
    n = len(rewards)
    mean = sum(rewards) / n
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (n - 1)) if n > 1 else 0.0
    zero = math.isclose(std, 0.0, abs_tol=1e-8)
    if not scale:
        return [r - mean for r in rewards], zero
    return [(r - mean) / (std + eps) for r in rewards], zero


def grpo_groups(
    source: Source,
    *,
    eps: float = 1e-4,
    scale: bool = True,
    query: TrajectoryQuery | None = None,
    **filters: Any,
) -> GRPOData:
    """Group the trajectories by (run_id, task_id) and give each its group-relative advantage.

    Rewards fall back to 1/0 from hidden grading; trajectories with neither, or without
    steps, are left out and counted as `unscored`. `stats.zero_variance_fraction` says how
    much of the data teaches nothing. Raises `ConfigError` when nothing matches or nothing
    is scored.
    """
    data = GRPOData()
    groups: dict[tuple[str, str], list[tuple[float, Trajectory]]] = defaultdict(list)
    for traj in load_trajectories(source, query, **filters):
        score = reward_of(traj)
        if score is None or not traj.steps:
            data.stats.unscored += 1
            continue
        groups[(traj.run_id, traj.task_id)].append((score, traj))
    for (run_id, task_id), members in groups.items():
        advantages, zero = group_advantages([m[0] for m in members], eps=eps, scale=scale)
        data.stats.groups += 1
        data.stats.trajectories += len(members)
        data.stats.zero_variance_groups += zero
        group = f"{run_id}/{task_id}"
        first = members[0][1]
        prompt_row = {"prompt": chat(first.prompt), "tools": tool_dicts(first.tools), "task_id": task_id}
        data.prompts.add(prompt_row, *(m[1].id for m in members))
        for (reward, traj), advantage in zip(members, advantages, strict=True):
            row = {
                "prompt": chat(traj.prompt),
                "completion": chat(continuation(traj)),
                "tools": tool_dicts(traj.tools),
                "reward": reward,
                "advantage": advantage,
                "group": group,
                "run_id": run_id,
                "task_id": task_id,
            }
            data.records.add(row, traj.id)
    if not data.records:
        raise ConfigError(
            f"nothing to learn from: none of the {data.stats.unscored} matching trajectories has a reward "
            "or a hidden verdict; grade them first"
        )
    return data
