"""hone.feedback: rewards from trajectories as small composable parts (layer 2: imports hone.core only).

Parts are plain functions `Trajectory -> float` (`format_reward`, `correctness_reward`,
`ToolEfficiency`); `Composite` combines them with weights and gates and gives the total
with a per-part breakdown; `hierarchical` is Tool-Star/ToolRL gating (format before answer).
"""

from ._compose import Composite, Gate, Part, RewardResult, distinct_tools, hierarchical
from ._parts import (
    RewardFn,
    ToolEfficiency,
    correctness_reward,
    format_reward,
    minimum_calls,
    otc_decay,
    tool_productivity,
)

__all__ = [
    "Composite",
    "Gate",
    "Part",
    "RewardFn",
    "RewardResult",
    "ToolEfficiency",
    "correctness_reward",
    "distinct_tools",
    "format_reward",
    "hierarchical",
    "minimum_calls",
    "otc_decay",
    "tool_productivity",
]
