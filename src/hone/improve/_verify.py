"""The default public verifier: a score from what an agent may legitimately see.

An environment's public step feedback with a score (a docstring example passing, a test
failing) is used when there is some. Otherwise, for tool environments, the verifier checks
the answer against the tool results in the transcript: an answer that repeats a result the
calculator printed is grounded in an execution; one that appears from nowhere is not. It
never reads hidden grading.
"""

from __future__ import annotations

from hone.core import Trajectory
from hone.envs import numbers_match


def tool_results(traj: Trajectory) -> list[str]:
    """The text of every tool observation whose call did not fail (`Message.error` is None)."""
    return [o.text.strip() for s in traj.steps for o in s.observations if o.role == "tool" and o.error is None]


def execution_errors(traj: Trajectory) -> list[str]:
    """Public evidence that a step went wrong: step errors and failed tool calls (their observation text)."""
    found = [s.error.message for s in traj.steps if s.error is not None]
    found += [o.text for s in traj.steps for o in s.observations if o.error is not None]
    return found


def grounded(traj: Trajectory) -> bool:
    """Whether the answer equals (numerically, or as text) a tool result in the transcript."""
    if traj.answer is None:
        return False
    return any(numbers_match(traj.answer, r) or traj.answer.strip() == r for r in tool_results(traj))


def public_score(traj: Trajectory) -> float:
    """A score in [0, 1] from public signals only.

    0 for no answer or a failed attempt. If public feedback carries scores, their mean.
    Otherwise 1.0 for an answer grounded in a tool result, 0.5 for an answer with no tool
    evidence either way, 0.25 for an ungrounded answer after tool errors.
    """
    if traj.status == "error" or traj.answer is None or not traj.answer.strip():
        return 0.0
    scores = [f.score for f in traj.public_feedback() if f.score is not None]
    if scores:
        return max(0.0, min(1.0, sum(scores) / len(scores)))
    if grounded(traj):
        return 1.0
    return 0.25 if execution_errors(traj) else 0.5


def step_ok(traj: Trajectory) -> float:
    """A partial trajectory's public value: 0 after an execution error in its last step, else 0.5,
    or `public_score` when it is finished."""
    if traj.answer is not None or traj.status != "ok" or not traj.partial:
        return public_score(traj)
    if not traj.steps:
        return 0.5
    last = traj.steps[-1]
    bad = last.error is not None or any(o.error is not None for o in last.observations)
    return 0.0 if bad else 0.5


def feedback_text(traj: Trajectory) -> str:
    """A one-line summary of the public feedback on an attempt (what refine and reflexion show)."""
    if traj.status == "error" and traj.error is not None:
        return f"the attempt failed ({traj.error.type}: {traj.error.message[:120]})"
    texts = [f.text for f in traj.public_feedback() if f.text]
    if texts:
        return "; ".join(t.strip()[:160] for t in texts[-3:])
    if traj.answer is None:
        return "no final answer"
    errors = execution_errors(traj)
    if errors:
        return f"a tool call failed ({errors[-1].strip()[:120]})"
    if not grounded(traj):
        return "the answer matches no calculation result"
    return "no public feedback"
