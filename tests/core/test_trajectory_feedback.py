"""What a strategy may see of a trajectory and of an environment: public feedback only, exactly
(written against mutation survivors of the public-feedback group), and errors as recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest

from hone.core import ConfigError, ErrorInfo, Feedback, Message, ModelCall, Step, Trajectory, utcnow
from hone.envs import make_env
from hone.improve import HiddenFeedbackError, PublicEnv


def fb(name: str, visibility: str) -> Feedback:
    return Feedback(source="verifier", name=name, score=1.0, visibility=visibility)  # type: ignore[arg-type]


def test_public_feedback_is_every_public_item_steps_first_and_nothing_hidden() -> None:
    step = Step(
        call=ModelCall(model="m", request_digest="d", message=Message.assistant("4")),
        feedback=[fb("s-public", "public"), fb("s-hidden", "hidden"), fb("s-public-2", "public")],
    )
    traj = Trajectory(
        task_id="t", env="e", model="m", steps=[step], feedback=[fb("t-hidden", "hidden"), fb("t-public", "public")]
    )
    assert [f.name for f in traj.public_feedback()] == ["s-public", "s-public-2", "t-public"]


def test_public_env_delegates_and_keeps_its_oracle_setting() -> None:
    inner = make_env("arith", levels="1-2")
    env = PublicEnv(inner)
    assert [t.id for t in env.tasks("train", n=3, seed=4)] == [t.id for t in inner.tasks("train", n=3, seed=4)]
    assert [t.id for t in env.tasks()] == [t.id for t in inner.tasks()]
    twice = PublicEnv(PublicEnv(inner, oracle=True), oracle=True)
    assert twice.inner is inner  # not wrapped twice
    clone = twice.clone()
    assert isinstance(clone, PublicEnv) and clone.oracle is True and clone.inner is not inner
    assert PublicEnv(inner).clone().oracle is False


def test_grading_without_the_oracle_is_refused_in_words_that_say_what_to_do() -> None:
    env = PublicEnv(make_env("arith", levels="1"))
    traj = Trajectory(task_id="t", env="arith", model="m")
    with pytest.raises(HiddenFeedbackError) as info:
        asyncio.run(env.grade(traj))
    assert str(info.value) == (
        "arith: hidden grading is not available to a strategy; pass oracle=True for an (oracle-labelled) upper bound"
    )


def test_errors_are_recorded_with_their_kind_message_step_and_raw_text() -> None:
    assert ErrorInfo.from_exception(ConfigError("bad spec"), step_index=2, raw="{oops") == ErrorInfo(
        type="ConfigError", message="bad spec", step_index=2, raw="{oops"
    )
    assert ErrorInfo.from_exception(KeyError()) == ErrorInfo(type="KeyError", message="KeyError")
    assert ErrorInfo.from_exception(ValueError("x")).type == "ValueError"


def test_times_are_aware_utc() -> None:
    assert utcnow().tzinfo is UTC


def test_an_error_is_recorded_under_its_kind_not_its_class_name() -> None:
    from hone.rollout._ray import WorkerLost

    assert ErrorInfo.from_exception(WorkerLost("node gone")).type == "WorkerError"


def test_upgrading_leaves_what_is_not_a_message_for_validation_to_report() -> None:
    from hone.core._trajectory import upgrade_v1

    record = {"schema_version": "hone.trajectory/1", "steps": [{"observations": ["not a message"]}, "not a step"]}
    assert upgrade_v1(record)["steps"] == [{"observations": ["not a message"]}, "not a step"]
