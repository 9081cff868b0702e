"""`summarize`: the figures a report states about a set of trajectories, with their cost."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from hone.core import Ledger, Trajectory

from ._stats import harmony, mean_ci, pass_at_k, wilson_interval

NO_SUBSET = "(none)"


class SubsetSummary(BaseModel):
    """Figures for one subset (`Trajectory.subset`, e.g. a difficulty level)."""

    model_config = ConfigDict(extra="forbid")

    n: int
    n_tasks: int
    n_passed: int
    accuracy: float
    ci: tuple[float, float] = Field(description="95% Wilson interval of `accuracy`.")
    mean_reward: float


class Summary(BaseModel):
    """What a set of trajectories achieved and what it cost.

    Conventions: a trajectory with `status="error"` counts as failed with reward 0 even if
    it carries a verdict or reward; otherwise a missing reward counts as 0 and "passed" is
    hidden grading's verdict (`Trajectory.passed`). Intervals are 95% (Wilson for
    proportions, Student t for non-binary rewards; see `mean_ci`). Figures needing at least
    one trajectory are None for an empty input; per-solved figures are None when nothing
    was solved; `pass_at_k` holds 1 and `k`, leaving `k` out when some task has fewer than
    `k` samples (the estimator needs n >= k).
    """

    model_config = ConfigDict(extra="forbid")

    n_trajectories: int = Field(description="Trajectories summarised (every sample of every task).")
    n_tasks: int = Field(description="Distinct (env, task_id) pairs.")
    samples_per_task: int = Field(description="The most samples any task has.")
    n_passed: int = Field(description="Trajectories that passed hidden grading.")
    mean_reward: float | None
    mean_reward_ci: tuple[float, float] | None
    accuracy: float | None = Field(description="Share of trajectories passed (pooled over samples).")
    accuracy_ci: tuple[float, float] | None
    k: int | None = Field(description="The k asked for, if any.")
    pass_at_1: float | None = Field(description="Mean over tasks of c/n.")
    pass_at_k: dict[int, float] = Field(description="Unbiased pass@k averaged over tasks, keyed by k.")
    by_subset: dict[str, SubsetSummary] = Field(
        description=f"Per subset, natural order; {NO_SUBSET!r} (last) for none."
    )
    harmony: float | None = Field(description="Evenness of subset accuracies (see `harmony`); None without subsets.")
    status_counts: dict[str, int]
    error_types: dict[str, int]
    ledger: Ledger = Field(description="Total spend over all trajectories (sum of their `usage`).")
    tokens_per_solved: float | None = Field(description="All tokens spent / trajectories passed.")
    calls_per_solved: float | None = Field(description="All model calls / trajectories passed.")
    cost_per_solved: float | None = Field(description="All USD cost / trajectories passed.")
    tool_calls_per_task: float | None = Field(description="All tool calls / tasks.")
    seconds: float = Field(description="Sum of episode wall seconds (not the run's elapsed time).")


def natural_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key putting L2 before L10: digit runs compare as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


class _Group:
    __slots__ = ("n", "passed", "reward", "tasks")

    def __init__(self) -> None:
        self.n = 0
        self.passed = 0
        self.reward = 0.0
        self.tasks: set[tuple[str, str]] = set()


def summarize(trajectories: Iterable[Trajectory], k: int | None = None) -> Summary:
    """Summarise trajectories (see `Summary` for every convention). One pass; fine for 100k."""
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rewards: list[float] = []
    n_passed = 0
    per_task: dict[tuple[str, str], list[int]] = {}  # (env, task_id) -> [samples, passed]
    groups: dict[str, _Group] = {}
    statuses: Counter[str] = Counter({"ok": 0, "truncated": 0, "error": 0})
    errors: Counter[str] = Counter()
    usage = Ledger()
    for t in trajectories:
        failed = t.status == "error"
        passed = not failed and t.passed
        reward = 0.0 if failed or t.reward is None else float(t.reward)
        rewards.append(reward)
        n_passed += passed
        key = (t.env, t.task_id)
        counts = per_task.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += passed
        group = groups.get(t.subset or NO_SUBSET)
        if group is None:
            group = groups[t.subset or NO_SUBSET] = _Group()
        group.n += 1
        group.passed += passed
        group.reward += reward
        group.tasks.add(key)
        statuses[t.status] += 1
        if t.error is not None:
            errors[t.error.type] += 1
        usage.add(t.usage)

    n = len(rewards)
    mean_reward = accuracy = None
    reward_ci = accuracy_ci = None
    if n:
        mean_reward, lo, hi = mean_ci(rewards)
        reward_ci = (lo, hi)
        accuracy = n_passed / n
        accuracy_ci = wilson_interval(n_passed, n)
    tasks = list(per_task.values())
    pass_at: dict[int, float] = {}
    for kk in sorted({1, k or 1}):
        if tasks and all(s >= kk for s, _ in tasks):
            pass_at[kk] = math.fsum(pass_at_k(s, c, kk) for s, c in tasks) / len(tasks)

    by_subset: dict[str, SubsetSummary] = {}
    if not (len(groups) == 1 and NO_SUBSET in groups):  # no subset information at all
        for name in sorted(groups, key=lambda g: (g == NO_SUBSET, natural_key(g))):  # "(none)" last
            g = groups[name]
            by_subset[name] = SubsetSummary(
                n=g.n,
                n_tasks=len(g.tasks),
                n_passed=g.passed,
                accuracy=g.passed / g.n,
                ci=wilson_interval(g.passed, g.n),
                mean_reward=g.reward / g.n,
            )

    def per_solved(total: float) -> float | None:
        return total / n_passed if n_passed else None

    return Summary(
        n_trajectories=n,
        n_tasks=len(tasks),
        samples_per_task=max((s for s, _ in tasks), default=0),
        n_passed=n_passed,
        mean_reward=mean_reward,
        mean_reward_ci=reward_ci,
        accuracy=accuracy,
        accuracy_ci=accuracy_ci,
        k=k,
        pass_at_1=pass_at.get(1),
        pass_at_k=pass_at,
        by_subset=by_subset,
        harmony=harmony({s: v.accuracy for s, v in by_subset.items()}) if by_subset else None,
        status_counts=dict(statuses),
        error_types=dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        ledger=usage,
        tokens_per_solved=per_solved(usage.tokens),
        calls_per_solved=per_solved(usage.calls),
        cost_per_solved=per_solved(usage.cost_usd),
        tool_calls_per_task=usage.tool_calls / len(tasks) if tasks else None,
        seconds=usage.seconds,
    )
