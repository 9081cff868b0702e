"""The environment registry: built-ins, entry points (`hone.envs`) and `pkg.module:factory` specs."""

from __future__ import annotations

import inspect
from typing import Any

from hone.core import ConfigError, Registry

from ._arith import Arith
from ._base import Environment
from ._gsm8k import GSM8K
from ._humaneval import HumanEval

envs: Registry[Environment] = Registry(kind="environment", group="hone.envs")
envs.add("arith", Arith)
envs.add("gsm8k", GSM8K)
envs.add("humaneval", HumanEval)


def make_env(spec: str, **kwargs: Any) -> Environment:
    """Build the environment named `spec` (a registered name or `pkg.module:factory`) with options `kwargs`.

    Options may be strings (the CLI passes `--env-arg level=3` as text); each environment
    converts what it needs. An option the factory does not accept raises `ConfigError`
    naming the environment and the options it accepts.
    """
    factory = envs.get(spec)
    try:
        signature: inspect.Signature | None = inspect.signature(factory)
    except (TypeError, ValueError):  # some callables (builtins, C extensions) have no signature
        signature = None
    if signature is not None:
        params = signature.parameters.values()
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
        accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown and not takes_any:
            raise ConfigError(
                f"environment {spec!r} has no option {unknown[0]!r}; accepted options: {', '.join(accepted) or 'none'}"
            )
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"environment {spec!r}: {exc}") from None
    env = factory(**kwargs)
    if not isinstance(env, Environment):
        raise ConfigError(f"{spec!r} did not build an Environment (got {type(env).__name__})")
    return env


def list_envs() -> list[tuple[str, str]]:
    """`(name, one-line description)` for every registered environment, sorted by name."""
    out: list[tuple[str, str]] = []
    for name in envs.names():
        doc = inspect.getdoc(envs.get(name)) or ""
        out.append((name, doc.strip().splitlines()[0] if doc.strip() else ""))
    return out
