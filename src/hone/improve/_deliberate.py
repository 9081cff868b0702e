"""`deliberate`: N-way self-evaluating deliberation (NSED) among agents (models or samples).

Each round: the broker picks which agents propose and which evaluate within the round's
share of the budget; proposers attempt the task with the consensus so far in context;
every evaluator scores every *other* proposal anonymously in [-1, 1] with a rationale
(never its own); quadratic voting aggregates the scores (proposals with the same answer pool their
support into one position, whose share is the round's conviction); the winner and its strongest
critiques pass the forget gate into the next round's consensus (a model that cannot follow
instructions sees only the leading answer, `deliberate_short`). It stops when the
accumulated conviction passes `effort`, at `rounds`, or when the budget is spent. The
answer is the position (answer) with the most support summed over all rounds.

An instructed evaluator reads the proposals (shuffled, labelled P1..Pn) and replies with
scores, one call per evaluator. Agents that cannot follow instructions score by agreement
instead, at no cost: +1 for a proposal with the same answer as their own, -1 otherwise,
blended with the public verifier; an evaluator that did not propose scores by the
verifier alone.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from hone.core import (
    Budget,
    BudgetExceeded,
    ConfigError,
    Feedback,
    Ledger,
    Message,
    Sampling,
    Task,
    Trajectory,
    stable_int,
)
from hone.envs import Environment
from hone.models import ChatModel

from ._base import Count, NonNegative, SolveResult, StrategyBase
from ._nsed import Broker, Role, conviction, forget_gate, quadratic_vote
from ._search import Search
from ._select import majority_vote, normalize_answer, question_text, select, solution_text

_LINE = re.compile(r"P(\d+)\s*[:=]\s*([-+]?\d*\.?\d+)\s*\|?\s*(.*)")


def parse_ballot(text: str, n: int) -> dict[int, tuple[float, str]]:
    """`{index: (score, rationale)}` from lines like `P2: -0.5 | wrong sign`; indexes are 0-based."""
    out: dict[int, tuple[float, str]] = {}
    for line in (text or "").splitlines():
        match = _LINE.search(line)
        if match and 1 <= int(match[1]) <= n:
            out[int(match[1]) - 1] = (max(-1.0, min(1.0, float(match[2]))), match[3].strip())
    return out


@dataclass
class _Agent:
    id: str
    model: ChatModel


@dataclass
class _Round:
    proposals: dict[str, Trajectory] = field(default_factory=dict)  # author -> proposal
    ballots: dict[str, dict[str, float]] = field(default_factory=dict)  # evaluator -> author -> score
    rationales: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # author -> critiques


@dataclass(kw_only=True)
class Deliberate(StrategyBase):
    """NSED; see the module docstring.

    `agents` is the number of agents sharing the solving model, plus one per entry of
    `models` (other ChatModels). `rounds` caps the rounds; `effort` is the conviction to
    accumulate before stopping (higher: more rounds); `credit` the quadratic-voting credit;
    `gate_tokens` the forget gate's cap (approximate tokens); `proposer_cost` and
    `evaluator_cost` the broker's guesses of a role's calls per round before it has observed
    any. The broker works in the budget's unit: calls when calls are limited, else tokens
    (guesses scaled by the tokens per call seen so far), else seconds.
    """

    agents: Annotated[int, Field(ge=0)] = 3
    models: Sequence[ChatModel] = ()
    rounds: Count = 3
    effort: NonNegative = 1.5
    credit: NonNegative = 1.0
    gate_tokens: int = 200
    proposer_cost: float = 2.0
    evaluator_cost: float = 1.0

    name = "deliberate"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.agents + len(self.models) < 1:
            raise ConfigError("strategy 'deliberate': option agents=0 needs other models; a team needs an agent")

    def _team(self, model: ChatModel) -> list[_Agent]:
        team = [_Agent(f"agent{i}", model) for i in range(self.agents)]
        team += [_Agent(f"agent{len(team) + i}:{m.name}", m) for i, m in enumerate(self.models)]
        return team

    def _capacity(self, search: Search, rounds_left: int, minimum: float) -> float:
        """This round's share of the budget left, but at least a minimal round while one fits."""
        left = search.left()
        if left is None:
            return float("inf")
        return max(left / max(1, rounds_left), min(minimum, left))

    def _default_costs(self, search: Search) -> dict[Role, float]:
        """The broker's cost guesses before it observes any, in the budget's unit."""
        per_call = search.per_call()
        evaluator = self.evaluator_cost if search.instruct else 0.0
        return {"proposer": self.proposer_cost * per_call, "evaluator": evaluator * per_call}

    async def _evaluate(
        self, search: Search, agent: _Agent, rnd: _Round, rng: random.Random
    ) -> tuple[dict[str, float], dict[str, str]]:
        others = [a for a in rnd.proposals if a != agent.id]
        if not search.instruct:
            own = rnd.proposals.get(agent.id)
            mine = normalize_answer(own.answer) if own is not None else None
            scores: dict[str, float] = {}
            for author in others:
                public = 2 * await search.score(rnd.proposals[author]) - 1
                if mine is None:
                    scores[author] = public
                else:
                    agree = 1.0 if normalize_answer(rnd.proposals[author].answer) == mine else -1.0
                    scores[author] = 0.5 * agree + 0.5 * public
            return scores, {a: "agreement with own answer" if mine else "public verifier" for a in others}
        order = list(others)
        rng.shuffle(order)  # anonymous: labels say nothing about the author
        listing = "\n\n".join(f"P{i + 1}:\n{solution_text(rnd.proposals[a], 800)}" for i, a in enumerate(order))
        question = question_text(next(iter(rnd.proposals.values())))
        prompt = self.prompts.render("deliberate_evaluate", question=question, proposals=listing)
        call = await search.call(agent.model, [Message.user(prompt)], None, Sampling(temperature=0.0, max_tokens=400))
        parsed = parse_ballot(call.message.text, len(order))
        return (
            {a: parsed.get(i, (0.0, ""))[0] for i, a in enumerate(order)},
            {a: parsed.get(i, (0.0, "no score given"))[1] for i, a in enumerate(order)},
        )

    async def solve(self, task: Task, env: Environment, model: ChatModel, budget: Budget) -> SolveResult:
        search = Search(self, task, env, model, budget)
        rng = random.Random(stable_int(self.seed, task.id, "deliberate"))
        team = {a.id: a for a in self._team(model)}
        broker = Broker()
        consensus, evidence = "", 0.0
        standing: dict[str, float] = {}  # support accumulated per answer over the rounds
        latest: dict[str, Trajectory] = {}  # the most recent winning-round proposal per answer
        winner: Trajectory | None = None
        history: list[dict[str, object]] = []
        stop = "rounds"
        for r in range(self.rounds):
            costs = self._default_costs(search)
            capacity = self._capacity(search, self.rounds - r, broker.minimum(list(team), costs))
            slots = broker.plan(list(team), capacity, costs)
            proposers = [s.agent for s in slots if s.role == "proposer"]
            evaluators = [s.agent for s in slots if s.role == "evaluator"]
            if len(proposers) < 2 or not evaluators or not search.can_call():
                stop = "budget"
                break
            if winner is None:
                context = []
            elif search.instruct:
                context = [Message.user(self.prompts.render("deliberate_consensus", consensus=consensus))]
            else:  # a model that cannot read the consensus sees only the leading answer
                context = [Message.user(self.prompts.render("deliberate_short", answer=winner.answer or "none"))]
            rnd = _Round()
            made = await asyncio.gather(
                *(
                    search.attempt(
                        model=team[a].model,
                        context=context,
                        parents=[winner.id] if winner else [],
                        op="propose",
                        meta={"agent": a, "round": r},
                    )
                    for a in proposers
                )
            )
            rnd.proposals = {a: t for a, t in zip(proposers, made, strict=True) if t is not None}
            for a, t in rnd.proposals.items():
                broker.record(a, "proposer", cost=search.cost_of(t.usage))
            if len(rnd.proposals) < 2:
                stop = "budget"
                break
            for ev in evaluators:
                before, started = search.account.ledger.model_copy(), search.account.elapsed()
                try:
                    scores, why = await self._evaluate(search, team[ev], rnd, rng)
                except BudgetExceeded:
                    continue
                after = search.account.ledger
                spent = Ledger(
                    calls=after.calls - before.calls,
                    prompt_tokens=after.prompt_tokens - before.prompt_tokens,
                    completion_tokens=after.completion_tokens - before.completion_tokens,
                    seconds=search.account.elapsed() - started,
                )
                broker.record(ev, "evaluator", cost=search.cost_of(spent))
                if scores:
                    rnd.ballots[ev] = scores
                    for author, s in scores.items():
                        rnd.rationales.setdefault(author, []).append((s, why[author]))
            if not rnd.ballots:
                stop = "budget"
                break
            support = quadratic_vote(rnd.ballots, self.credit)
            # Proposals with the same answer are one position: conviction is over positions.
            position = {a: normalize_answer(t.answer) or f"#{a}" for a, t in rnd.proposals.items()}
            by_position: dict[str, float] = {}
            for author, value in support.items():
                by_position[position[author]] = by_position.get(position[author], 0.0) + value
            lead, conv = conviction(by_position)
            top = max((a for a in support if position[a] == lead), key=lambda a: support[a])
            if not any(support.values()):  # every evaluator abstained: fall back to self-consistency
                scores = {t.id: await search.score(t) for t in rnd.proposals.values()}
                voted = majority_vote(list(rnd.proposals.values()), scores)
                top = next((a for a, t in rnd.proposals.items() if t is voted), top)
            winner = rnd.proposals[top]
            evidence += max(0.0, conv)
            for position_key, value in by_position.items():
                standing[position_key] = standing.get(position_key, 0.0) + value
            for author, t in rnd.proposals.items():
                if position[author] not in latest or author == top:
                    latest[position[author]] = t
            for author, t in rnd.proposals.items():
                peer = rnd.rationales.get(author, [])
                mean = sum(s for s, _ in peer) / len(peer) if peer else None
                t.feedback.append(
                    Feedback(
                        source="peer",
                        name="nsed",
                        score=mean,
                        text=" | ".join(w for _, w in peer)[:500],
                        visibility="public",
                        evidence={"support": round(support.get(author, 0.0), 4), "round": r},
                    )
                )
                broker.record(author, "proposer", quality=(support.get(author, 0.0) / len(rnd.ballots) + 1) / 2)
            for ev, ballot in rnd.ballots.items():
                pick = max(ballot, key=lambda a: ballot[a])
                broker.record(ev, "evaluator", quality=1.0 if pick == top else 0.0)
            consensus = forget_gate(solution_text(winner, 600), rnd.rationales.get(top, []), self.gate_tokens)
            history.append({"round": r, "winner": top, "conviction": round(conv, 4), "support": support})
            if evidence >= self.effort:
                stop = "conviction"
                break
        # The answer is the position with the most support over all rounds, so one noisy
        # late round cannot overturn earlier consensus.
        if standing:
            best: Trajectory | None = latest[max(standing, key=lambda k: standing[k])]
        else:
            best = await select(search, search.candidates, "vote")
        return search.finish(best, stopped=stop, rounds=len(history), evidence=round(evidence, 4), history=history)
