"""`evolve`: SE-Agent's operators over a pool of trajectories, with optional islands.

Each generation makes children with three operators, in turn:
- revision: rewrite one trajectory's approach from its own public feedback;
- recombination: combine two trajectories (different answers preferred);
- refinement: distil the pool's lessons into guidance, then attempt with it.
Survivors are chosen by public score with a diversity penalty (each survivor already kept
with the same answer costs `diversity`), so the pool does not collapse onto one answer.
With `islands > 1`, pools evolve apart and the best of each migrates to the next island
every `migrate_every` generations (OpenEvolve). Every child lists its parents in
`parent_ids` and its operator in `Trajectory.op`.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from hone.core import Budget, BudgetExceeded, Message, Sampling, Task, Trajectory, stable_int
from hone.envs import Environment
from hone.models import ChatModel

from ._base import Count, Share, SolveResult, StrategyBase
from ._search import Search
from ._select import normalize_answer, select, solution_text
from ._verify import feedback_text

Operator = Literal["revision", "recombination", "refinement"]
OPERATORS: tuple[Operator, ...] = ("revision", "recombination", "refinement")


def survivors(
    candidates: Sequence[Trajectory], scores: Mapping[str, float], size: int, diversity: float
) -> list[Trajectory]:
    """Greedy selection by score minus `diversity` per survivor already holding the same answer."""
    left = list(candidates)
    chosen: list[Trajectory] = []
    seen: Counter[str | None] = Counter()
    while left and len(chosen) < size:
        pick = max(left, key=lambda t: scores.get(t.id, 0.0) - diversity * seen[normalize_answer(t.answer)])
        left.remove(pick)
        chosen.append(pick)
        seen[normalize_answer(pick.answer)] += 1
    return chosen


@dataclass(kw_only=True)
class Evolve(StrategyBase):
    """A pool of `pool` trajectories per island evolved by revision, recombination and refinement.

    `generations` caps the generations (default: until the budget is spent, or 3 without
    one); `operators` lists those used, in turn. Instructed models get the `evolve_*`
    prompts (refinement spends one call per island and generation on the guidance); other
    models see `evolve_short` (the answers seen) and no extra call is made.
    """

    pool: Count = 4
    generations: Count | None = None
    operators: tuple[Operator, ...] = OPERATORS
    diversity: Share = 0.3
    islands: Count = 1
    migrate_every: Count = 2

    name = "evolve"

    def _short(self, parents: Sequence[Trajectory]) -> list[Message]:
        counts = Counter(t.answer or "no answer" for t in parents)
        answers = ", ".join(a if n == 1 else f"{a} (x{n})" for a, n in counts.most_common())
        return [Message.user(self.prompts.render("evolve_short", answers=answers))]

    async def _guidance(self, search: Search, pool: Sequence[Trajectory]) -> str:
        listing = "\n\n".join(
            f"Attempt {i + 1} (feedback: {feedback_text(t)}):\n{solution_text(t, limit=600)}"
            for i, t in enumerate(pool)
        )
        prompt = self.prompts.render("evolve_refine", pool=listing)
        call = await search.metered.generate([Message.user(prompt)], None, Sampling(temperature=0.0, max_tokens=200))
        return call.message.text.strip()

    def _context(self, search: Search, op: str, parents: Sequence[Trajectory], guidance: str) -> list[Message]:
        if not search.instruct:
            return self._short(parents)
        if op == "revision":
            (p,) = parents
            text = self.prompts.render("evolve_revise", transcript=solution_text(p), feedback=feedback_text(p))
        elif op == "recombination":
            a, b = parents
            text = self.prompts.render(
                "evolve_recombine",
                answer_a=a.answer,
                feedback_a=feedback_text(a),
                transcript_a=solution_text(a, limit=800),
                answer_b=b.answer,
                feedback_b=feedback_text(b),
                transcript_b=solution_text(b, limit=800),
            )
        else:
            text = self.prompts.render("evolve_guidance", guidance=guidance)
        return [Message.user(text)]

    def _parents(self, rng: random.Random, op: str, pool: Sequence[Trajectory]) -> list[Trajectory]:
        if op == "refinement":
            return list(pool)
        ranked = list(pool)  # survivors() order: best first, diverse
        top = ranked[: max(2, len(ranked) // 2)]
        if op == "revision":
            return [rng.choice(top)]
        first = rng.choice(top)
        others = [t for t in ranked if t is not first]
        different = [t for t in others if normalize_answer(t.answer) != normalize_answer(first.answer)]
        return [first, (different or others)[0]] if others else [first]

    async def _generation(
        self, search: Search, rng: random.Random, pool: list[Trajectory], generation: int, island: int
    ) -> list[Trajectory]:
        want = search.affordable(self.pool)
        jobs = []
        guidance = ""
        for i in range(want):
            op = self.operators[(generation + i) % len(self.operators)]
            parents = self._parents(rng, op, pool)
            if op == "recombination" and len(parents) < 2:
                op, parents = "revision", parents[:1]
            if op == "refinement" and search.instruct and not guidance:
                try:
                    guidance = await self._guidance(search, pool)
                except BudgetExceeded:
                    break
            context = self._context(search, op, parents, guidance)
            jobs.append(
                search.attempt(
                    context=context,
                    parents=[p.id for p in parents],
                    op=op,
                    meta={"generation": generation + 1, "island": island},
                )
            )
        return [t for t in await asyncio.gather(*jobs) if t is not None]

    async def solve(self, task: Task, env: Environment, model: ChatModel, budget: Budget) -> SolveResult:
        search = Search(self, task, env, model, budget)
        rng = random.Random(stable_int(self.seed, task.id, "evolve"))
        cap = self.generations if self.generations is not None else (None if search.bounded() else 3)
        islands: list[list[Trajectory]] = []
        for index in range(max(1, self.islands)):
            island: list[Trajectory] = []
            while len(island) < self.pool and search.can_call():
                made = await search.attempts(
                    search.affordable(self.pool - len(island)), meta={"generation": 0, "island": index}
                )
                if not made:
                    break
                island.extend(made)
            islands.append(island)
        generation = 0
        while (cap is None or generation < cap) and search.can_call() and any(islands):
            for i, island in enumerate(islands):
                if not island or not search.can_call():
                    continue
                scores = {t.id: await search.score(t) for t in island}
                pool = survivors(island, scores, self.pool, self.diversity)
                children = await self._generation(search, rng, pool, generation, i)
                scores |= {t.id: await search.score(t) for t in children}
                islands[i] = survivors(pool + children, scores, self.pool, self.diversity)
            generation += 1
            if len(islands) > 1 and generation % self.migrate_every == 0:
                bests = [isl[0] if isl else None for isl in islands]  # survivors(): best first
                for i, best in enumerate(bests):
                    target = islands[(i + 1) % len(islands)]
                    if best is not None and best not in target:
                        target.append(best)
        best = await select(search, search.candidates, "score")
        return search.finish(best, generations=generation, islands=len(islands))
