"""BFCL as the loop's outside check: the start and the final checkpoint on `bfcl_n` tasks per category.

Each check is a child run of the loop (`<loop id>-bfcl<N>s-<iteration>`, kind `loop-eval`, temperature 0),
resumable like the held-out evaluations. Failures are counted by what `bfcl`'s grader (BFCL's AST rules,
`hone.feedback._toolmatch`) says went wrong first, in its hidden `bfcl_ast` feedback.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hone.core import Task, Trajectory
from hone.envs import Environment

BFCL_ENV = "bfcl"
VERDICT = "bfcl_ast"
FAILURES: dict[str, str] = {
    "wrong_function": "wrong function",
    "wrong_arguments": "missing or unexpected arguments",
    "wrong_values": "wrong values or types",
    "repeated_call": "a call repeated in one turn",
    "too_many_calls": "too many calls",
    "too_few_calls": "too few calls",
    "wrong_count": "too many or too few calls",
    "no_call": "no call",
    "malformed": "malformed call",
    "error": "episode error (no verdict)",
}
"""Failure kinds in report order, with their wording in report.md."""
_KIND = {
    "wrong_function": "wrong_function",
    "missing_argument": "wrong_arguments",
    "unexpected_argument": "wrong_arguments",
    "wrong_type": "wrong_values",
    "wrong_value": "wrong_values",
    "wrong_count": "wrong_count",
    "malformed": "malformed",
}

Evaluate = Callable[[Environment, str, list[Task]], list[Trajectory]]  # (env, run id, tasks) -> trajectories


@dataclass
class BFCLCheck:
    """One checkpoint's BFCL accuracy: overall, per category, and its failures counted by kind."""

    iteration: int
    run: str
    n: int  # tasks evaluated (bfcl_n per category)
    accuracy: float
    by_category: dict[str, float]
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


SAMPLE_SEED = 1
"""Seeds the check's sample. BFCL's files are ordered by topic, so the first N of a category are no fair sample:
the packaged `micro-tools` passed 3 of the first 20 `simple_python` tasks and 11 of all 400."""


def bfcl_tasks(env: Environment, per_category: int) -> list[Task]:
    """`per_category` tasks of each BFCL category, a seeded sample (`SAMPLE_SEED`): the same every check."""
    taken: Counter[str] = Counter()
    chosen: list[Task] = []
    for task in env.tasks("test", seed=SAMPLE_SEED):
        subset = task.subset or ""
        if taken[subset] < per_category:
            taken[subset] += 1
            chosen.append(task)
    return chosen


def failure(traj: Trajectory) -> str | None:
    """Why a BFCL trajectory failed (a key of `FAILURES`), None when it passed."""
    if traj.passed:
        return None
    found = [f for f in traj.feedback if f.visibility == "hidden" and f.name == VERDICT]
    if not found or not found[-1].evidence:
        return "error"
    evidence = found[-1].evidence
    kind = str(evidence.get("kind"))
    if kind == "wrong_count" and traj.tool_call_count == 0:
        return "no_call"
    made, expected = evidence.get("calls", traj.tool_call_count), evidence.get("expected")
    repeated = evidence.get("repeated", 0)
    # Older verdicts lack the counts, and a damaged one may hold anything (`type is`: a bool is no count).
    if kind == "wrong_count" and type(made) is int and type(expected) is int and type(repeated) is int:
        if made < expected:
            return "too_few_calls"
        # Calls that repeat one already made, and without them the count is right: the model did not stop.
        return "repeated_call" if repeated and made - repeated <= expected else "too_many_calls"
    return _KIND.get(kind, kind)


def summarise(iteration: int, run: str, trajectories: Sequence[Trajectory], seconds: float = 0.0) -> BFCLCheck:
    """A `BFCLCheck` from a BFCL run's trajectories (their `subset` is the category)."""
    by: dict[str, list[bool]] = {}
    for t in trajectories:
        by.setdefault(t.subset or "?", []).append(t.passed)
    kinds = Counter(k for t in trajectories if (k := failure(t)) is not None)
    n = len(trajectories)
    return BFCLCheck(
        iteration=iteration,
        run=run,
        n=n,
        accuracy=round(sum(t.passed for t in trajectories) / n, 4) if n else 0.0,
        by_category={c: round(sum(v) / len(v), 4) for c, v in by.items()},
        failures={k: kinds[k] for k in [*FAILURES, *sorted(set(kinds) - set(FAILURES))] if kinds[k]},
        seconds=round(seconds, 1),
    )


def bfcl_run(loop_id: str, iteration: int, per_category: int) -> str:
    """The id of the BFCL check of `iteration`'s checkpoint on `per_category` tasks per category.

    `s` marks the seeded sample: a check stored under the old id (the first N of each category) is not resumed
    or reused, so both ends of a loop are measured on the same tasks."""
    return f"{loop_id}-bfcl{per_category}s-{iteration}"


def run_check(env: Environment, evaluate: Evaluate, loop_id: str, iteration: int, per_category: int) -> BFCLCheck:
    """Evaluate (or resume) the check of `iteration`'s checkpoint and summarise it."""
    t0 = time.monotonic()
    run = bfcl_run(loop_id, iteration, per_category)
    trajectories = evaluate(env, run, bfcl_tasks(env, per_category))
    return summarise(iteration, run, trajectories, time.monotonic() - t0)


def change(checks: Sequence[BFCLCheck]) -> dict[str, float] | None:
    """Last check minus the first, in points of accuracy (0-1), overall and per category."""
    if len(checks) < 2:
        return None
    first, last = checks[0], checks[-1]
    out = {"all": round(last.accuracy - first.accuracy, 4)}
    for c in first.by_category:
        if c in last.by_category:
            out[c] = round(last.by_category[c] - first.by_category[c], 4)
    return out


def render(checks: Sequence[BFCLCheck]) -> list[str]:
    """report.md's BFCL section: accuracy per category by checkpoint, the change, the failures counted."""
    if not checks:
        return []
    cats = list(dict.fromkeys(c for check in checks for c in check.by_category))
    lines = [
        "",
        f"BFCL (hone's `bfcl` grader, BFCL's AST rules), {checks[0].n // max(1, len(cats))} tasks per category, "
        "temperature 0:",
        "",
        "| iteration | all | " + " | ".join(cats) + " | failures |",
        "|---" * (len(cats) + 3) + "|",
    ]
    for check in checks:
        cells = " | ".join(f"{check.by_category.get(c, 0.0):.0%}" for c in cats)
        failed = ", ".join(f"{FAILURES.get(k, k)} {v}" for k, v in check.failures.items()) or "none"
        lines.append(f"| {check.iteration} | {check.accuracy:.1%} | {cells} | {failed} |")
    delta = change(checks)
    if delta is not None:
        per = ", ".join(f"{c} {v * 100:+.1f}" for c, v in delta.items() if c != "all")
        lines += ["", f"BFCL change over the loop: {delta['all'] * 100:+.1f} points ({per})."]
    return lines


def from_dict(data: dict[str, Any]) -> BFCLCheck:
    """A `BFCLCheck` read back from `state.json`."""
    return BFCLCheck(**data)
