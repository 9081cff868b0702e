"""The loop's focused collection: subsets weighted by p(1-p) of the last collection's success rate."""

from __future__ import annotations

from hone.core import Feedback, Task, Trajectory
from hone.learn.loop._focus import FLOOR_SOLVED, FLOOR_UNSOLVED, allocate, focus_tasks, pick, subset_rates, weight


def _pool(per_level: int = 40, levels: int = 5) -> list[Task]:
    return [Task(id=f"L{lv}-{i}", meta={"level": f"L{lv}"}) for i in range(per_level) for lv in range(1, levels + 1)]


def _traj(level: str, passed: bool, n: int) -> Trajectory:
    verdict = Feedback(source="verifier", name="exact", passed=passed, visibility="hidden")
    return Trajectory(
        run_id="r", task_id=f"{level}-x", sample=n, env="arith", model="m", subset=level, feedback=[verdict]
    )


def test_allocate_is_proportional_and_exact() -> None:
    assert allocate({"a": 1, "b": 1}, 10) == {"a": 5, "b": 5}
    assert allocate({"a": 3, "b": 1}, 10) == {"a": 8, "b": 2}  # 7.5 / 2.5: ties go to the first named
    assert sum(allocate({"a": 0.1, "b": 0.25, "c": 0.03}, 128).values()) == 128


def test_subsets_always_or_never_solved_get_the_floor() -> None:
    rates = {"L1": 1.0, "L2": 0.5, "L3": 0.5, "L4": 0.0, "L5": 0.0}
    tasks, counts = focus_tasks(_pool(60), 100, rates)
    assert len(tasks) == 100 and sum(counts.values()) == 100
    assert weight(1.0) == FLOOR_SOLVED and weight(0.0) == FLOOR_UNSOLVED and weight(0.5) == 0.25
    # Shares 0.08 : 0.25 : 0.25 : 0.02 : 0.02 of 100 (largest remainder): mastered L1 is rehearsed,
    # never-solved L4/L5 keep a trickle, the learnable middle gets the rest.
    assert counts == {"L1": 13, "L2": 41, "L3": 40, "L4": 3, "L5": 3}
    assert [t.id for t in tasks] == [t.id for t in _pool(60) if t.id in {x.id for x in tasks}]  # pool order kept
    _, capped = focus_tasks(_pool(40), 100, rates)  # only 40 per level: L2/L3's excess goes to the others
    assert capped == {"L1": 14, "L2": 40, "L3": 40, "L4": 3, "L5": 3}


def test_a_small_subset_hands_its_excess_on() -> None:
    pool = [t for t in _pool() if t.subset != "L2" or t.id.endswith("-0")]  # one L2 task only
    tasks, counts = focus_tasks(pool, 50, {"L1": 0.5, "L2": 0.5, "L3": 0.9})
    assert counts["L2"] == 1 and len(tasks) == 50 and sum(counts.values()) == 50
    assert counts["L1"] > counts["L4"] == counts["L5"] > counts["L3"]  # unseen L4/L5: the mean weight


def test_pick_without_a_previous_collection_takes_the_first_n() -> None:
    tasks, counts = pick(_pool(), 10, [])
    assert [t.id for t in tasks] == [t.id for t in _pool()[:10]] and counts == {f"L{i}": 2 for i in range(1, 6)}
    rates = subset_rates([_traj("L1", True, 0), _traj("L1", False, 1), _traj("L2", True, 0)])
    assert rates == {"L1": 0.5, "L2": 1.0}
    _, counts = pick(_pool(), 60, [_traj("L1", True, 0), _traj("L1", False, 1), _traj("L2", True, 0)])
    assert counts["L1"] > counts["L2"]  # L1 still teaches, L2 is saturated; L3-L5 unseen get the mean weight


def test_balanced_caps_each_subsets_successes_at_the_median() -> None:
    from hone.learn.loop._focus import balanced

    trajs = (
        [_traj("no_tool", True, n) for n in range(30)]
        + [_traj("single", True, n) for n in range(5)]
        + [_traj("choice", True, n) for n in range(3)]
        + [_traj("chain", True, n) for n in range(1)]
        + [_traj("single", False, n) for n in range(10, 20)]
    )
    kept, dropped = balanced(trajs, seed=0)
    passed: dict[str, int] = {}
    for t in kept:
        if t.passed:
            passed[t.subset or ""] = passed.get(t.subset or "", 0) + 1
    # counts 30, 5, 3, 1: the median is 4, so only the flooding subsets lose any
    assert passed == {"no_tool": 4, "single": 4, "choice": 3, "chain": 1}
    assert dropped == {"no_tool": 26, "single": 1}
    assert sum(not t.passed for t in kept) == 10  # failures pass through (the data builder ignores them)
    assert [t for t in trajs if t in kept] == kept  # order kept
    assert balanced(trajs, seed=0) == (kept, dropped) and balanced(trajs, seed=1)[0] != kept
    one = [_traj("single", True, n) for n in range(9)]
    assert balanced(one) == (one, {})  # one subset: nothing to balance against
