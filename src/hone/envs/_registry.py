"""The environment registry: built-ins, entry points (`hone.envs`) and `pkg.module:factory` specs."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from hone.core import ConfigError, Registry, parse_options

from ._arith import Arith
from ._base import Environment
from ._bfcl import BFCL
from ._gsm8k import GSM8K
from ._humaneval import HumanEval
from .build._toolgen import Toolgen

envs: Registry[Environment] = Registry(kind="environment", group="hone.envs")
envs.add("arith", Arith)
envs.add("bfcl", BFCL)
envs.add("gsm8k", GSM8K)
envs.add("humaneval", HumanEval)
envs.add("toolgen", Toolgen)


def make_env(spec: str, **kwargs: Any) -> Environment:
    """Build the environment named `spec` (a registered name, `pkg.module:factory`, or the path of a
    directory written by `hone env build`) with options `kwargs`.

    Options may be strings (the CLI passes `--env-arg levels=3` as text): they are checked and
    converted by the environment's options model (its `Options`, else one derived from the
    factory's typed signature; `hone.core.parse_options`). An unknown option or a bad value
    raises a one-line `ConfigError` naming the option and what it accepts.
    """
    if is_built_dir(spec):
        from .build._env import BuiltEnv

        return BuiltEnv.load(spec, **parse_options(BuiltEnv, kwargs, f"environment {spec!r}"))
    factory = envs.get(spec)
    env = factory(**parse_options(factory, kwargs, f"environment {spec!r}"))
    if not isinstance(env, Environment):
        raise ConfigError(f"{spec!r} did not build an Environment (got {type(env).__name__})")
    return env


def is_built_dir(spec: str) -> bool:
    """True when `spec` is a directory holding a built environment (`hone_env.json`)."""
    return (Path(spec) / "hone_env.json").is_file()


def list_envs() -> list[tuple[str, str]]:
    """`(name, one-line description)` for every registered environment, sorted by name."""
    out: list[tuple[str, str]] = []
    for name in envs.names():
        doc = inspect.getdoc(envs.get(name)) or ""
        out.append((name, doc.strip().splitlines()[0] if doc.strip() else ""))
    return out
