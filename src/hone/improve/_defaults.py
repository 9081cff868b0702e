"""Defaults that depend on the model or the strategy: sampling temperature, instruction
following, and the part of a budget held back for a judge selector."""

from __future__ import annotations

from hone.core import Budget, ConfigError, Sampling
from hone.models import ChatModel


def is_micro(model: ChatModel) -> bool:
    """Whether `model` is one of hone's embedded micro models (`micro`, `micro-base`)."""
    return model.name.split("/")[-1].startswith("micro")


def guess_instruct(model: ChatModel) -> bool:
    """Whether a model follows instructions: the embedded micro model does not."""
    return not is_micro(model)


MICRO_TEMPERATURE = 0.7
"""Default sampling temperature for hone's embedded micro models (measured: see `default_sampling`)."""


def default_sampling(model: ChatModel) -> Sampling:
    """The base sampling a strategy uses with `model` when it sets none.

    hone's embedded `micro` models: temperature `MICRO_TEMPERATURE`; at 1.0 their samples
    are so noisy that best-of-n by vote (calls=16) is worse than one greedy sample on
    arith, while from 0.3 to 0.7 it matches or beats it (benchmarks/RESULTS.md). Other
    models: 1.0, the usual default of chat APIs.
    """
    return Sampling(temperature=MICRO_TEMPERATURE if is_micro(model) else 1.0)


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
