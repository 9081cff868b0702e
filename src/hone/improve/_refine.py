"""`refine`: multi-turn retry with public feedback, with the Feedback-Friction mitigations.

Models resist feedback (Feedback Friction): they repeat the answer they were told is wrong.
So each retry (1) lists the answers already tried and rejects a retry that repeats one
(it is kept as a candidate, marked `rejected`, and its answer is never selected over a
new one), and (2) samples at a rising temperature. It stops at the first public success
signal (verifier score >= `success`), after `rounds` attempts, or when the budget is spent.
"""

from __future__ import annotations

from dataclasses import dataclass

from hone.core import Budget, Message, Task, Trajectory
from hone.envs import Environment
from hone.models import ChatModel

from ._base import Count, NonNegative, SolveResult, StrategyBase
from ._search import Search
from ._select import best_by_score, normalize_answer
from ._verify import feedback_text

CONTEXT_CHARS = 3000
"""The previous attempt's transcript shown to an instructed model is cut to this many characters."""


def temperature_schedule(start: float, step: float, cap: float, rounds: int) -> list[float]:
    """`start, start+step, ...` capped at `cap`: the rising temperature of successive retries."""
    return [min(cap, start + step * i) for i in range(rounds)]


@dataclass(kw_only=True)
class Refine(StrategyBase):
    """Retry with the public feedback on the last attempt; see the module docstring.

    An instructed model sees its previous attempt and the `refine` prompt (feedback plus
    the rejected answers); a model that cannot follow instructions sees only the short
    `refine_short` note ("Not 12, 15.") after the question.
    """

    rounds: Count = 8
    temperature_step: NonNegative = 0.2
    max_temperature: NonNegative = 1.5

    name = "refine"

    def _context(self, search: Search, last: Trajectory, tried: list[str]) -> list[Message]:
        listed = ", ".join(tried) or "none"
        if not search.instruct:
            return [Message.user(self.prompts.render("refine_short", tried=listed))] if tried else []
        previous = [m for s in last.steps for m in (s.call.message, *s.observations)]
        while previous and sum(len(m.text) for m in previous) > CONTEXT_CHARS:
            previous = previous[1:]
        while previous and previous[0].role == "tool":
            previous = previous[1:]  # a tool result must follow its call
        note = self.prompts.render("refine", answer=last.answer, feedback=feedback_text(last), tried=listed)
        return [*previous, Message.user(note)]

    async def solve(self, task: Task, env: Environment, model: ChatModel, budget: Budget) -> SolveResult:
        search = Search(self, task, env, model, budget)
        temps = temperature_schedule(
            search.base_sampling.temperature, self.temperature_step, self.max_temperature, self.rounds
        )
        tried: list[str] = []
        accepted: list[Trajectory] = []
        last: Trajectory | None = None
        stop = "rounds"
        for temperature in temps:
            if not search.can_call():
                stop = "budget"
                break
            context = self._context(search, last, tried) if last is not None else []
            parents = [last.id] if last is not None else []
            traj = await search.attempt(context=context, parents=parents, temperature=temperature, op="retry")
            if traj is None:
                stop = "budget"
                break
            key = normalize_answer(traj.answer)
            if key is not None and key in tried:
                traj.meta["rejected"] = "already tried"
            else:
                accepted.append(traj)
                if key is not None:
                    tried.append(key)
            last = traj
            if await search.score(traj) >= self.success and "rejected" not in traj.meta:
                stop = "success"
                break
        pool = accepted or search.candidates
        scores = {t.id: await search.score(t) for t in pool}
        # Among equal public scores the latest attempt wins: it saw the most feedback.
        best = best_by_score(list(reversed(pool)), scores)
        rejected = len(search.candidates) - len(accepted)
        return search.finish(best, stopped=stop, rounds=len(search.candidates), rejected=rejected)
