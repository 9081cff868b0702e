"""`best_of_n`: independent samples, one selector. The baseline every strategy is compared with."""

from __future__ import annotations

from dataclasses import dataclass

from hone.core import Budget, Task
from hone.envs import Environment
from hone.models import ChatModel

from ._base import Count, Share, SolveResult, StrategyBase
from ._defaults import JUDGE_SHARE
from ._search import Search
from ._select import SelectorName, select

UNLIMITED_N = 8
"""Samples drawn when neither `n` nor a calls budget says how many."""


@dataclass(kw_only=True)
class BestOfN(StrategyBase):
    """Sample `n` attempts (default: as many as the budget pays for) and pick one with `select`.

    `select="vote"` is self-consistency over normalised answers (ties by public score);
    `"score"` the public verifier; `"judge"`/`"pairwise"` LLM judges: their calls count,
    and `judge_share` of the budget is held back for them from the start (see `judge_reserve`).
    Attempts run `parallel` at a time; a new wave starts only while the calls left pay
    for it, so the budget is spent on whole attempts, not cut-off ones.
    """

    n: Count | None = None
    select: SelectorName = "vote"
    judge_share: Share = JUDGE_SHARE

    name = "best_of_n"

    async def solve(self, task: Task, env: Environment, model: ChatModel, budget: Budget) -> SolveResult:
        search = Search(self, task, env, model, budget)
        target = self.n if self.n is not None else (None if search.bounded() else UNLIMITED_N)
        made = 0
        while search.can_call() and (target is None or made < target):
            want = self.parallel if target is None else min(self.parallel, target - made)
            wave = await search.attempts(search.affordable(want))
            if not wave:
                break
            made += len(wave)
        best = await select(search, search.candidates, self.select)
        return search.finish(best, samples=made)
