"""hone.feedback tool-use rewards: score_tool_calls, the hidden feedback, ToolRL, Tool-Star, OTC parts."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from hone.core import ConfigError, Feedback, Message, ModelCall, Step, ToolCall, Trajectory, hidden_reward
from hone.feedback import (
    ExpectedCall,
    OTCReward,
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


def call(name: str, /, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"c-{name}", name=name, arguments=arguments)


def broken(name: str) -> ToolCall:
    return ToolCall(id="c-bad", name=name, arguments_raw='{"x": 2+', parse_error="Expecting value")


def ref(name: str, /, **arguments: Any) -> ExpectedCall:
    return ExpectedCall.exact(name, arguments)


LOOKUP = [[ref("find_user", name="bob")], [ref("orders", user_id=42)]]  # a chain: orders needs the id
PAIR = [[ref("weather", city="Paris"), ref("weather", city="Oslo")]]  # parallel calls in one step
SCHEMAS: dict[str, dict[str, Any]] = {
    "weather": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city"],
    },
    "find_user": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    "orders": {"type": "object", "properties": {"user_id": {"type": "integer"}}, "required": ["user_id"]},
}


# ---- score_tool_calls ------------------------------------------------------------------------


def test_exact_calls_score_one_with_exact_counts() -> None:
    score = score_tool_calls([[call("find_user", name="bob")], [call("orders", user_id=42)]], LOOKUP, SCHEMAS)
    assert (score.made, score.reference, score.paired, score.matched, score.invalid) == (2, 2, 2, 2, 0)
    assert score.precision == 1.0 and score.extra == []
    assert [v.kind for v in score.verdicts] == ["ok", "ok"]
    assert [v.made for v in score.verdicts] == [(0, 0), (1, 0)]
    assert score.toolrl_correctness() == pytest.approx(3.0)


def test_parallel_calls_match_in_any_order_and_over_several_steps() -> None:
    swapped = score_tool_calls([[call("weather", city="Oslo"), call("weather", city="Paris")]], PAIR)
    assert swapped.precision == 1.0 and swapped.matched == 2
    assert [v.made for v in swapped.verdicts] == [(0, 1), (0, 0)]
    one_by_one = score_tool_calls([[call("weather", city="Oslo")], [call("weather", city="Paris")]], PAIR)
    assert one_by_one.precision == 1.0 and one_by_one.matched == 2


def test_chain_calls_must_come_in_step_order() -> None:
    reversed_ = score_tool_calls([[call("orders", user_id=42)], [call("find_user", name="bob")]], LOOKUP)
    assert reversed_.paired == 1 and reversed_.matched == 1
    assert reversed_.precision == 0.5 and reversed_.name_recall == 0.5 and reversed_.name_precision == 0.5
    assert [v.kind for v in reversed_.verdicts] == ["not_called", "ok"]
    assert reversed_.extra == ["find_user"]
    # both in one step: the second call cannot have used the first one's result
    together = score_tool_calls([[call("find_user", name="bob"), call("orders", user_id=42)]], LOOKUP)
    assert together.paired == 1 and together.precision == 0.5
    # an unrelated step in between does not break the chain
    spaced = score_tool_calls(
        [[call("find_user", name="bob")], [call("weather", city="Rome")], [call("orders", user_id=42)]], LOOKUP
    )
    assert spaced.matched == 2 and spaced.made == 3 and spaced.precision == pytest.approx(2 / 3)


def test_missing_call_lowers_recall_not_precision() -> None:
    score = score_tool_calls([[call("weather", city="Paris")]], PAIR)
    assert (score.made, score.reference, score.paired) == (1, 2, 1)
    assert score.name_precision == 1.0 and score.name_recall == 0.5
    assert score.precision == 0.5
    assert [v.kind for v in score.verdicts] == ["ok", "not_called"]


def test_extra_calls_lower_precision_not_recall() -> None:
    made = [[call("weather", city="Paris"), call("weather", city="Oslo"), call("weather", city="Rome")]]
    score = score_tool_calls(made, PAIR)
    assert (score.made, score.paired, score.matched) == (3, 2, 2)
    assert score.name_precision == pytest.approx(2 / 3) and score.name_recall == 1.0
    assert score.precision == pytest.approx(2 / 3) and score.extra == ["weather"]


def test_wrong_value_earns_partial_credit() -> None:
    reference = [[ref("move", src="a", dst="b")]]
    score = score_tool_calls([[call("move", src="a", dst="c")]], reference)
    assert (score.paired, score.matched) == (1, 0)
    assert score.value_accuracy == 0.5 and score.arg_name_precision == 1.0 and score.arg_name_recall == 1.0
    assert score.verdicts[0].kind == "wrong_value"
    assert score.precision == pytest.approx((1 + 1 + 0.5) / 4)  # not ok: at most 3/4
    assert score.value_hits == 1 and score.value_slots == 2
    # ToolRL: (r_name 1 + r_param 1 + r_value 1) over S_max = 1 + 1 call + 2 slots
    assert score.toolrl_correctness() == pytest.approx(6 * 3 / 4 - 3)


def test_argument_names_precision_and_recall() -> None:
    reference = [[ExpectedCall("book", {"room": ["r1"], "day": ["mon"], "note": ["", "quiet"]})]]
    score = score_tool_calls([[call("book", room="r1", day="mon", color="red")]], reference)
    # given {room, day, color}; the reference's slots in play {room, day} (note may be omitted)
    assert score.arg_name_precision == pytest.approx(2 / 3) and score.arg_name_recall == 1.0
    assert score.verdicts[0].kind == "unexpected_argument"
    assert score.arg_name_jaccard == pytest.approx(2 / 3)
    short = score_tool_calls([[call("book", room="r1", note="quiet")]], reference)
    # given {room, note}; slots {room, day, note}: day is missing
    assert short.arg_name_precision == 1.0 and short.arg_name_recall == pytest.approx(2 / 3)
    assert short.verdicts[0].kind == "missing_argument" and short.value_accuracy == 1.0
    omitted = score_tool_calls([[call("book", room="r1", day="mon")]], reference)
    assert omitted.matched == 1 and omitted.arg_name_recall == 1.0 and omitted.value_slots == 2


def test_best_assignment_not_first_come() -> None:
    reference = [[ref("pay", to="ann", amount=5), ref("pay", to="ann", amount=7)]]
    score = score_tool_calls([[call("pay", to="ann", amount=7)]], reference)
    # pairing the call with the first reference would score 0.625; the right pair scores 1
    assert [v.kind for v in score.verdicts] == ["not_called", "ok"]
    assert score.matched == 1 and score.precision == 0.5


def test_invalid_calls_are_counted() -> None:
    made = [
        [broken("weather"), call("teleport", to="Mars")],
        [call("weather", city=3), call("weather", city="Oslo", unit="K"), call("weather", city="Paris")],
    ]
    score = score_tool_calls(made, PAIR, SCHEMAS)
    assert score.made == 5 and score.invalid == 4
    reasons = " | ".join(score.invalid_reasons)
    assert "do not parse" in reasons and "teleport: unknown tool" in reasons
    assert "city should be string" in reasons and "unit must be one of" in reasons
    assert score.verdicts[1].made == (1, 1)  # the broken call is never paired; the enum miss is
    assert score.matched == 1
    # without schemas only the unparsed call is known to be invalid
    assert score_tool_calls(made, PAIR).invalid == 1
    alone = score_tool_calls([[broken("weather")]], PAIR)
    assert alone.paired == 0 and alone.precision == 0.0 and alone.invalid == 1


def test_schema_problem() -> None:
    spec = SCHEMAS["weather"]
    assert schema_problem({"city": "Oslo"}, spec) is None
    assert schema_problem({}, spec) == "missing required argument city"
    assert schema_problem({"city": "Oslo", "zip": 1}, spec) == "unknown argument zip"
    assert schema_problem({"city": "Oslo", "zip": 1}, {**spec, "additionalProperties": True}) is None
    assert schema_problem({"user_id": True}, SCHEMAS["orders"]) == "argument user_id should be integer, got bool"
    assert schema_problem({"user_id": 4.0}, SCHEMAS["orders"]) is None
    bfcl = {"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "float"}}, "required": ["x"]}}
    assert schema_problem({"x": 2}, bfcl) is None and schema_problem({"x": "2"}, bfcl) is not None


def test_level_six_no_tool_applies() -> None:
    quiet = score_tool_calls([[]], [])
    assert quiet.precision == 1.0 and quiet.made == 0 and quiet.toolrl_correctness() == pytest.approx(3.0)
    busy = score_tool_calls([[call("weather", city="Oslo")]], [])
    assert busy.precision == 0.0 and busy.name_precision == 0.0 and busy.toolrl_correctness() == pytest.approx(-3.0)


def test_toolrl_name_part_counts_repeats_and_junk() -> None:
    score = score_tool_calls([[call("weather", city="Paris")], [call("weather", city="Paris")]], [PAIR[0][:1]])
    assert score.name_jaccard == 0.5 and score.precision == 0.5
    junk = score_tool_calls([[call("weather", city="Paris"), broken("weather")]], [PAIR[0][:1]])
    assert junk.name_jaccard == 0.5 and junk.matched == 1


# ---- hidden feedback and reward parts ----------------------------------------------------------


def traj(
    made: list[list[ToolCall]],
    reference: list[list[ExpectedCall]] | None,
    *,
    complete: bool | None = True,
    answer: str | None = "Answer: done",
    schemas: dict[str, dict[str, Any]] | None = SCHEMAS,
) -> Trajectory:
    """A trajectory with one step per group of calls, a final answer turn and the hidden grading."""
    steps = [
        Step(
            call=ModelCall(model="m", request_digest="d", message=Message.assistant(None, group)),
            observations=[Message.tool("ok", c.id, name=c.name) for c in group],
        )
        for group in made
    ]
    steps.append(Step(call=ModelCall(model="m", request_digest="d", message=Message.assistant(answer))))
    t = Trajectory(task_id="t", env="toolgen", model="m", steps=steps, answer=answer)
    if reference is not None:
        t.feedback.append(tool_calls_feedback(score_tool_calls(calls_by_step(t), reference, schemas)))
    if complete is not None:
        t.feedback.append(completeness_feedback(complete, None, "state matches" if complete else "state differs"))
    return t


GOOD_CHAIN = [[call("find_user", name="bob")], [call("orders", user_id=42)]]


def test_feedback_is_hidden_and_completeness_decides_passed() -> None:
    score = score_tool_calls([[call("weather", city="Paris")]], PAIR)
    fb = tool_calls_feedback(score)
    assert (fb.name, fb.visibility, fb.passed, fb.score) == ("tool_calls", "hidden", None, 0.5)
    assert ToolCallScore.model_validate(fb.evidence) == score
    done = completeness_feedback(True, None, "state matches")
    assert (done.name, done.visibility, done.passed, done.score) == ("completeness", "hidden", True, 1.0)
    assert completeness_feedback(True, False, "answer 3, expected 4").passed is False
    assert completeness_feedback(False, True, "state differs").score == 0.0
    assert completeness_feedback(True, True, "").passed is True
    t = traj([[call("weather", city="Paris")]], PAIR)
    assert t.passed and hidden_reward(t.feedback) == pytest.approx(0.75)  # the precision never fails a task
    assert not traj([[call("weather", city="Paris")]], PAIR, complete=False).passed


def test_precision_and_completeness_parts_read_stored_feedback() -> None:
    t = traj([[call("weather", city="Paris")]], PAIR, complete=False)
    stored = Trajectory.model_validate_json(t.model_dump_json())
    assert tool_precision_reward(stored) == 0.5 and completeness_reward(stored) == 0.0
    assert tool_call_score(stored) == score_tool_calls([[call("weather", city="Paris")]], PAIR)
    assert completeness_reward(traj(GOOD_CHAIN, LOOKUP)) == 1.0
    ungraded = traj(GOOD_CHAIN, None, complete=None)
    assert tool_precision_reward(ungraded) == 0.0 and completeness_reward(ungraded) == 0.0
    assert tool_call_score(ungraded) is None
    # public feedback of the same name does not count; the newest hidden one does
    ungraded.feedback.append(Feedback(source="critic", name="completeness", score=1.0))
    assert completeness_reward(ungraded) == 0.0
    ungraded.feedback += [completeness_feedback(False, None, "old"), completeness_feedback(True, None, "regraded")]
    assert completeness_reward(ungraded) == 1.0


def test_tool_format_reward() -> None:
    assert tool_format_reward(traj(GOOD_CHAIN, LOOKUP)) == 1.0
    assert tool_format_reward(traj([[broken("orders")]], LOOKUP)) == 0.0
    assert tool_format_reward(traj([[call("teleport")]], LOOKUP)) == 0.0  # unknown tool
    assert tool_format_reward(traj([[call("orders", user_id="42")]], LOOKUP)) == 0.0  # schema broken
    assert tool_format_reward(traj(GOOD_CHAIN, LOOKUP, answer=None)) == 0.0
    assert tool_format_reward(traj([[call("teleport")]], None)) == 1.0  # ungraded: format_reward alone
    assert tool_format_reward(traj([[call("orders", user_id=41)]], LOOKUP, complete=False)) == 1.0


def test_toolrl_reward_range_and_weights() -> None:
    reward = ToolRLReward()
    assert reward(traj(GOOD_CHAIN, LOOKUP)) == pytest.approx(1 + 3)
    nothing = traj([[call("weather", city="Rome")]], LOOKUP)  # well formed, all wrong
    assert reward.parts(nothing) == {"format": 1.0, "correct": pytest.approx(-3.0)}
    assert reward(nothing) == pytest.approx(-2.0)
    half = traj([[call("find_user", name="bob")]], LOOKUP)  # r_name 1/2, r_param 1, r_value 1 of S_max 5
    assert reward.parts(half)["correct"] == pytest.approx(6 * 2.5 / 5 - 3)
    assert reward(traj([[broken("find_user")]], LOOKUP)) == pytest.approx(0 + 6 * 0 / 5 - 3)
    assert ToolRLReward(format_weight=0.5, correct_weight=2.0)(half) == pytest.approx(0.5 + 2 * 0.0)
    assert reward(traj(GOOD_CHAIN, None)) == pytest.approx(1 - 3)  # ungraded correctness is the minimum
    cases = [
        traj(m, LOOKUP)
        for m in (GOOD_CHAIN, GOOD_CHAIN[::-1], [[call("orders", user_id=1, x=2)]] * 3, [], [[broken("orders")]] * 4)
    ]
    assert all(-3.0 <= reward.parts(t)["correct"] <= 3.0 for t in cases)


def test_toolrl_schedule_moves_emphasis() -> None:
    reward = ToolRLReward(format_weight=2.0, correct_weight=0.5, final_format_weight=1.0, final_correct_weight=1.0)
    assert reward.at(0.0) == reward
    assert (reward.at(1.0).format_weight, reward.at(1.0).correct_weight) == (1.0, 1.0)
    middle = reward.at(0.5)
    assert (middle.format_weight, middle.correct_weight) == (1.5, 0.75)
    good = traj(GOOD_CHAIN, LOOKUP)
    assert middle(good) == pytest.approx(1.5 + 0.75 * 3)
    assert ToolRLReward(correct_weight=0.3).at(0.7).correct_weight == 0.3  # no final weight: unchanged
    with pytest.raises(ValueError, match=r"progress must be in \[0, 1\], got 1.5"):
        reward.at(1.5)


def test_toolstar_gate_and_bonus() -> None:
    reward = ToolStarReward()
    assert reward(traj([[broken("orders")]], LOOKUP)) == -1.0  # format wrong, even when complete
    assert reward(traj(GOOD_CHAIN, LOOKUP, answer=None)) == -1.0
    assert reward(traj(GOOD_CHAIN, LOOKUP, complete=False)) == 0.0  # format right, answer wrong
    assert reward(traj(GOOD_CHAIN, LOOKUP)) == pytest.approx(1.1)  # two distinct tools, right
    single = [[call("weather", city="Paris"), call("weather", city="Oslo")]]
    assert reward(traj(single, PAIR)) == pytest.approx(1.0)  # two calls of one tool: no bonus
    assert reward(traj(single, PAIR, complete=False)) == 0.0
    assert ToolStarReward(bonus=0.2)(traj(GOOD_CHAIN, LOOKUP)) == pytest.approx(1.2)
    assert ToolStarReward(min_tools=3)(traj(GOOD_CHAIN, LOOKUP)) == pytest.approx(1.0)
    breakdown = reward.score(traj([[call("teleport")]], LOOKUP))
    assert breakdown.failed_gate == "format" and breakdown.total == -1.0


def test_otc_bridge() -> None:
    lean, heavy = traj(GOOD_CHAIN, LOOKUP), traj([*GOOD_CHAIN, [call("orders", user_id=42)]], LOOKUP)
    reward = OTCReward()
    assert reward(lean) == 1.0  # the reference's two calls are the minimum
    assert reward(heavy) == pytest.approx(math.cos(math.pi / 6))  # one call more than needed
    assert reward(traj(GOOD_CHAIN, LOOKUP, complete=False)) == 0.0
    assert OTCReward(c=1.0)(heavy) == pytest.approx(0.5)
    wrong = traj(GOOD_CHAIN, LOOKUP, complete=False)
    assert completeness_productivity([lean, heavy, wrong]) == pytest.approx(2 / 7)


def test_rewards_by_name() -> None:
    assert {"tool_precision", "completeness", "toolrl", "toolstar", "otc", "format"} <= set(rewards.names())
    assert make_reward("toolstar", bonus=0.2)(traj(GOOD_CHAIN, LOOKUP)) == pytest.approx(1.2)
    assert make_reward("toolrl")(traj(GOOD_CHAIN, LOOKUP)) == pytest.approx(4.0)
    assert make_reward("tool_precision")(traj([[call("weather", city="Paris")]], PAIR)) == 0.5
    with pytest.raises(ConfigError, match=r"unknown reward 'tool_star'; known: .*toolstar"):
        make_reward("tool_star")


def test_chain_pairing_is_optimal_against_brute_force() -> None:
    """`_best_pairs` (the step-ordered DP) finds the best total credit: checked by enumeration on random cases."""
    import itertools
    import random

    from hone.feedback._toolscore import _best_pairs

    rng = random.Random(7)
    for _ in range(300):
        refs = [[r] for r in range(rng.randint(1, 3))]
        made: list[list[int]] = []
        m = 0
        for _ in range(rng.randint(1, 5)):
            made.append(list(range(m, m + rng.randint(1, 2))))
            m += len(made[-1])
        step_of = {c: s for s, step in enumerate(made) for c in step}
        credit = {(r[0], c): rng.choice([0.25, 0.5, 1.0]) for r in refs for c in range(m) if rng.random() < 0.6}
        best = 0.0
        for choice in itertools.product([None, *range(m)], repeat=len(refs)):
            chosen = [(i, c) for i, c in enumerate(choice) if c is not None]
            if any((i, c) not in credit for i, c in chosen) or len({c for _, c in chosen}) < len(chosen):
                continue
            steps = [step_of[c] for _, c in chosen]
            if any(b <= a for a, b in itertools.pairwise(steps)):
                continue  # a later link must come in a strictly later step
            best = max(best, sum(credit[p] for p in chosen))
        pairs = _best_pairs(refs, made, credit)
        got = sum(credit[p] for p in pairs)
        assert abs(got - best) < 1e-9, (refs, made, credit, pairs)


# ---- the hidden feedback, field by field (read by rewards, reports and exports) -----------------


def test_tool_calls_feedback_in_full() -> None:
    score = score_tool_calls([[call("find_user", name="bob")], [call("orders", user_id=7)]], LOOKUP, SCHEMAS)
    fb = tool_calls_feedback(score)
    assert (fb.source, fb.name, fb.visibility, fb.passed, fb.score) == (
        "verifier", "tool_calls", "hidden", None, score.precision,
    )  # fmt: skip
    assert fb.text == "1/2 reference calls matched, 2 made (0 invalid, 0 unpaired); precision 0.750"
    assert fb.evidence == json.loads(json.dumps(fb.evidence))  # plain JSON, as stored
    assert ToolCallScore.model_validate(fb.evidence) == score


def test_completeness_feedback_in_full() -> None:
    fb = completeness_feedback(True, False, "state right, answer wrong")
    assert (fb.name, fb.visibility, fb.passed, fb.score, fb.text) == (
        "completeness", "hidden", False, 0.0, "state right, answer wrong",
    )  # fmt: skip
    assert fb.evidence == {"state_ok": True, "answer_ok": False}
    ok = completeness_feedback(True, None, "state matches")
    assert (ok.passed, ok.score, ok.evidence) == (True, 1.0, {"state_ok": True, "answer_ok": None})


def test_completeness_reward_reads_passed_when_there_is_no_score() -> None:
    t = traj(GOOD_CHAIN, LOOKUP, complete=None)
    t.feedback.append(Feedback(source="verifier", name="completeness", passed=True, visibility="hidden"))
    assert completeness_reward(t) == 1.0
    t.feedback.append(Feedback(source="verifier", name="completeness", passed=False, visibility="hidden"))
    assert completeness_reward(t) == 0.0  # the newest counts


def test_otc_ungraded_counts_every_call_as_extra() -> None:
    t = traj(GOOD_CHAIN, None)  # complete, no tool_calls feedback: the minimum is 0
    assert OTCReward()(t) == pytest.approx(math.sqrt(0.5))  # 2 calls over a minimum of 0 at c = 4
