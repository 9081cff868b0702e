"""Tool-use reward parts: hidden feedback for precision and completeness, ToolRL, Tool-Star, OTC.

`tool_calls_feedback` and `completeness_feedback` turn a grading into hidden `Feedback`; the
reward parts read that feedback back from `traj.feedback`, so they score stored trajectories
without re-grading. `rewards` names them for selection by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hone.core import Feedback, Registry, Trajectory

from ._compose import Composite, RewardResult, distinct_tools, hierarchical
from ._parts import RewardFn, ToolEfficiency, correctness_reward, format_reward, tool_productivity
from ._toolscore import ReferenceVerdict, ToolCallScore, calls_by_step, schema_problem, score_tool_calls

__all__ = [
    "COMPLETENESS",
    "TOOL_CALLS",
    "OTCReward",
    "ReferenceVerdict",
    "ToolCallScore",
    "ToolRLReward",
    "ToolStarReward",
    "calls_by_step",
    "completeness_feedback",
    "completeness_productivity",
    "completeness_reward",
    "make_reward",
    "rewards",
    "schema_problem",
    "score_tool_calls",
    "tool_call_score",
    "tool_calls_feedback",
    "tool_format_reward",
    "tool_precision_reward",
]


TOOL_CALLS = "tool_calls"
COMPLETENESS = "completeness"


def tool_calls_feedback(score: ToolCallScore) -> Feedback:
    """Hidden feedback named `tool_calls`: `score` is `score.precision`, the whole score is the
    evidence, and `passed` stays None so it never decides `Trajectory.passed`."""
    text = (
        f"{score.matched}/{score.reference} reference calls matched, {score.made} made"
        f" ({score.invalid} invalid, {len(score.extra)} unpaired); precision {score.precision:.3f}"
    )
    return Feedback(
        source="verifier",
        name=TOOL_CALLS,
        score=score.precision,
        passed=None,
        text=text,
        evidence=score.model_dump(mode="json"),
        visibility="hidden",
    )


def completeness_feedback(state_ok: bool, answer_ok: bool | None, detail: str) -> Feedback:
    """Hidden feedback named `completeness`: passed (score 1.0) when the final state is right and
    the answer, where one is checked (`answer_ok` not None), is right too; `detail` says why."""
    passed = state_ok and answer_ok is not False
    return Feedback(
        source="verifier",
        name=COMPLETENESS,
        score=1.0 if passed else 0.0,
        passed=passed,
        text=detail,
        evidence={"state_ok": state_ok, "answer_ok": answer_ok},
        visibility="hidden",
    )


def _hidden(traj: Trajectory, name: str) -> Feedback | None:
    """The last hidden feedback called `name` (a regraded trajectory keeps the newest)."""
    found = [f for f in traj.feedback if f.visibility == "hidden" and f.name == name]
    return found[-1] if found else None


def tool_call_score(traj: Trajectory) -> ToolCallScore | None:
    """The `ToolCallScore` recorded in a trajectory's hidden `tool_calls` feedback, if any."""
    fb = _hidden(traj, TOOL_CALLS)
    return None if fb is None or fb.evidence is None else ToolCallScore.model_validate(fb.evidence)


def tool_precision_reward(traj: Trajectory) -> float:
    """The hidden `tool_calls` score (`ToolCallScore.precision`, in [0, 1]); 0.0 when ungraded."""
    fb = _hidden(traj, TOOL_CALLS)
    return 0.0 if fb is None or fb.score is None else fb.score


def completeness_reward(traj: Trajectory) -> float:
    """1.0 when the hidden `completeness` check passed, else 0.0 (also when there is none)."""
    fb = _hidden(traj, COMPLETENESS)
    if fb is None:
        return 0.0
    if fb.score is not None:
        return fb.score
    return 1.0 if fb.passed else 0.0


def tool_format_reward(traj: Trajectory) -> float:
    """1.0 when `format_reward` holds (calls parsed, no error, an answer) and the graded calls
    include none invalid (unknown tool, schema broken); else 0.0. Ungraded: `format_reward` alone."""
    if format_reward(traj) <= 0:
        return 0.0
    score = tool_call_score(traj)
    return 0.0 if score is not None and score.invalid else 1.0


@dataclass(frozen=True)
class ToolRLReward:
    """ToolRL (Qian et al. 2025): `format_weight * format + correct_weight * correctness`.

    format is `tool_format_reward` (0 or 1); correctness is `ToolCallScore.toolrl_correctness`
    in [-3, 3] (-3 when ungraded): tool names, argument names and argument values, each
    matched and scaled by S_max. ToolRL shifts emphasis from format to correctness as
    training goes on: `at(progress)` gives the reward at `progress` in [0, 1], the weights
    moving linearly to `final_format_weight` / `final_correct_weight` (None: unchanged).
    """

    format_weight: float = 1.0
    correct_weight: float = 1.0
    final_format_weight: float | None = None
    final_correct_weight: float | None = None

    def at(self, progress: float) -> ToolRLReward:
        """This reward with its weights at `progress` (0 = start of training, 1 = end)."""
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"progress must be in [0, 1], got {progress}")

        def move(start: float, end: float | None) -> float:
            return start if end is None else start + (end - start) * progress

        return replace(
            self,
            format_weight=move(self.format_weight, self.final_format_weight),
            correct_weight=move(self.correct_weight, self.final_correct_weight),
        )

    def parts(self, traj: Trajectory) -> dict[str, float]:
        """The raw parts: `format` (0 or 1) and `correct` (in [-3, 3])."""
        score = tool_call_score(traj)
        correct = -3.0 if score is None else score.toolrl_correctness()
        return {"format": tool_format_reward(traj), "correct": correct}

    def __call__(self, traj: Trajectory) -> float:
        parts = self.parts(traj)
        return self.format_weight * parts["format"] + self.correct_weight * parts["correct"]


@dataclass(frozen=True)
class ToolStarReward:
    """Tool-Star (Dong et al. 2025) hierarchical reward.

    -1 when the format is wrong (`format`, default `tool_format_reward`); 0 when the format is
    right and the answer (`answer`, default `completeness_reward`) is wrong; otherwise the
    answer score plus `bonus` when at least `min_tools` distinct tools were called.
    """

    bonus: float = 0.1
    min_tools: int = 2
    format: RewardFn = tool_format_reward
    answer: RewardFn = completeness_reward
    _composite: Composite = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        composite = hierarchical(
            self.format, self.answer, bonus=self.bonus, bonus_when=lambda t: distinct_tools(t) >= self.min_tools
        )
        object.__setattr__(self, "_composite", composite)

    def score(self, traj: Trajectory) -> RewardResult:
        """The total with the breakdown (`format` gate, `answer`, `bonus`)."""
        return self._composite.score(traj)

    def __call__(self, traj: Trajectory) -> float:
        return self._composite(traj)


@dataclass(frozen=True)
class OTCReward:
    """OTC's efficiency with the reference as the minimum: completeness * otc_decay(calls, minimum, c).

    The minimum is the number of reference calls recorded in the `tool_calls` feedback (a
    built task knows the fewest calls that solve it, where OTC-GRPO has to estimate it per
    group); ungraded, every call counts as extra.
    """

    c: float = 4.0

    def __call__(self, traj: Trajectory) -> float:
        score = tool_call_score(traj)
        minimum = 0 if score is None else score.reference
        return ToolEfficiency(minimum=minimum, c=self.c, correct=completeness_reward)(traj)


def completeness_productivity(trajectories: Sequence[Trajectory]) -> float:
    """OTC's tool productivity with completeness as correctness: complete tasks per tool call."""
    return tool_productivity(trajectories, correct=completeness_reward)


rewards: Registry[RewardFn] = Registry(kind="reward", group="hone.rewards")
"""Reward parts by name (`rewards.get("toolrl")()` builds one); plug-ins add theirs via `hone.rewards`."""
rewards.add("format", lambda: format_reward)
rewards.add("correctness", lambda: correctness_reward)
rewards.add("tool_format", lambda: tool_format_reward)
rewards.add("tool_precision", lambda: tool_precision_reward)
rewards.add("completeness", lambda: completeness_reward)
rewards.add("toolrl", ToolRLReward)
rewards.add("toolstar", ToolStarReward)
rewards.add("otc", OTCReward)


def make_reward(name: str, **options: Any) -> RewardFn:
    """The reward part called `name` (see `rewards`), built with `options` (`make_reward("toolstar", bonus=0.2)`)."""
    return rewards.get(name)(**options)
