"""hone.feedback: rewards from trajectories as small composable parts, and LLM judges (layer 2).

Parts are plain functions `Trajectory -> float` (`format_reward`, `correctness_reward`,
`ToolEfficiency`); `Composite` combines them with weights and gates and gives the total
with a per-part breakdown; `hierarchical` is Tool-Star/ToolRL gating (format before answer).
Tool use: `score_tool_calls` scores calls against reference calls (BFCL rules, `match_call`);
`tool_calls_feedback`/`completeness_feedback` record it as hidden feedback, which the parts
`tool_precision_reward`, `completeness_reward`, `ToolRLReward`, `ToolStarReward` and `OTCReward`
read; `rewards`/`make_reward` name the parts.
`PointwiseJudge` (rubric score) and `PairwiseJudge` (position-swapped comparison) turn any
`ChatModel` into public judge feedback. Code verifiers run model-written code in `hone.sandbox`;
the sound ones (`sound = True`: `CallTestVerifier`, `RecordReplayVerifier`, `PropertyVerifier`,
`ExecAnswerVerifier`) never let expected values into the sandbox and compare plain data here;
`UnitTestVerifier` (arbitrary test code in the candidate's interpreter) is not sound and is
public-only unless asked. Imports hone.core, hone.sandbox and hone.models.
"""

from ._callverify import CallCase, CallTestVerifier
from ._code import CodeVerifier, ExecAnswerVerifier, TestCase, TestOutcome, UnitTestVerifier, shared_sandbox
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
from ._plain import PlainError, PlainLimits, plain_equal
from ._props import PropertyVerifier
from ._record import CheckSpec, Recording
from ._replay import CandidateError, RecordReplayVerifier, prefetch
from ._toolmatch import CallsVerdict, CallVerdict, ExpectedCall, match_call, match_calls
from ._toolreward import (
    OTCReward,
    ReferenceVerdict,
    ToolCallScore,
    ToolRLReward,
    ToolStarReward,
    calls_by_step,
    completeness_feedback,
    completeness_productivity,
    completeness_reward,
    make_reward,
    rewards,
    schema_problem,
    score_tool_calls,
    tool_call_score,
    tool_calls_feedback,
    tool_format_reward,
    tool_precision_reward,
)

__all__ = [
    "DEFAULT_RUBRIC",
    "PAIRWISE_TEMPLATE",
    "POINTWISE_TEMPLATE",
    "CallCase",
    "CallTestVerifier",
    "CallVerdict",
    "CallsVerdict",
    "ExpectedCall",
    "CandidateError",
    "CheckSpec",
    "CodeVerifier",
    "Composite",
    "ExecAnswerVerifier",
    "PlainError",
    "PlainLimits",
    "RecordReplayVerifier",
    "Recording",
    "plain_equal",
    "prefetch",
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
    "match_call",
    "match_calls",
    "minimum_calls",
    "otc_decay",
    "parse_score",
    "parse_winner",
    "tool_productivity",
    "transcript_text",
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
