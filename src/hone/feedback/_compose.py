"""Composite rewards: weighted parts with gates, returning the total and a per-part breakdown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hone.core import ConfigError, Trajectory

from ._parts import RewardFn, correctness_reward, format_reward


@dataclass(frozen=True)
class Part:
    """One weighted reward part.

    `requires` names earlier parts that must have passed (scored above 0) for this one to
    count; otherwise it contributes nothing (its raw score still shows in the breakdown).
    """

    name: str
    fn: RewardFn
    weight: float = 1.0
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Gate:
    """A condition the reward depends on: when `fn` scores 0 or less, the whole total is `on_fail`.

    No part then counts (`weighted` is 0 for all); the first failing gate decides. A passing
    gate adds nothing to the total by itself.
    """

    name: str
    fn: RewardFn
    on_fail: float = -1.0


@dataclass(frozen=True)
class RewardResult:
    """A composite's verdict: `total`, each part's raw score in `parts`, and what it added in `weighted`.

    `failed_gate` names the gate that failed, if one did.
    """

    total: float
    parts: dict[str, float]
    weighted: dict[str, float]
    failed_gate: str | None = None


@dataclass(frozen=True)
class Composite:
    """A reward made of weighted `Part`s and `Gate`s, evaluated in order.

    `total` is the sum of weight * score over the parts that count; a failed `Gate` makes the
    total its `on_fail` value instead. Every part is still scored, so the breakdown shows
    all of them. Calling a composite returns the total, so composites are `RewardFn`s and
    nest; `score` gives the breakdown.

        reward = Composite([
            Gate("format", format_reward, on_fail=-1.0),
            Part("correct", correctness_reward),
            Part("efficient", ToolEfficiency(), weight=0.2, requires=("correct",)),
        ])
        reward.score(traj).parts  # {"format": 1.0, "correct": 1.0, "efficient": 0.87}
    """

    parts: Sequence[Part | Gate] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [p.name for p in self.parts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"reward part names must be unique; repeated: {', '.join(dupes)}")
        for i, part in enumerate(self.parts):
            if isinstance(part, Part):
                unknown = [r for r in part.requires if r not in names[:i]]
                if unknown:
                    raise ConfigError(f"part {part.name!r} requires {', '.join(unknown)}, which must come before it")

    def score(self, traj: Trajectory) -> RewardResult:
        """Score every part; the total, the raw scores and the weighted contributions."""
        raw: dict[str, float] = {}
        weighted: dict[str, float] = {}
        total = 0.0
        failed: str | None = None
        for part in self.parts:
            value = float(part.fn(traj))
            raw[part.name] = value
            if isinstance(part, Gate):
                weighted[part.name] = 0.0
                if failed is None and value <= 0:
                    failed = part.name
                continue
            counts = failed is None and all(raw[r] > 0 for r in part.requires)
            weighted[part.name] = part.weight * value if counts else 0.0
            total += weighted[part.name]
        if failed is not None:
            gate = next(p for p in self.parts if p.name == failed)
            assert isinstance(gate, Gate)
            total = gate.on_fail
            weighted = dict.fromkeys(weighted, 0.0)
        return RewardResult(total=total, parts=raw, weighted=weighted, failed_gate=failed)

    def __call__(self, traj: Trajectory) -> float:
        return self.score(traj).total


def hierarchical(
    format: RewardFn = format_reward,
    answer: RewardFn = correctness_reward,
    *,
    bonus: float = 0.1,
    bonus_when: Callable[[Trajectory], bool] | None = None,
) -> Composite:
    """Tool-Star / ToolRL style gating: format must hold before the answer counts.

    -1 when the format is wrong; 0 when the format is right and the answer wrong (scores
    0); otherwise the answer score plus `bonus` (only where `bonus_when(traj)` holds, when
    given; Tool-Star grants it for using several tools).
    """

    def bonus_part(traj: Trajectory) -> float:
        return 1.0 if bonus_when is None or bonus_when(traj) else 0.0

    return Composite(
        [
            Gate("format", format, on_fail=-1.0),
            Part("answer", answer),
            Part("bonus", bonus_part, weight=bonus, requires=("answer",)),
        ]
    )


def distinct_tools(traj: Trajectory) -> int:
    """How many different tools the trajectory called (for bonuses such as Tool-Star's multi-tool one)."""
    return len({c.name for s in traj.steps for c in s.call.message.tool_calls or []})
