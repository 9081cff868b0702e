"""Reward parts: small functions from a Trajectory to a float."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hone.core import Trajectory, hidden_reward

RewardFn = Callable[[Trajectory], float]
"""A reward part: any callable from a trajectory to a float (composites are RewardFns too)."""


def format_reward(traj: Trajectory) -> float:
    """1.0 when the trajectory is well formed, else 0.0.

    Well formed: every tool call parsed (`ToolCall.parse_error` is None), no `error` status,
    and a final answer present (a non-blank `answer`).
    """
    if traj.status == "error" or traj.error is not None:
        return 0.0
    if any(c.parse_error is not None for s in traj.steps for c in s.call.message.tool_calls or []):
        return 0.0
    return 1.0 if traj.answer is not None and traj.answer.strip() else 0.0


def correctness_reward(traj: Trajectory) -> float:
    """The hidden grading score (`hone.core.hidden_reward`: the mean hidden `score`, a verdict
    without one counting 1.0/0.0); no hidden grading at all scores 0.0.
    """
    value = hidden_reward(traj.feedback)
    return 0.0 if value is None else value


def otc_decay(calls: int, minimum: int = 0, c: float = 4.0) -> float:
    """OTC's tool-call factor: 1.0 up to `minimum` calls, then cos(m*pi / (2m + c)) for m extra calls.

    From OTC-PO (Wang et al. 2025, "Acting Less is Reasoning More"): decreasing in the calls
    beyond the minimum, towards 0; a larger `c` decays more gently (c=4: 0.87 for one extra
    call, 0.71 for two, 0.5 for four).
    """
    if c <= 0:
        raise ValueError(f"c must be positive, got {c}")
    extra = max(0, calls - minimum)
    return math.cos(extra * math.pi / (2 * extra + c))


@dataclass(frozen=True)
class ToolEfficiency:
    """Correctness times OTC's decay in needless tool calls: `correct(traj) * otc_decay(calls, minimum, c)`.

    A right answer with at most `minimum` tool calls scores its full correctness; each call
    beyond that costs a little more; a wrong answer scores 0 however few calls it made.
    To estimate the minimum per group as OTC-GRPO does, use `minimum=minimum_calls(group)`.
    """

    minimum: int = 0
    c: float = 4.0
    correct: RewardFn = correctness_reward

    def __call__(self, traj: Trajectory) -> float:
        return self.correct(traj) * otc_decay(traj.tool_call_count, self.minimum, self.c)


def minimum_calls(trajectories: Iterable[Trajectory], correct: RewardFn = correctness_reward) -> int:
    """The fewest tool calls among the correct trajectories of a group (0 when none is correct)."""
    counts = [t.tool_call_count for t in trajectories if correct(t) > 0]
    return min(counts) if counts else 0


def tool_productivity(trajectories: Iterable[Trajectory], correct: RewardFn = correctness_reward) -> float:
    """Correct answers per tool call over a set (OTC's tool productivity): sum(correct) / sum(calls).

    Partial scores count as fractions of an answer. With no tool calls at all it is
    `math.inf` when something was right and 0.0 otherwise.
    """
    right = 0.0
    calls = 0
    for traj in trajectories:
        right += correct(traj)
        calls += traj.tool_call_count
    if calls == 0:
        return math.inf if right > 0 else 0.0
    return right / calls
