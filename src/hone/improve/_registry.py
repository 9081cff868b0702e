"""The strategy registry: names to factories, CLI options to typed fields, parameters to JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hone.core import ConfigError, Registry, Sampling

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


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _convert(name: str, key: str, default: Any, value: Any) -> Any:
    """A CLI string as the type of the field's default (None: bool words, then int, float, text)."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    low = value.strip().lower()
    if default is None:
        if low in _TRUE + _FALSE and not low.isdigit():
            return low in _TRUE
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value
    try:
        if isinstance(default, bool):
            if low not in _TRUE + _FALSE:
                raise ValueError(value)
            return low in _TRUE
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(v.strip() for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(
            f"strategy {name!r}: option {key}={value!r} must be of type {type(default).__name__}"
        ) from None
    return value


def make_strategy(spec: str, **options: Any) -> Strategy:
    """The strategy named `spec` (or `pkg.module:factory`) built with `options`.

    Options may be strings (from the CLI) and are converted to the field's type
    (`prompts=DIR` loads prompt overrides from a directory); an unknown option raises
    `ConfigError` naming the accepted ones.
    """
    factory = strategies.get(spec)
    if dataclasses.is_dataclass(factory):
        fields = {f.name: f for f in dataclasses.fields(factory) if f.init}
        unknown = sorted(set(options) - set(fields))
        if unknown:
            raise ConfigError(f"strategy {spec!r} has no option {unknown[0]!r}; options: {', '.join(sorted(fields))}")
        for key, value in list(options.items()):
            if key == "prompts" and isinstance(value, str):
                options[key] = Prompts(value)
                continue
            f = fields[key]
            default = f.default if f.default is not dataclasses.MISSING else None
            options[key] = _convert(spec, key, default, value)
    made = factory(**options)
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
