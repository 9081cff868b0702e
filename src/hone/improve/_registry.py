"""The strategy registry: names to factories (options checked by their models), parameters to JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hone.core import ConfigError, Registry, Sampling, parse_options

from ._base import Strategy
from ._best_of_n import BestOfN
from ._deliberate import Deliberate
from ._evolve import Evolve
from ._mcts import MCTS
from ._prompts import Prompts
from ._refine import Refine
from ._reflexion import Reflexion

BASELINE = "best_of_n"


def _greedy() -> Sampling:
    return Sampling(temperature=0.0)


@dataclass(kw_only=True)
class Single(BestOfN):
    """One greedy attempt (temperature 0): the no-improvement reference."""

    n: int | None = 1
    sampling: Sampling = field(default_factory=_greedy)

    name = "single"


strategies: Registry[Strategy] = Registry(kind="strategy", group="hone.strategies")
"""Named strategy factories; plugins add theirs under the `hone.strategies` entry point group."""
for _cls in (Single, BestOfN, Refine, Reflexion, MCTS, Evolve, Deliberate):
    strategies.add(_cls.name, _cls)


def make_strategy(spec: str, **options: Any) -> Strategy:
    """The strategy named `spec` (or `pkg.module:factory`) built with `options`.

    Options may be strings (from the CLI): they are checked and converted by the strategy's
    options model (`hone.core.parse_options`; `prompts=DIR` loads prompt overrides from a
    directory); an unknown option or a bad value raises a one-line `ConfigError`.
    """
    factory = strategies.get(spec)
    if isinstance(options.get("prompts"), str | Path):
        options["prompts"] = Prompts(options["prompts"])
    made = factory(**parse_options(factory, options, f"strategy {spec!r}"))
    if not isinstance(made, Strategy):
        raise ConfigError(f"{spec!r} did not build a Strategy (got {type(made).__name__})")
    return made


def strategy_config(strategy: Strategy) -> dict[str, Any]:
    """A strategy's parameters as plain JSON values (what a stored run records)."""
    out: dict[str, Any] = {"name": strategy.name}
    if dataclasses.is_dataclass(strategy):
        for f in dataclasses.fields(strategy):
            value = getattr(strategy, f.name)
            if isinstance(value, str | int | float | bool | type(None)):
                out[f.name] = value
            elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
                out[f.name] = list(value)
            elif hasattr(value, "model_dump"):
                out[f.name] = value.model_dump(mode="json")
    return out
