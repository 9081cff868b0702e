"""`hidden_reward`: the one place hidden grading becomes a reward."""

from __future__ import annotations

from hone.core import Feedback, Trajectory, hidden_reward


def hidden(score: float | None = None, passed: bool | None = None) -> Feedback:
    return Feedback(source="verifier", score=score, passed=passed, visibility="hidden")


def test_the_mean_of_hidden_scores() -> None:
    assert hidden_reward([hidden(1.0, True), hidden(0.0, False), hidden(0.5)]) == 0.5


def test_public_feedback_never_counts() -> None:
    critique = Feedback(source="judge", score=1.0, passed=True, visibility="public")
    assert hidden_reward([critique, hidden(0.0, False)]) == 0.0
    assert hidden_reward([critique]) is None


def test_a_verdict_without_a_score_counts_as_one_or_zero() -> None:
    assert hidden_reward([hidden(passed=True)]) == 1.0
    assert hidden_reward([hidden(passed=False)]) == 0.0
    assert hidden_reward([hidden(passed=True), hidden(0.0)]) == 0.5


def test_ungraded_is_none_not_zero() -> None:
    assert hidden_reward([]) is None
    assert hidden_reward([hidden()]) is None  # hidden text alone grades nothing


def test_it_agrees_with_passed_on_pass_fail_graders() -> None:
    for verdicts in ([True], [False], [True, True], [True, False]):
        traj = Trajectory(task_id="t", env="e", model="m", feedback=[hidden(float(v), v) for v in verdicts])
        assert (hidden_reward(traj.feedback) == 1.0) == traj.passed
