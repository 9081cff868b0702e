"""hone.feedback: rewards from trajectories as small composable parts, and LLM judges (layer 2).

Parts are plain functions `Trajectory -> float` (`format_reward`, `correctness_reward`,
`ToolEfficiency`); `Composite` combines them with weights and gates and gives the total
with a per-part breakdown; `hierarchical` is Tool-Star/ToolRL gating (format before answer).
`PointwiseJudge` (rubric score) and `PairwiseJudge` (position-swapped comparison) turn any
`ChatModel` into public judge feedback. `UnitTestVerifier`, `ExecAnswerVerifier` and
`PropertyVerifier` run model-written code in `hone.sandbox`. Imports hone.core, hone.sandbox
and hone.models.
"""

from ._code import (
    ExecAnswerVerifier,
    PropertyVerifier,
    TestCase,
    TestOutcome,
    UnitTestVerifier,
    shared_sandbox,
)
from ._compose import Composite, Gate, Part, RewardResult, distinct_tools, hierarchical
from ._judge import (
    DEFAULT_RUBRIC,
    PAIRWISE_TEMPLATE,
    POINTWISE_TEMPLATE,
    PairVerdict,
    PairwiseJudge,
    PointwiseJudge,
    parse_score,
    parse_winner,
    transcript_text,
)
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
    "DEFAULT_RUBRIC",
    "PAIRWISE_TEMPLATE",
    "POINTWISE_TEMPLATE",
    "Composite",
    "ExecAnswerVerifier",
    "PropertyVerifier",
    "TestCase",
    "TestOutcome",
    "UnitTestVerifier",
    "shared_sandbox",
    "Gate",
    "PairVerdict",
    "PairwiseJudge",
    "Part",
    "PointwiseJudge",
    "RewardFn",
    "RewardResult",
    "ToolEfficiency",
    "correctness_reward",
    "distinct_tools",
    "format_reward",
    "hierarchical",
    "minimum_calls",
    "otc_decay",
    "parse_score",
    "parse_winner",
    "tool_productivity",
    "transcript_text",
]
