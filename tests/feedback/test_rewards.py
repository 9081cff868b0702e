"""hone.feedback: reward parts, OTC tool efficiency, hierarchical gating, composites."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from hone.core import ConfigError, ErrorInfo, Feedback, Message, ModelCall, Step, ToolCall, Trajectory
from hone.feedback import (
    Composite,
    Gate,
    Part,
    ToolEfficiency,
    correctness_reward,
    distinct_tools,
    format_reward,
    hierarchical,
    minimum_calls,
    otc_decay,
    tool_productivity,
)


def _call(name: str = "calc", *, bad: bool = False) -> ToolCall:
    if bad:
        return ToolCall(id="c", name=name, arguments_raw='{"x": 2+', parse_error="Expecting value")
    return ToolCall(id="c", name=name, arguments={"x": "2+2"})


def traj(
    calls: list[ToolCall] | None = None,
    *,
    answer: str | None = "4",
    passed: bool | None = True,
    score: float | None = None,
    status: str = "ok",
    **extra: Any,
) -> Trajectory:
    """One step per tool call, then a final answer turn."""
    steps = [
        Step(
            call=ModelCall(model="m", request_digest="d", message=Message.assistant(None, [c])),
            observations=[Message.tool("4", c.id, name=c.name)],
        )
        for c in calls or []
    ]
    steps.append(Step(call=ModelCall(model="m", request_digest="d", message=Message.assistant(f"It is {answer}."))))
    feedback = []
    if passed is not None or score is not None:
        feedback.append(Feedback(source="verifier", passed=passed, score=score, visibility="hidden"))
    feedback.append(Feedback(source="critic", score=0.0, text="public, ignored", visibility="public"))
    error = ErrorInfo(type="ModelError", message="boom") if status == "error" else None
    return Trajectory(
        task_id="t",
        env="arith",
        model="m",
        steps=steps,
        answer=answer,
        feedback=feedback,
        status=status,
        error=error,
        **extra,
    )


def test_format_reward() -> None:
    assert format_reward(traj([_call(), _call()])) == 1.0
    assert format_reward(traj([_call(), _call(bad=True)])) == 0.0
    assert format_reward(traj(status="error")) == 0.0
    assert format_reward(traj(answer=None)) == 0.0
    assert format_reward(traj(answer="  ")) == 0.0
    assert format_reward(traj(passed=False)) == 1.0  # format says nothing about being right


def test_correctness_reward() -> None:
    assert correctness_reward(traj(passed=True)) == 1.0
    assert correctness_reward(traj(passed=False)) == 0.0
    assert correctness_reward(traj(passed=None, score=0.25)) == 0.25  # the hidden score wins when given
    assert correctness_reward(traj(passed=True, score=0.75)) == 0.75
    assert correctness_reward(traj(passed=None)) == 0.0  # public feedback does not count


def test_otc_decay() -> None:
    assert otc_decay(0) == 1.0
    assert otc_decay(1) == pytest.approx(math.cos(math.pi / 6))
    assert otc_decay(2) == pytest.approx(math.sqrt(0.5))
    assert otc_decay(4) == pytest.approx(0.5)
    values = [otc_decay(m) for m in range(20)]
    assert all(a > b for a, b in itertools.pairwise(values)) and values[-1] > 0
    assert otc_decay(2, minimum=2) == 1.0 and otc_decay(3, minimum=2) == pytest.approx(otc_decay(1))
    assert otc_decay(1, c=1.0) == pytest.approx(0.5)  # smaller c decays faster
    with pytest.raises(ValueError, match="positive"):
        otc_decay(1, c=0)


def test_tool_efficiency_and_productivity() -> None:
    lean, heavy, wrong = traj([_call()]), traj([_call(), _call(), _call()]), traj([_call()], passed=False)
    eff = ToolEfficiency(minimum=1)
    assert eff(lean) == 1.0
    assert eff(heavy) == pytest.approx(math.sqrt(0.5))
    assert eff(wrong) == 0.0
    assert ToolEfficiency()(lean) == pytest.approx(math.cos(math.pi / 6))
    group = [heavy, lean, wrong, traj([_call()] * 2)]
    assert minimum_calls(group) == 1 and minimum_calls([wrong]) == 0
    # 3 correct answers over 1 + 3 + 1 + 0 = 5 tool calls
    assert tool_productivity([lean, heavy, wrong, traj()]) == pytest.approx(3 / 5)
    assert tool_productivity([traj()]) == math.inf and tool_productivity([traj(passed=False)]) == 0.0


def test_hierarchical_gating() -> None:
    reward = hierarchical()
    assert reward(traj([_call(bad=True)])) == -1.0  # format wrong, right or not
    assert reward(traj(answer=None)) == -1.0
    assert reward(traj([_call()], passed=False)) == 0.0
    assert reward(traj([_call()])) == pytest.approx(1.1)
    assert reward(traj(passed=None, score=0.5)) == pytest.approx(0.6)
    result = reward.score(traj([_call(bad=True)]))
    assert result.failed_gate == "format"
    assert result.parts == {"format": 0.0, "answer": 1.0, "bonus": 1.0}
    assert result.weighted == {"format": 0.0, "answer": 0.0, "bonus": 0.0}
    multi = hierarchical(bonus=0.2, bonus_when=lambda t: distinct_tools(t) >= 2)
    assert multi(traj([_call("calc"), _call("search")])) == pytest.approx(1.2)
    assert multi(traj([_call("calc"), _call("calc")])) == pytest.approx(1.0)


def test_composite_weights_requires_and_breakdown() -> None:
    reward = Composite(
        [
            Part("format", format_reward, weight=0.5),
            Part("correct", correctness_reward, weight=2.0),
            Part("efficient", ToolEfficiency(minimum=1), weight=1.0, requires=("format",)),
        ]
    )
    ok = reward.score(traj([_call(), _call()]))
    assert ok.total == pytest.approx(0.5 + 2.0 + math.cos(math.pi / 6))
    assert ok.parts == pytest.approx({"format": 1.0, "correct": 1.0, "efficient": math.cos(math.pi / 6)})
    assert ok.failed_gate is None
    bad = reward.score(traj([_call(bad=True)]))  # efficient needs format: scored but not counted
    assert bad.parts["efficient"] == 1.0 and bad.weighted["efficient"] == 0.0
    assert bad.total == pytest.approx(2.0)
    # composites are reward functions and nest, with gates anywhere
    outer = Composite([Gate("done", lambda t: float(t.status == "ok"), on_fail=-5.0), Part("inner", reward, 0.5)])
    assert outer(traj([_call(), _call()])) == pytest.approx(0.5 * ok.total)
    assert outer(traj(status="error")) == -5.0


def test_composite_rejects_bad_definitions() -> None:
    with pytest.raises(ConfigError, match="unique; repeated: a"):
        Composite([Part("a", format_reward), Part("a", correctness_reward)])
    with pytest.raises(ConfigError, match="requires b, which must come before it"):
        Composite([Part("a", format_reward, requires=("b",)), Part("b", correctness_reward)])


def test_a_trajectory_marked_error_is_malformed_either_way() -> None:
    errored = traj(status="error")
    assert format_reward(errored.model_copy(update={"error": None})) == 0.0  # the status alone
    assert format_reward(errored.model_copy(update={"status": "truncated"})) == 0.0  # the error alone


def test_gates_contribute_nothing_to_the_weighted_sum() -> None:
    reward = Composite([Gate("format", format_reward), Part("correct", correctness_reward, weight=2.0)])
    result = reward.score(traj([_call()]))
    assert result.weighted == {"format": 0.0, "correct": 2.0} and sum(result.weighted.values()) == result.total


def test_definition_errors_list_every_name() -> None:
    with pytest.raises(ConfigError, match=r"unique; repeated: a, b$"):
        Composite(
            [Part("a", format_reward), Part("b", format_reward), Part("a", format_reward), Part("b", format_reward)]
        )
    with pytest.raises(ConfigError, match="requires x, y, which must come before it"):
        Composite([Part("a", format_reward, requires=("x", "y"))])
