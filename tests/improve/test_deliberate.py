"""NSED: quadratic voting, the no-self-scoring rule, the forget gate, the knapsack broker, stopping."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hone.core import Budget, Message, ToolSpec
from hone.envs import make_env
from hone.improve import Deliberate, asolve
from hone.improve._nsed import Broker, Slot, conviction, forget_gate, knapsack, quadratic_vote
from hone.models import MICRO, Scripted


def test_quadratic_vote_normalises_each_evaluator_to_the_same_credit() -> None:
    ballots = {
        "e1": {"a": 1.0, "b": 1.0},  # scaled to (0.707, 0.707)
        "e2": {"a": 0.1, "b": 0.0},  # a weak vote still spends the whole credit: (1, 0)
        "e3": {"a": -1.0, "b": 0.0},
    }
    support = quadratic_vote(ballots, credit=1.0)
    assert support["a"] == pytest.approx(math.sqrt(0.5) + 1.0 - 1.0)
    assert support["b"] == pytest.approx(math.sqrt(0.5))
    # credit 4 doubles every vote (the square root of the credit)
    assert quadratic_vote(ballots, credit=4.0)["b"] == pytest.approx(2 * math.sqrt(0.5))
    # an all-zero ballot abstains; an outlier cannot outweigh by scoring extremes
    assert quadratic_vote({"e": {"a": 0.0, "b": 0.0}}) == {"a": 0.0, "b": 0.0}
    loud = quadratic_vote({"x": {"a": 1.0, "b": -1.0}, "y": {"a": -0.2, "b": 0.2}})
    assert loud["a"] == pytest.approx(0.0) and loud["b"] == pytest.approx(0.0)


def test_no_evaluator_may_score_its_own_proposal() -> None:
    with pytest.raises(ValueError, match="own proposal"):
        quadratic_vote({"a": {"a": 1.0, "b": 0.0}})


def test_conviction_is_net_support_over_total_absolute_support() -> None:
    assert conviction({"a": 1.5, "b": -0.5}) == ("a", 0.75)
    assert conviction({}) == (None, 0.0)
    assert conviction({"a": 0.0, "b": 0.0}) == ("a", 0.0)


def test_forget_gate_keeps_the_winner_and_strongest_critiques_within_the_cap() -> None:
    critiques = [(0.1, "minor wording"), (-0.9, "the sign is wrong"), (0.8, "uses the calculator correctly")]
    out = forget_gate("The answer is 42.", critiques, max_tokens=60, keep=2)
    assert "The answer is 42." in out and "sign is wrong" in out and "calculator" in out
    assert "minor wording" not in out  # dropped: not among the two strongest
    words = lambda text: len(text.split())  # noqa: E731
    for cap in (3, 10, 25, 200):
        long = forget_gate("step " * 300, [(1.0, "critique " * 50)] * 3, max_tokens=cap, count=words)
        assert words(long) <= cap
    assert len(forget_gate("x" * 5000, [], max_tokens=50)) <= 200  # approx_tokens: 4 characters a token


def _brute(items: Sequence[Slot], capacity: float) -> float:
    best = 0.0
    for r in range(len(items) + 1):
        for combo in itertools.combinations(items, r):
            if sum(i.cost for i in combo) <= capacity:
                best = max(best, sum(i.value for i in combo))
    return best


def test_knapsack_beats_greedy_by_ratio() -> None:
    items = [Slot("a", "proposer", 6.0, 1.0), Slot("b", "proposer", 10.0, 2.0), Slot("c", "evaluator", 12.0, 3.0)]
    chosen = knapsack(items, 5.0)
    # greedy by value/cost takes a (6) and b (10) = 16; the optimum is b + c = 22
    assert {s.agent for s in chosen} == {"b", "c"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 8)), min_size=0, max_size=7),
    st.integers(0, 20),
)
def test_knapsack_is_optimal_and_fits(raw: list[tuple[int, int]], capacity: int) -> None:
    items = [Slot(f"x{i}", "proposer", float(v), float(c)) for i, (v, c) in enumerate(raw)]
    chosen = knapsack(items, float(capacity))
    assert sum(s.cost for s in chosen) <= capacity
    assert sum(s.value for s in chosen) == pytest.approx(_brute(items, capacity))


def test_broker_reserves_proposers_then_fills_by_value_per_cost() -> None:
    broker = Broker()
    costs = {"proposer": 2.0, "evaluator": 1.0}
    plan = broker.plan(["a", "b", "c"], capacity=5.0, default_cost=costs)  # type: ignore[arg-type]
    assert sum(s.role == "proposer" for s in plan) == 2 and sum(s.cost for s in plan) <= 5.0
    assert broker.plan(["a", "b"], capacity=3.0, default_cost=costs) == []  # type: ignore[arg-type]
    # telemetry: c's evaluations never matched the winner, a's always did
    for _ in range(5):
        broker.record("a", "evaluator", quality=1.0)
        broker.record("c", "evaluator", quality=0.0)
        broker.record("b", "proposer", quality=0.9)
        broker.record("c", "proposer", quality=0.1)
    plan = broker.plan(["a", "b", "c"], capacity=6.0, default_cost=costs)  # type: ignore[arg-type]
    chosen = {(s.agent, s.role) for s in plan}
    assert ("b", "proposer") in chosen and ("a", "evaluator") in chosen
    assert ("c", "evaluator") not in chosen  # the same cost as a's evaluation, less value
    # observed costs replace the defaults: an expensive evaluator drops out
    for _ in range(3):
        broker.record("a", "evaluator", cost=10.0)
    plan = broker.plan(["a", "b", "c"], capacity=6.0, default_cost=costs)  # type: ignore[arg-type]
    assert ("a", "evaluator") not in {(s.agent, s.role) for s in plan}


class _Agent:
    """An instructed agent with a fixed answer that scores others by a rule and logs what it read."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.name = f"agent-{answer}"
        self.prompts: list[str] = []
        self.model = Scripted(self._reply, name=self.name)

    def _reply(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        text = messages[-1].text
        if "Score every proposal" in text:
            self.prompts.append(text)
            labels = re.findall(r"^P(\d+):\n(.*)$", text, flags=re.M)
            return "\n".join(f"P{i}: {1.0 if '7' in body else -1.0} | checked" for i, body in labels)
        return f"The answer is {self.answer}."


async def test_deliberation_never_shows_an_agent_its_own_proposal_and_picks_the_qv_winner() -> None:
    agents = [_Agent("7"), _Agent("8"), _Agent("9")]
    env = make_env("arith", levels="1", tools="none")
    task = env.tasks("test", n=1)[0]
    strategy = Deliberate(agents=0, models=[a.model for a in agents], rounds=1, instruct=True)
    result = await asolve(strategy, task, env, agents[0].model, Budget(calls=12))
    for agent in agents:
        assert agent.prompts, f"{agent.name} never evaluated"
        for prompt in agent.prompts:
            assert f"The answer is {agent.answer}." not in prompt  # never its own
            assert prompt.count("The answer is") == 2  # both others, anonymously labelled
            assert "agent-" not in prompt
    assert result.best.answer == "7"
    history = result.info["history"]
    assert history[0]["winner"].endswith("agent-7")
    peer = [f for c in result.candidates for f in c.feedback if f.source == "peer"]
    assert len(peer) == 3 and all(f.visibility == "public" for f in peer)
    # 3 proposals + 3 evaluations
    assert result.ledger.calls == 6


async def test_conviction_stops_early_and_the_round_cap_holds() -> None:
    env = make_env("arith", levels="1", tools="none")
    task = env.tasks("test", n=1)[0]
    same = Scripted(lambda m, t: "The answer is 5.", capabilities=MICRO)  # not instructed: agreement scoring
    fast = await asolve(Deliberate(agents=3, rounds=5, effort=0.5), task, env, same, Budget(calls=30))
    assert fast.info["stopped"] == "conviction" and fast.info["rounds"] == 1
    slow = await asolve(Deliberate(agents=3, rounds=2, effort=100.0), task, env, same, Budget(calls=30))
    assert slow.info["stopped"] == "rounds" and slow.info["rounds"] == 2
    second = [c for c in slow.candidates if c.meta["round"] == 1]
    first_winner = slow.info["history"][0]["winner"]
    winner_id = next(c.id for c in slow.candidates if c.meta["round"] == 0 and c.meta["agent"] == first_winner)
    assert second and all(c.parent_ids == [winner_id] for c in second)  # the consensus is their parent
    assert all(c.prompt[-1].text == "Leading: 5." for c in second)  # the short form for such models
    instructed = await asolve(Deliberate(agents=3, rounds=2, effort=100.0, instruct=True), task, env, same, "calls=30")
    later = [c for c in instructed.candidates if c.meta["round"] == 1]
    assert later and all(c.prompt[-1].text.startswith("Current consensus") for c in later)
    assert all("Leading proposal:" in c.prompt[-1].text for c in later)


async def test_the_answer_is_the_position_with_most_support_over_rounds() -> None:
    """Round 1 backs 7 strongly; in round 2 the agents drift and 9 wins narrowly: 7 stays the answer."""
    value = {"7": 1.0, "3": -1.0, "9": 1.0, "8": 0.9, "6": -1.0}

    def agent(first: str, later: str, name: str) -> Scripted:
        def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
            text = messages[-1].text
            if "Score every proposal" in text:
                found = re.findall(r"^P(\d+):\n.*?The answer is (\d+)", text, flags=re.M | re.S)
                return "\n".join(f"P{i}: {value[answer]} | x" for i, answer in found)
            again = any("Current consensus" in m.text for m in messages)
            return f"The answer is {later if again else first}."

        return Scripted(reply, name=name)

    models = [agent("7", "9", "a"), agent("7", "8", "b"), agent("3", "6", "c")]
    env = make_env("arith", levels="1", tools="none")
    task = env.tasks("test", n=1)[0]
    strategy = Deliberate(agents=0, models=models, rounds=2, effort=100.0, instruct=True)
    result = await asolve(strategy, task, env, models[0], Budget(calls=30))
    history = result.info["history"]
    second = {c.meta["agent"]: c.answer for c in result.candidates if c.meta["round"] == 1}
    assert len(history) == 2 and second[history[1]["winner"]] == "9"  # round 2 alone would say 9
    assert history[1]["conviction"] < history[0]["conviction"]
    assert result.best.answer == "7"
