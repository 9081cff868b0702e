"""`Search`: one strategy's working state on one task, and the only way it spends budget.

Every model call a strategy makes (attempt steps, judges, reflections, peer scores) goes
through `Search.call`, which reserves it in one `Account` before it is made. So a strategy
cannot pass its `Budget`: calls are refused before they start; completion tokens are capped
at the tokens left; a call still running when the seconds run out is cancelled.

A strategy that picks its answer with an LLM judge (`select="judge"` or `"pairwise"`) has
part of the budget held back for the judge from the start (`judge_reserve`): otherwise the
samples would spend it all and the judge would never run.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hone.core import (
    Account,
    Budget,
    BudgetExceeded,
    ErrorInfo,
    HoneError,
    Ledger,
    Message,
    ModelCall,
    ModelError,
    Sampling,
    Task,
    ToolSpec,
    Trajectory,
    hidden_reward,
    stable_int,
)
from hone.envs import Environment
from hone.models import ChatModel
from hone.rollout import run_episode

from ._base import ORACLE_TAG, SolveResult, StrategyBase, mark_oracle, oracle_label
from ._defaults import budget_less, default_sampling, follows_instructions, judge_reserve
from ._guard import PublicEnv
from ._verify import public_score


@dataclass
class Usage:
    """Telemetry of one model within a search: what the deliberation broker reads."""

    calls: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        return {"calls": self.calls, "tokens": self.tokens, "seconds": round(self.seconds, 4)}


class Metered:
    """A `ChatModel` whose calls spend from a `Search`'s account (give it to judges)."""

    def __init__(self, model: ChatModel, search: Search) -> None:
        self.inner = model
        self.name = model.name
        self._search = search

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        sampling: Sampling | None = None,
    ) -> ModelCall:
        return await self._search.call(self.inner, messages, tools, sampling)


class Search:
    """A strategy's state on one task: the account, the candidates, public scores, telemetry."""

    def __init__(self, strategy: StrategyBase, task: Task, env: Environment, model: ChatModel, budget: Budget) -> None:
        self.strategy = strategy
        self.task = task
        self.env = env if isinstance(env, PublicEnv) else PublicEnv(env)
        self.oracle = self.env.oracle
        self.name = oracle_label(strategy.name, self.oracle)
        self.model = model
        self.metered = Metered(model, self)
        self.budget = budget
        self.account = Account(budget)
        self.instruct = strategy.instruct if strategy.instruct is not None else follows_instructions(model)
        self.base_sampling = strategy.sampling or default_sampling(model)
        # Held back for a judge selector until `release()` (a model that cannot judge needs none).
        self.held = judge_reserve(strategy, budget) if self.instruct and not self.oracle else None
        self._work = self.account if self.held is None else self.account.child(budget_less(budget, self.held))
        self.candidates: list[Trajectory] = []
        self.telemetry: dict[str, Usage] = {}
        self._verifier = strategy.verifier or public_score
        self._scores: dict[str, float] = {}
        self._calls_made = 0
        self._attempt_calls: list[int] = []

    # --- budget -----------------------------------------------------------------------

    def bounded(self) -> bool:
        """Whether the budget limits something every call spends (calls, tokens or seconds).

        Strategies without a count of their own use a default one otherwise, so a budget of
        only cost (free local models) or tool calls cannot make them loop for ever.
        """
        b = self.budget
        return b.calls is not None or b.tokens is not None or b.seconds is not None

    @property
    def work_account(self) -> Account:
        """The account attempts spend from: the whole budget less what is held for a judge."""
        return self._work

    def release(self) -> None:
        """Make the held part of the budget available (the judge selector is about to run)."""
        self._work = self.account

    def can_call(self) -> bool:
        """Whether one more model call is allowed now (not counting what is held for a judge)."""
        return self._work.can_call()

    def calls_left(self) -> int | None:
        """Calls left under the budget (less any held), or None when calls are not limited."""
        b = self._work.budget
        if b.calls is None:
            return None
        return max(0, b.calls - self.account.ledger.calls)

    def unit(self) -> str:
        """What the budget is counted in for planning: calls, else tokens, else seconds."""
        b = self.budget
        return "calls" if b.calls is not None else "tokens" if b.tokens is not None else "seconds"

    def left(self) -> float | None:
        """Budget left in `unit()` (less any held), or None when nothing bounds it."""
        b, led = self._work.budget, self.account.ledger
        if b.calls is not None:
            return float(max(0, b.calls - led.calls))
        if b.tokens is not None:
            return float(max(0, b.tokens - led.tokens))
        if b.seconds is not None:
            return max(0.0, b.seconds - self.account.elapsed())
        return None

    def cost_of(self, ledger: Ledger) -> float:
        """What `ledger` spent, in `unit()`."""
        unit = self.unit()
        return float(ledger.calls if unit == "calls" else ledger.tokens if unit == "tokens" else ledger.seconds)

    def per_call(self) -> float:
        """One call's observed cost in `unit()` (telemetry over all models; a guess before any)."""
        calls = sum(u.calls for u in self.telemetry.values())
        unit = self.unit()
        if unit == "calls":
            return 1.0
        if unit == "tokens":
            return sum(u.tokens for u in self.telemetry.values()) / calls if calls else 500.0
        return sum(u.seconds for u in self.telemetry.values()) / calls if calls else 1.0

    def calls_per_attempt(self) -> int:
        """Mean calls of the attempts finished so far, rounded up (1 before any)."""
        done = self._attempt_calls
        return max(1, math.ceil(sum(done) / len(done))) if done else 1

    def affordable(self, cap: int) -> int:
        """How many attempts to start now: at most `cap`, as many as the calls left pay for.

        Before any attempt has finished its cost is unknown, so only one starts; starting
        more could leave them all cut short by the budget.
        """
        if not self.can_call():
            return 0
        left = self.calls_left()
        if left is None:
            return cap
        if not self._attempt_calls:
            return 1
        return max(1, min(cap, left // self.calls_per_attempt()))

    def sampling(self, temperature: float | None = None, **update: object) -> Sampling:
        """The base sampling with a fresh seed per call (and `temperature`, if given)."""
        self._calls_made += 1
        base = self.base_sampling
        # The strategy's name, not its label: an oracle run draws the same samples as an honest one.
        seed = stable_int(self.strategy.seed, base.seed, self.task.id, self.strategy.name, self._calls_made)
        changes: dict[str, object] = {"seed": seed, **update}
        if temperature is not None:
            changes["temperature"] = temperature
        return base.model_copy(update=changes)

    async def call(
        self,
        model: ChatModel,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        sampling: Sampling | None,
        account: Account | None = None,
    ) -> ModelCall:
        """Make one model call within the budget (raises `BudgetExceeded` before it starts)."""
        acct = account or self._work
        acct.reserve_call()
        sampling = sampling or self.sampling()
        limit = self._work.budget  # the attempts' share while a judge's is held, else the whole budget
        if limit.tokens is not None:
            left = max(1, limit.tokens - self.account.ledger.tokens)
            if sampling.max_tokens is None or sampling.max_tokens > left:
                sampling = sampling.model_copy(update={"max_tokens": left})
        start = time.monotonic()
        try:
            if limit.seconds is None:
                result = await model.generate(messages, tools, sampling)
            else:
                async with asyncio.timeout(max(0.0, limit.seconds - self.account.elapsed())):
                    result = await model.generate(messages, tools, sampling)
        except TimeoutError:
            raise BudgetExceeded("seconds", self.account.elapsed(), limit.seconds or 0.0) from None
        except HoneError:
            raise
        except Exception as exc:  # a backend bug becomes a typed error, never a crash of the search
            raise ModelError(f"{type(exc).__name__}: {exc}") from exc
        acct.record_usage(result.usage.prompt_tokens, result.usage.completion_tokens, result.cost_usd)
        use = self.telemetry.setdefault(model.name, Usage())
        use.calls += 1
        use.tokens += result.usage.total_tokens
        use.seconds += time.monotonic() - start
        return result

    # --- candidates -----------------------------------------------------------------------

    async def attempt(
        self,
        *,
        context: Sequence[Message] = (),
        prefix: Trajectory | None = None,
        parents: Sequence[str] = (),
        temperature: float | None = None,
        max_steps: int | None = None,
        op: str = "sample",
        model: ChatModel | None = None,
        meta: dict[str, object] | None = None,
    ) -> Trajectory | None:
        """Run one attempt (see `_episode`) and keep it as a candidate; None if refused."""
        traj = await self._episode(
            context=context,
            prefix=prefix,
            parents=parents,
            sampling=self.sampling(temperature),
            max_steps=max_steps,
            op=op,
            model=model or self.model,
            meta=meta or {},
        )
        if traj is not None:
            self.keep(traj)
            if not traj.partial and (prefix is None or not prefix.steps):
                self._attempt_calls.append(traj.usage.calls)
        return traj

    async def start(self, **meta: object) -> Trajectory:
        """The opening state as a candidate with no steps (a search tree's root): no model call."""
        traj = await self._episode(
            context=(),
            prefix=None,
            parents=(),
            sampling=self.base_sampling,  # never sampled: no seed is drawn for it
            max_steps=0,
            op="root",
            model=self.model,
            meta=dict(meta),
        )
        assert traj is not None  # nothing to refuse: it makes no call
        return self.keep(traj)

    async def _episode(
        self,
        *,
        context: Sequence[Message],
        prefix: Trajectory | None,
        parents: Sequence[str],
        sampling: Sampling,
        max_steps: int | None,
        op: str,
        model: ChatModel,
        meta: dict[str, object],
    ) -> Trajectory | None:
        """An ungraded episode on the public view (`hone.rollout.run_episode`: `context` after the
        prompt, `prefix`'s steps replayed, at most `max_steps` new ones), its calls through `call`;
        None when the budget refused its first new call (nothing was made)."""
        steps = list(prefix.steps) if prefix is not None else []
        traj = await run_episode(
            self.env.clone(),
            model,
            self.task,
            sampling=sampling,
            limits=self.strategy.limits,
            account=self._work,
            grade=False,
            context=context,
            prefix=steps,
            max_steps=max_steps,
            call=self.call,
        )
        if traj.error is not None and traj.error.type == BudgetExceeded.kind and len(traj.steps) == len(steps):
            return None  # refused before its first new call: not an attempt
        traj.parent_ids = list(parents)
        traj.op = op
        traj.meta = {**meta, **traj.meta}
        return traj

    async def attempts(self, count: int, **kwargs: object) -> list[Trajectory]:
        """`count` attempts concurrently (same arguments, distinct seeds); refused ones left out."""
        done = await asyncio.gather(*(self.attempt(**kwargs) for _ in range(count)))  # type: ignore[arg-type]
        return [t for t in done if t is not None]

    def keep(self, traj: Trajectory) -> Trajectory:
        """Record a candidate: strategy label, sample index, oracle tag."""
        traj.strategy = self.name
        traj.sample = len(self.candidates)
        if self.oracle:
            mark_oracle(traj)
        self.candidates.append(traj)
        return traj

    async def score(self, traj: Trajectory) -> float:
        """The candidate's score: the public verifier's, or (oracle only) the hidden grader's."""
        if traj.id in self._scores:
            return self._scores[traj.id]
        if self.oracle:
            if traj.status == "error" or traj.partial:
                value = 0.0
            else:
                traj.feedback.extend(await self.env.grade(traj))
                traj.reward = hidden_reward(traj.feedback)
                value = traj.reward if traj.reward is not None else 0.0
            traj.meta["oracle_score"] = value
        else:
            value = float(self._verifier(traj))
            traj.meta["public_score"] = value
        self._scores[traj.id] = value
        return value

    def finish(self, best: Trajectory | None, **info: object) -> SolveResult:
        """The result: `best` (or an empty failed trajectory when nothing was made)."""
        ledger = self.account.close()
        if best is None:
            best = self._empty()
        return SolveResult(
            best=best,
            candidates=list(self.candidates),
            ledger=ledger,
            strategy=self.name,
            oracle=self.oracle,
            stopped_by=None if self.can_call() else "budget",
            info={**info, "telemetry": {m: u.summary() for m, u in self.telemetry.items()}},
        )

    def _empty(self) -> Trajectory:
        traj = Trajectory(
            task_id=self.task.id,
            env=self.env.name,
            env_version=self.env.version,
            subset=self.task.subset,
            model=self.model.name,
            status="error",
            stop_reason="error",
            strategy=self.name,
            tags=[ORACLE_TAG] if self.oracle else [],
            oracle=self.oracle,
        )
        traj.error = ErrorInfo(type=BudgetExceeded.kind, message=f"no attempt fitted in the budget {self.budget}")
        return traj
