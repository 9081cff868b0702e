"""Where to spend the next collection: subsets weighted by how much they can still teach.

A subset (an arith level, say) that the policy always solves or never solves gives
expert iteration nothing new and GRPO zero-variance groups (B-STaR's collapse). Its
learning signal goes as p(1 - p) in the per-sample success rate p, so the next collection
spreads its tasks over subsets in proportion to that, measured on the previous
collection (the train split: held-out results never steer training), with floors so
mastered subsets are rehearsed and none is dropped for good.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from hone.core import Task, Trajectory

# Floors on p(1-p) (which peaks at 0.25): a mastered subset keeps about what p = 0.9 would get,
# so its skill is rehearsed (without it the micro model lost 6 points on level 1 in 3 iterations);
# a subset never solved keeps a trickle, so the loop notices when it becomes learnable.
FLOOR_SOLVED = 0.08
FLOOR_UNSOLVED = 0.02


def subset_rates(trajectories: Iterable[Trajectory]) -> dict[str, float]:
    """Per-sample success rate of each subset (trajectories without a subset are left out)."""
    seen: dict[str, list[bool]] = defaultdict(list)
    for t in trajectories:
        if t.subset is not None:
            seen[t.subset].append(bool(t.passed))
    return {s: sum(v) / len(v) for s, v in seen.items() if v}


def allocate(weights: dict[str, float], n: int) -> dict[str, int]:
    """`n` split in proportion to `weights` (largest remainder; ties go to the subset named first)."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("allocate: weights must have a positive sum")
    exact = {s: n * w / total for s, w in weights.items()}
    counts = {s: int(x) for s, x in exact.items()}
    order = sorted(weights, key=lambda s: counts[s] - exact[s])
    for s in order[: n - sum(counts.values())]:
        counts[s] += 1
    return counts


def weight(rate: float) -> float:
    """How much of the next collection a subset with success `rate` deserves: p(1-p), floored."""
    return max(rate * (1 - rate), FLOOR_SOLVED if rate >= 0.5 else FLOOR_UNSOLVED)


def focus_tasks(pool: Sequence[Task], n: int, rates: dict[str, float]) -> tuple[list[Task], dict[str, int]]:
    """`n` tasks of `pool`, spread over subsets by p(1 - p) of their success `rates` (floored).

    Subsets without a rate get the mean weight; a subset with fewer tasks in `pool` than it
    is allotted gives the rest to the others. Returns the tasks (in pool order) and the
    count per subset.
    """
    by_subset: dict[str, list[Task]] = defaultdict(list)
    for task in pool:
        by_subset[task.subset or ""].append(task)
    known = {s: weight(rates[s]) for s in by_subset if s in rates}
    default = sum(known.values()) / len(known) if known else 1.0
    weights = {s: known.get(s, default) for s in by_subset}
    counts = allocate(weights, min(n, len(pool)))
    while any(counts[s] > len(by_subset[s]) for s in counts):  # a small subset: hand its excess on
        full = {s for s in counts if counts[s] >= len(by_subset[s])}
        spare = sum(counts[s] - len(by_subset[s]) for s in full)
        for s in full:
            counts[s] = len(by_subset[s])
        rest = {s: weights[s] for s in counts if s not in full}
        if not rest:
            break
        for s, extra in allocate(rest, spare).items():
            counts[s] += extra
    chosen = {t.id for s, tasks in by_subset.items() for t in tasks[: counts[s]]}
    return [t for t in pool if t.id in chosen], {s or "-": c for s, c in counts.items()}


def pick(pool: Sequence[Task], n: int, previous: Iterable[Trajectory]) -> tuple[list[Task], dict[str, int]]:
    """The next collection's tasks: focused by `previous` (the last collection), or the first `n` of `pool`."""
    rates = subset_rates(previous)
    if not rates:
        first = list(pool[:n])
        counts: dict[str, int] = defaultdict(int)
        for t in first:
            counts[t.subset or "-"] += 1
        return first, dict(counts)
    return focus_tasks(pool, n, rates)


def balanced(trajectories: Sequence[Trajectory], seed: int = 0) -> tuple[list[Trajectory], dict[str, int]]:
    """`trajectories` with each subset's passed ones capped at the median count of the subsets that have any
    (a seeded random choice of which to keep; failed ones and those without a subset pass through).

    Expert iteration keeps successes, and the easiest level supplies most of them: from micro-tools' run G
    snapshot, toolgen's `no_tool` tasks (answer without calling) flooded the kept data, held-out `no_tool`
    went from 0% to 54-69% and levels 1-2 fell from 36% to 11%. Returns the trajectories (in their order)
    and how many passed ones each capped subset dropped.
    """
    import random
    import statistics

    passed: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(trajectories):
        if t.passed and t.subset is not None:
            passed[t.subset].append(i)
    if len(passed) < 2:
        return list(trajectories), {}
    cap = max(1, int(statistics.median(len(v) for v in passed.values())))
    rng = random.Random(f"hone-balance-{seed}")
    dropped_ids: set[int] = set()
    dropped: dict[str, int] = {}
    for subset, ids in sorted(passed.items()):
        if len(ids) > cap:
            out = rng.sample(ids, len(ids) - cap)
            dropped_ids.update(out)
            dropped[subset] = len(out)
    return [t for i, t in enumerate(trajectories) if i not in dropped_ids], dropped
