"""Evolution: operators' lineage, diversity-aware survivors, refinement guidance, islands."""

from __future__ import annotations

from collections.abc import Sequence

from _improve_helpers import NoisyCalc

from hone.core import Budget, Message, ToolSpec, Trajectory
from hone.envs import make_env
from hone.improve import Evolve, asolve
from hone.improve._evolve import survivors
from hone.models import Scripted


def _t(answer: str) -> Trajectory:
    return Trajectory(task_id="t", env="e", model="m", answer=answer)


def test_survivors_trade_score_for_diversity() -> None:
    a1, a2, a3, b = _t("1"), _t("1"), _t("1"), _t("2")
    scores = {a1.id: 1.0, a2.id: 1.0, a3.id: 1.0, b.id: 0.8}
    assert survivors([a1, a2, a3, b], scores, 2, diversity=0.0) == [a1, a2]
    assert survivors([a1, a2, a3, b], scores, 2, diversity=0.3) == [a1, b]  # 0.8 > 1.0 - 0.3
    assert survivors([a1, a2, a3, b], scores, 2, diversity=0.1) == [a1, a2]


async def test_operators_record_their_parents() -> None:
    env = make_env("arith", levels="2")
    task = env.tasks("test", n=1)[0]
    strategy = Evolve(pool=3, generations=2, instruct=False)
    result = await asolve(strategy, task, env, NoisyCalc(wrong=0.5, slip=0.3), Budget(calls=40))
    by_id = {c.id: c for c in result.candidates}
    initial = [c for c in result.candidates if c.meta["generation"] == 0]
    children = [c for c in result.candidates if c.meta["generation"] > 0]
    assert len(initial) == 3 and all(not c.parent_ids for c in initial)
    assert {c.op for c in children} == {"revision", "recombination", "refinement"}
    for child in children:
        parents = [by_id[p] for p in child.parent_ids]
        assert all(p.meta["generation"] < child.meta["generation"] for p in parents)
        expected = {"revision": 1, "recombination": 2}.get(child.op)
        assert len(parents) == (expected or len(parents)) and parents
        # the micro-style context lists the parents' answers
        note = child.prompt[-1].text
        assert note.startswith("Seen:") and all((p.answer or "no answer") in note for p in parents)
    refinements = [c for c in children if c.op == "refinement"]
    assert refinements and all(len(c.parent_ids) >= 2 for c in refinements)  # the whole pool
    assert result.ledger.calls <= 40 and result.info["generations"] == 2


async def test_instructed_refinement_spends_one_guidance_call_and_shows_it() -> None:
    guidance_requests: list[str] = []

    def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        last = messages[-1].text
        if "Write three short lessons" in last:
            guidance_requests.append(last)
            return "1. Check the sign."
        return "The answer is 3."

    env = make_env("arith", levels="1", tools="none")
    task = env.tasks("test", n=1)[0]
    strategy = Evolve(pool=2, generations=1, operators=("refinement",), instruct=True)
    result = await asolve(strategy, task, env, Scripted(policy), Budget(calls=10))
    children = [c for c in result.candidates if c.op == "refinement"]
    assert len(guidance_requests) == 1 and children
    assert all("Check the sign." in c.prompt[-1].text for c in children)
    # 2 initial + 1 guidance + 2 children
    assert result.ledger.calls == 2 + 1 + len(children)


async def test_islands_evolve_apart_and_migrate() -> None:
    env = make_env("arith", levels="2")
    task = env.tasks("test", n=1)[0]
    strategy = Evolve(pool=2, generations=2, islands=2, migrate_every=1, instruct=False)
    result = await asolve(strategy, task, env, NoisyCalc(), Budget(calls=60))
    assert result.info["islands"] == 2
    assert len([c for c in result.candidates if c.meta["generation"] == 0]) == 4
