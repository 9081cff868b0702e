"""`reflexion`: after a failed attempt, a short verbal reflection joins a bounded memory that
later attempts see in their prompt (Shinn et al. 2023).

"Failed" is judged from public signals only (verifier score below `success`). An
instructed model writes the reflection itself (one extra call, counted); otherwise the
reflection is the `reflect_short` template filled with the answer and its public feedback.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hone.core import Budget, BudgetExceeded, Message, Sampling, Task, Trajectory
from hone.envs import Environment
from hone.feedback import transcript_text
from hone.models import ChatModel

from ._base import Count, SolveResult, StrategyBase
from ._search import Search
from ._select import best_by_score
from ._verify import feedback_text


class Memory:
    """The last `size` reflections, each cut to `chars` characters."""

    def __init__(self, size: int, chars: int) -> None:
        self.chars = chars
        self.items: deque[str] = deque(maxlen=max(1, size))

    def add(self, text: str) -> None:
        text = " ".join(text.split())
        self.items.append(text if len(text) <= self.chars else text[: self.chars - 3] + "...")

    def __len__(self) -> int:
        return len(self.items)


@dataclass(kw_only=True)
class Reflexion(StrategyBase):
    """Attempt, reflect on failure, retry with the reflections in context; see the module docstring.

    `attempts` caps the attempts (default: until success or the budget); `memory` bounds
    the reflections kept (oldest dropped) and `reflection_chars` each one's length.
    """

    attempts: Count | None = None
    memory: int = 3
    reflection_chars: Count = 300

    name = "reflexion"

    async def _reflect(self, search: Search, traj: Trajectory) -> str:
        feedback = feedback_text(traj)
        if not search.instruct:
            return self.prompts.render("reflect_short", answer=traj.answer or "no answer", feedback=feedback)
        prompt = self.prompts.render("reflect", transcript=transcript_text(traj.messages()), feedback=feedback)
        call = await search.metered.generate([Message.user(prompt)], None, Sampling(temperature=0.0, max_tokens=200))
        return call.message.text or feedback

    async def solve(self, task: Task, env: Environment, model: ChatModel, budget: Budget) -> SolveResult:
        search = Search(self, task, env, model, budget)
        memory = Memory(self.memory, self.reflection_chars)
        cap = self.attempts if self.attempts is not None else (None if search.bounded() else 4)
        last: Trajectory | None = None
        stop = "attempts"
        while cap is None or len(search.candidates) < cap:
            listed = "\n".join(f"- {r}" for r in memory.items)
            context = [Message.user(self.prompts.render("reflections", reflections=listed))] if len(memory) else []
            traj = await search.attempt(
                context=context, parents=[last.id] if last else [], op="attempt", meta={"memory": len(memory)}
            )
            if traj is None:
                stop = "budget"
                break
            last = traj
            if await search.score(traj) >= self.success:
                stop = "success"
                break
            if cap is not None and len(search.candidates) >= cap:
                break  # no attempt left to use a reflection: do not pay for one
            try:
                reflection = await self._reflect(search, traj)
            except BudgetExceeded:
                stop = "budget"
                break
            traj.meta["reflection"] = reflection
            memory.add(reflection)
        scores = {t.id: await search.score(t) for t in search.candidates}
        best = best_by_score(list(reversed(search.candidates)), scores)
        return search.finish(best, stopped=stop, reflections=len(memory))
