"""The mechanisms of N-way self-evaluating deliberation (NSED), as pure functions and a broker.

- `quadratic_vote`: each evaluator's signed scores are scaled so their squares sum to a
  fixed credit, then summed per proposal: an evaluator cannot outweigh others by scoring
  extremes, and an outlier spends its credit on one proposal.
- `conviction`: the winner's net support over the total absolute support, in [-1, 1].
- `forget_gate`: the consensus carried to the next round: the winner and its strongest
  critiques, cut to a token cap, so context does not grow round over round.
- `Broker`: which agents fill which roles next round, a 0/1 knapsack over (agent, role)
  slots by value (from telemetry) per cost, within the round's share of the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["proposer", "evaluator"]


def quadratic_vote(ballots: Mapping[str, Mapping[str, float]], credit: float = 1.0) -> dict[str, float]:
    """Support per proposal from `ballots[evaluator][author] = score in [-1, 1]`.

    Each evaluator's vector is scaled to squared norm `credit` (an all-zero vector abstains),
    then the scaled votes are summed per author. An evaluator scoring its own proposal is
    refused with ValueError: NSED never lets an agent vote for itself.
    """
    if credit <= 0:
        raise ValueError(f"credit must be positive, got {credit}")
    support: dict[str, float] = {}
    for evaluator, ballot in ballots.items():
        if evaluator in ballot:
            raise ValueError(f"evaluator {evaluator!r} scored its own proposal")
        clipped = {author: max(-1.0, min(1.0, float(s))) for author, s in ballot.items()}
        norm = math.sqrt(sum(s * s for s in clipped.values()))
        for author, s in clipped.items():
            support[author] = support.get(author, 0.0) + (s * math.sqrt(credit) / norm if norm else 0.0)
    return support


def conviction(support: Mapping[str, float]) -> tuple[str | None, float]:
    """The winner (highest support; first among equals) and its net support over total |support|."""
    if not support:
        return None, 0.0
    winner = max(support, key=lambda k: support[k])
    total = sum(abs(v) for v in support.values())
    return winner, (support[winner] / total if total else 0.0)


def approx_tokens(text: str) -> int:
    """A tokenizer-free token estimate: about four characters a token."""
    return math.ceil(len(text) / 4)


def forget_gate(
    winner: str,
    critiques: Sequence[tuple[float, str]],
    max_tokens: int,
    count: Callable[[str], int] = approx_tokens,
    keep: int = 2,
) -> str:
    """The consensus state: the winning proposal and its `keep` strongest critiques (by |score|).

    Everything else from the round is forgotten. The result never exceeds `max_tokens` by
    `count`: critiques that do not fit are dropped, and the winner itself is cut if needed.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    head = f"Leading proposal:\n{winner.strip()}"
    while count(head) > max_tokens and head:
        head = head[: max(0, len(head) - max(1, len(head) // 10))]
    out = head
    strongest = sorted(critiques, key=lambda c: -abs(c[0]))[:keep]
    for score, text in strongest:
        line = f"\n- critique ({score:+.1f}): {' '.join(text.split())}"
        if count(out + line) <= max_tokens:
            out += line
    return out


@dataclass(frozen=True)
class Slot:
    """One (agent, role) item of the broker's knapsack."""

    agent: str
    role: Role
    value: float
    cost: float


def knapsack(items: Sequence[Slot], capacity: float, resolution: int = 1000) -> list[Slot]:
    """The subset of `items` with the most total value whose total cost fits `capacity` (0/1 DP).

    Exact when costs are whole numbers (calls); fractional costs are rounded up to units of
    `capacity / resolution`, so the chosen set always fits (it may then miss the optimum
    narrowly). Zero-cost items with positive value are always taken; an infinite capacity
    takes every item of positive value. Order of `items` is kept.
    """
    if math.isinf(capacity):
        return [it for it in items if it.value > 0]
    if capacity < 0:
        return [it for it in items if it.cost <= 0 and it.value > 0]
    whole = all(float(it.cost).is_integer() for it in items) and capacity <= 100 * resolution
    unit = 1.0 if whole or capacity == 0 else capacity / resolution
    cap = math.floor(capacity) if whole else (resolution if capacity > 0 else 0)
    weights = [0 if it.cost <= 0 else math.ceil(it.cost / unit - 1e-9) for it in items]
    best = [0.0] * (cap + 1)
    take: list[list[bool]] = [[False] * (cap + 1) for _ in items]
    for i, (it, w) in enumerate(zip(items, weights, strict=True)):
        if it.value <= 0:
            continue
        for c in range(cap, w - 1, -1):
            if best[c - w] + it.value > best[c]:
                best[c] = best[c - w] + it.value
                take[i][c] = True
    chosen: list[int] = []
    c = cap
    for i in range(len(items) - 1, -1, -1):
        if take[i][c]:
            chosen.append(i)
            c -= weights[i]
    return [items[i] for i in sorted(chosen)]


@dataclass
class Broker:
    """Assigns agents to roles each round under a cost budget, from observed telemetry.

    Value of a slot: the agent's mean observed quality in that role (a proposer's peer
    support mapped to [0, 1]; an evaluator's agreement with the round's winner), starting
    from `prior` and shrunk towards it with `prior_weight` pseudo-observations. Cost: the
    role's observed cost per round for that agent (budget units, e.g. calls), or the default
    given to `plan` before any is seen. Value per cost decides under the knapsack.
    """

    prior: float = 0.6
    prior_weight: float = 1.0
    quality: dict[tuple[str, Role], list[float]] = field(default_factory=dict)
    costs: dict[tuple[str, Role], list[float]] = field(default_factory=dict)

    def record(self, agent: str, role: Role, quality: float | None = None, cost: float | None = None) -> None:
        if quality is not None:
            self.quality.setdefault((agent, role), []).append(quality)
        if cost is not None:
            self.costs.setdefault((agent, role), []).append(cost)

    def value(self, agent: str, role: Role) -> float:
        seen = self.quality.get((agent, role), [])
        return (self.prior * self.prior_weight + sum(seen)) / (self.prior_weight + len(seen))

    def cost(self, agent: str, role: Role, default: float) -> float:
        seen = self.costs.get((agent, role), [])
        return sum(seen) / len(seen) if seen else default

    def plan(
        self,
        agents: Sequence[str],
        capacity: float,
        default_cost: Mapping[Role, float],
        min_proposers: int = 2,
        min_evaluators: int = 1,
    ) -> list[Slot]:
        """The (agent, role) slots to fill next round: the best value that fits `capacity`.

        A round needs `min_proposers` proposers and `min_evaluators` evaluators to
        deliberate at all: the best of each by value per cost are reserved first (if they
        do not fit, the plan is empty), then the knapsack fills the rest of the capacity
        from the remaining slots.
        """
        items = [
            Slot(agent, role, self.value(agent, role), self.cost(agent, role, default_cost[role]))
            for agent in agents
            for role in ("proposer", "evaluator")
        ]

        def best(role: Role, k: int) -> list[Slot]:
            pool = [s for s in items if s.role == role]
            return sorted(pool, key=lambda s: -s.value / s.cost if s.cost > 0 else -math.inf)[:k]

        reserved = best("proposer", min_proposers) + best("evaluator", min_evaluators)
        fixed = sum(s.cost for s in reserved)
        if len(reserved) < min_proposers + min_evaluators or fixed > capacity:
            return []
        rest = knapsack([s for s in items if s not in reserved], capacity - fixed)
        return [s for s in items if s in reserved or s in rest]

    def minimum(self, agents: Sequence[str], default_cost: Mapping[Role, float]) -> float:
        """The cost of the cheapest round that can deliberate: two proposers and one evaluator."""
        prop = sorted(self.cost(a, "proposer", default_cost["proposer"]) for a in agents)[:2]
        ev = min((self.cost(a, "evaluator", default_cost["evaluator"]) for a in agents), default=0.0)
        return sum(prop) + ev
