"""Public feedback vs hidden grading: strategies cannot read the grader; the oracle is labelled."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import pytest
from _improve_helpers import NoisyCalc

from hone.core import Budget, Feedback, Message, Task, ToolSpec, Trajectory
from hone.envs import Reset, StepResult, make_env
from hone.improve import HiddenFeedbackError, PublicEnv, asolve, compare, make_strategy
from hone.models import Scripted

SECRET = "4242"
NAMES = ["single", "best_of_n", "refine", "reflexion", "mcts", "evolve", "deliberate"]


class SecretEnv:
    """Guess a number. Its grader (and, wrongly, its steps) would reveal the answer."""

    name = "secret"
    version = "1"

    def splits(self) -> list[str]:
        return ["test"]

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        return [Task(id="s0", input={}, target=SECRET)]

    def clone(self) -> SecretEnv:
        return copy.copy(self)

    async def reset(self, task: Task) -> Reset:
        return Reset(messages=[Message.user("Guess the secret number.")])

    async def step(self, message: Message) -> StepResult:
        leak = Feedback(source="verifier", text=f"the secret is {SECRET}", visibility="hidden")
        hint = Feedback(source="verifier", text="a guess was made", score=0.5, visibility="public")
        return StepResult(done=True, answer=message.text.split()[-1].rstrip("."), feedback=[leak, hint])

    async def grade(self, trajectory: Trajectory) -> list[Feedback]:
        ok = trajectory.answer == SECRET
        return [Feedback(source="verifier", score=float(ok), passed=ok, text=f"expected {SECRET}", visibility="hidden")]


def cheater(seen: list[str]) -> Scripted:
    """Answers the secret as soon as it appears anywhere in what it is shown."""

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        text = "\n".join(m.text for m in messages)
        seen.append(text)
        if "Score every proposal" in text:
            return "P1: 0.5 | fine\nP2: 0.5 | fine"
        return f"The answer is {SECRET}." if SECRET in text else f"The answer is {len(seen) % 7}."

    return Scripted(reply)


@pytest.mark.parametrize("instruct", [True, False])
@pytest.mark.parametrize("name", NAMES)
async def test_no_strategy_can_read_hidden_feedback(name: str, instruct: bool) -> None:
    seen: list[str] = []
    env = SecretEnv()
    result = await asolve(make_strategy(name, instruct=instruct), env.tasks()[0], env, cheater(seen), "calls=12")
    assert seen and not any(SECRET in text for text in seen)
    for cand in result.candidates:
        assert all(f.visibility == "public" for f in cand.feedback)
        assert all(f.visibility == "public" for s in cand.steps for f in s.feedback)
        assert cand.reward is None and "oracle" not in cand.tags
    # only the chosen best is graded, and it cannot have found the secret
    hidden = [f for f in result.best.feedback if f.visibility == "hidden"]
    assert len(hidden) == 1 and hidden[0].passed is False and not result.best.passed
    assert not result.oracle and result.strategy == name


async def test_the_public_view_refuses_grading() -> None:
    env = PublicEnv(SecretEnv())
    with pytest.raises(HiddenFeedbackError, match="oracle=True"):
        await env.grade(Trajectory(task_id="s0", env="secret", model="m", answer="1"))
    step = await env.clone().step(Message.assistant("The answer is 1."))
    assert [f.visibility for f in step.feedback] == ["public"]


async def test_oracle_mode_is_an_upper_bound_and_says_so() -> None:
    env = make_env("arith", levels="3")
    task = env.tasks("test", n=1)[0]
    model = NoisyCalc(wrong=0.5, slip=0.3)
    honest = await asolve(make_strategy("best_of_n"), task, env, model, Budget(calls=12))
    oracle = await asolve(make_strategy("best_of_n"), task, env, model, Budget(calls=12), oracle=True)
    assert oracle.oracle and oracle.strategy == "best_of_n[oracle]" and "oracle" in oracle.best.tags
    assert oracle.best.oracle and not honest.best.oracle and not any(c.oracle for c in honest.candidates)
    assert all(c.oracle and "oracle" in c.tags and c.strategy == "best_of_n[oracle]" for c in oracle.candidates)
    assert all(c.reward is not None for c in oracle.candidates)  # the oracle graded every candidate
    if any(c.reward == 1.0 for c in oracle.candidates):
        assert oracle.best.passed
    assert not honest.oracle and "oracle" not in honest.best.tags
    cmp = compare(["refine"], env, model, "calls=8", n=3, oracle=True)
    assert all(r["strategy"].endswith("[oracle]") and r["oracle"] for r in cmp.rows())


class CritiquedSecretEnv(SecretEnv):
    """Its grader also returns a flattering public critique, which must not count as hidden grading."""

    async def grade(self, trajectory: Trajectory) -> list[Feedback]:
        praise = Feedback(source="judge", score=1.0, passed=True, text="looks right", visibility="public")
        return [praise, *await super().grade(trajectory)]


async def test_the_oracle_chooses_by_hidden_grading_only() -> None:
    env = CritiquedSecretEnv()
    result = await asolve(make_strategy("best_of_n"), env.tasks()[0], env, cheater([]), "calls=4", oracle=True)
    assert len(result.candidates) == 4
    for cand in result.candidates:
        assert cand.reward == 0.0 and cand.meta["oracle_score"] == 0.0 and not cand.passed
    assert result.best.reward == 0.0


class ClosingEnv(SecretEnv):
    """Counts `aclose()` calls across clones (per-episode resources such as a Python session)."""

    def __init__(self) -> None:
        self.closed: list[int] = []

    async def aclose(self) -> None:
        self.closed.append(1)


@pytest.mark.parametrize("name", ["best_of_n", "mcts"])
async def test_every_attempt_closes_its_episode(name: str) -> None:
    env = ClosingEnv()
    result = await asolve(make_strategy(name), env.tasks()[0], env, cheater([]), "calls=4")
    assert result.candidates and len(env.closed) == len(result.candidates)
