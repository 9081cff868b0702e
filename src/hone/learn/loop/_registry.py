"""The learners `hone loop --method NAME` can name: the built-in three, those registered in-process
with `register_learner`, and plug-ins through the entry point group `hone.learners` (the entry
point loads a learner class: built from its pydantic `Config`, with a `learn(ctx)` method)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel

from hone.core import ConfigError, parse_options, validate_options

from ._config import LoopConfig
from ._learner import Learner
from ._learners import DPO, GRPO, ExpertIteration

ENTRY_POINTS = "hone.learners"


@dataclass(frozen=True)
class LearnerSpec:
    """A registered learner: its options model and how to build it from them."""

    name: str
    config: type[BaseModel]
    make: Callable[[Any], Learner]


_BUILTIN: dict[str, LearnerSpec] = {
    "expert-iteration": LearnerSpec("expert-iteration", ExpertIteration.Config, ExpertIteration),
    "grpo": LearnerSpec("grpo", GRPO.Config, GRPO),
    "dpo": LearnerSpec("dpo", DPO.Config, DPO),
}
_REGISTRY: dict[str, LearnerSpec] = dict(_BUILTIN)
SKIP = {"lr", "options", "method", "loop_id", "out"}  # loop fields a learner's options never take from the loop


def register_learner(name: str, learner: Callable[[Any], Learner], config: type[BaseModel] | None = None) -> None:
    """Make `hone loop --method NAME` use `learner`, built from an instance of `config`
    (default: `learner.Config`). Registering a name again replaces it."""
    model = config if config is not None else getattr(learner, "Config", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(f"learner {name!r}: needs an options model (a pydantic `Config` class attribute)")
    _REGISTRY[name] = LearnerSpec(name, model, learner)


def _plugins() -> None:
    for ep in entry_points(group=ENTRY_POINTS):
        if ep.name in _REGISTRY:
            continue
        try:
            register_learner(ep.name, ep.load())
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"learner {ep.name!r} ({ep.value}) does not load: {exc}") from exc


def learner_names() -> list[str]:
    """Every method `hone loop --method` accepts: built-in, registered and plug-in learners."""
    _plugins()
    return list(_REGISTRY)


def learner_spec(name: str) -> LearnerSpec:
    """The learner registered as `name`; a one-line `ConfigError` listing the others when there is none."""
    names = learner_names()
    if name not in _REGISTRY:
        raise ConfigError(f"loop: no learner {name!r}; methods: {', '.join(names)}")
    return _REGISTRY[name]


def unregister_learner(name: str) -> None:
    """Forget a learner registered in-process (a built-in or plug-in name comes back on the next lookup)."""
    _REGISTRY.pop(name, None)
    _REGISTRY.update({k: v for k, v in _BUILTIN.items() if k not in _REGISTRY})


def learner_options(spec: LearnerSpec, config: LoopConfig) -> BaseModel:
    """`spec`'s options model from the loop's `config`: its fields named like the loop's take their values
    (`lr` only when given), then `config.options` (`--set`; `trl.NAME` keys go into its `trl` field)."""
    fields = spec.config.model_fields
    values: dict[str, Any] = {
        name: getattr(config, name) for name in fields if name in LoopConfig.model_fields and name not in SKIP
    }
    if config.lr is not None and "lr" in fields:
        values["lr"] = config.lr
    given = dict(config.options)
    trl = {key.removeprefix("trl."): given.pop(key) for key in list(given) if key.startswith("trl.")}
    what = f"learner {spec.name}"
    values |= parse_options(spec.config, given, what)
    if trl:
        if "trl" not in fields:
            raise ConfigError(f"{what} takes no TRL options (trl.{next(iter(trl))})")
        values["trl"] = {**values.get("trl", {}), **trl}
    return validate_options(spec.config, values, what)
