"""What was spent (Ledger), what may be spent (Budget), and accounts that enforce it."""

from __future__ import annotations

import math
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._errors import BudgetExceeded, ConfigError


class Ledger(BaseModel):
    """Spend counters. Runs, episodes and strategies each keep one, so results state their cost."""

    model_config = ConfigDict(extra="forbid")

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    tool_calls: int = 0
    env_steps: int = 0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Ledger) -> None:
        """Add `other`'s counters into this ledger."""
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.tool_calls += other.tool_calls
        self.env_steps += other.env_steps
        self.seconds += other.seconds

    @classmethod
    def total(cls, ledgers: list[Ledger]) -> Ledger:
        out = cls()
        for ledger in ledgers:
            out.add(ledger)
        return out


_BUDGET_KEYS = {
    "calls": "calls",
    "tokens": "tokens",
    "cost": "cost_usd",
    "cost_usd": "cost_usd",
    "tool_calls": "tool_calls",
    "seconds": "seconds",
}


class Budget(BaseModel):
    """Limits over a Ledger; `None` means unlimited.

    `calls` and `tool_calls` are never passed (a call is reserved before it is made).
    `tokens` and `cost_usd` are known only after a call returns, so the call that crosses
    the limit completes and the next reservation raises. `seconds` is wall time since the
    account opened.
    """

    model_config = ConfigDict(extra="forbid")

    calls: int | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)
    tool_calls: int | None = Field(default=None, ge=0)
    seconds: float | None = Field(default=None, ge=0)

    @classmethod
    def parse(cls, text: str) -> Budget:
        """Parse `calls=16,tokens=20000,cost=1.5,seconds=60`."""
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition("=")
            field = _BUDGET_KEYS.get(key.strip())
            if not sep or field is None:
                allowed = ", ".join(sorted(_BUDGET_KEYS))
                raise ConfigError(f"bad budget item {part!r}: use KEY=VALUE with KEY in {allowed}")
            try:
                number = float(raw)
            except ValueError as exc:
                raise ConfigError(f"bad budget value in {part!r}: not a number") from exc
            if not math.isfinite(number) or number < 0:
                raise ConfigError(f"bad budget value in {part!r}: must be a number >= 0")
            if field in ("cost_usd", "seconds"):
                values[field] = number
            elif number.is_integer():  # tokens=2e6 is a count too
                values[field] = int(number)
            else:
                raise ConfigError(f"bad budget value in {part!r}: {key.strip()} must be a whole number")
        return cls(**values)

    def is_unlimited(self) -> bool:
        return all(v is None for v in self.model_dump().values())

    def __str__(self) -> str:
        items = [f"{k}={v:g}" for k, v in self.model_dump().items() if v is not None]
        return ",".join(items) or "unlimited"


class Account:
    """A Ledger with an optional Budget and an optional parent account.

    Spending is recorded in this account and every ancestor; a limit anywhere in the chain
    raises `BudgetExceeded`. Reservations are checked in all accounts before any is changed,
    so a refused call leaves every ledger untouched.
    """

    def __init__(self, budget: Budget | None = None, parent: Account | None = None, ledger: Ledger | None = None):
        self.budget = budget or Budget()
        self.parent = parent
        self.ledger = ledger or Ledger()
        self._started = time.monotonic() - self.ledger.seconds

    def child(self, budget: Budget | None = None) -> Account:
        """A sub-account whose spending also counts here."""
        return Account(budget, parent=self)

    def _chain(self) -> list[Account]:
        chain: list[Account] = []
        node: Account | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _check_before(self, calls: int = 0, tool_calls: int = 0) -> None:
        for acct in self._chain():
            b, led = acct.budget, acct.ledger
            if b.calls is not None and led.calls + calls > b.calls:
                raise BudgetExceeded("calls", led.calls + calls, b.calls)
            if b.tool_calls is not None and led.tool_calls + tool_calls > b.tool_calls:
                raise BudgetExceeded("tool_calls", led.tool_calls + tool_calls, b.tool_calls)
            if b.tokens is not None and led.tokens >= b.tokens:
                raise BudgetExceeded("tokens", led.tokens, b.tokens)
            if b.cost_usd is not None and led.cost_usd >= b.cost_usd:
                raise BudgetExceeded("cost_usd", led.cost_usd, b.cost_usd)
            if b.seconds is not None and acct.elapsed() >= b.seconds:
                raise BudgetExceeded("seconds", acct.elapsed(), b.seconds)

    def can_call(self) -> bool:
        """Whether one more model call would be allowed now."""
        try:
            self._check_before(calls=1)
        except BudgetExceeded:
            return False
        return True

    def reserve_call(self) -> None:
        """Count one model call before it is made; raises if no budget is left."""
        self._check_before(calls=1)
        for acct in self._chain():
            acct.ledger.calls += 1

    def record_usage(self, prompt_tokens: int, completion_tokens: int, cost_usd: float | None = None) -> None:
        """Record the tokens and cost of a call that has returned."""
        for acct in self._chain():
            acct.ledger.prompt_tokens += prompt_tokens
            acct.ledger.completion_tokens += completion_tokens
            acct.ledger.cost_usd += cost_usd or 0.0

    def reserve_tool_call(self) -> None:
        """Count one tool call before it runs; raises if no budget is left."""
        self._check_before(tool_calls=1)
        for acct in self._chain():
            acct.ledger.tool_calls += 1

    def record_spent(self, usage: Ledger) -> None:
        """Count spending that already happened elsewhere (an episode run by a remote worker).

        Not checked against the budget: it is spent. The caller checks `can_call` before it
        hands out more work, so a budget is exceeded by at most the work already in flight.
        """
        counts = usage.model_copy(update={"seconds": 0.0})  # wall time is the account's own clock
        for acct in self._chain():
            acct.ledger.add(counts)

    def record_env_step(self) -> None:
        for acct in self._chain():
            acct.ledger.env_steps += 1

    def close(self) -> Ledger:
        """Stamp wall seconds into this account's ledger and return it."""
        self.ledger.seconds = self.elapsed()
        return self.ledger
