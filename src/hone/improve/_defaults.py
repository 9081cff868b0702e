"""Defaults that depend on the model or the strategy: sampling temperature, instruction
following, and the part of a budget held back for a judge selector."""

from __future__ import annotations

from hone.core import Budget, ConfigError, Sampling
from hone.models import MICRO, ChatModel, capabilities

MICRO_TEMPERATURE = MICRO.temperature
"""hone's micro models' declared default temperature (measured: benchmarks/RESULTS.md)."""


def follows_instructions(model: ChatModel) -> bool:
    """Whether `model` follows written instructions, as it declares (`hone.models.capabilities`)."""
    return capabilities(model).instruct


def default_sampling(model: ChatModel) -> Sampling:
    """The base sampling a strategy uses with `model` when it sets none: the temperature the model
    declares (`Capabilities.temperature`: `MICRO_TEMPERATURE` for hone's micro models, 1.0, the usual
    default of chat APIs, for a model that declares none)."""
    return Sampling(temperature=capabilities(model).temperature)


JUDGE_SHARE = 0.25
"""Default share of the budget held back for a judge selector (`judge_share` overrides it)."""


def judge_reserve(strategy: object, budget: Budget) -> Budget | None:
    """What to hold back for `strategy`'s judge selector, or None when it selects without a judge.

    `judge_share` (default `JUDGE_SHARE`) of each limited calls, tokens, seconds and cost
    budget, and at least two calls: two answers judged (`"judge"`) or one match, judged in
    both orders (`"pairwise"`, whose reserve is even). Raises `ConfigError` when the calls
    budget cannot pay for one sample and that judging.
    """
    how = getattr(strategy, "select", None)
    if how not in ("judge", "pairwise"):
        return None
    share = float(getattr(strategy, "judge_share", JUDGE_SHARE))
    if not 0.0 < share < 1.0:
        raise ConfigError(f"judge_share must be between 0 and 1 (exclusive), got {share:g}")
    step = 2 if how == "pairwise" else 1
    held = Budget()
    if budget.calls is not None:
        calls = max(2, step * round(budget.calls * share / step))
        if budget.calls - calls < 1:
            name = getattr(strategy, "name", "strategy")
            raise ConfigError(
                f"{name} with select={how!r} needs --budget calls=3 or more "
                f"(samples and 2 judge calls); got calls={budget.calls}"
            )
        held.calls = calls
    if budget.tokens is not None:
        held.tokens = int(budget.tokens * share)
    if budget.seconds is not None:
        held.seconds = budget.seconds * share
    if budget.cost_usd is not None:
        held.cost_usd = budget.cost_usd * share
    return held


def budget_less(budget: Budget, held: Budget) -> Budget:
    """`budget` minus `held` (fields `held` leaves unset are kept)."""
    out = budget.model_copy()
    for key, value in held.model_dump(exclude_none=True).items():
        setattr(out, key, getattr(budget, key) - value)
    return out
