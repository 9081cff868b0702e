"""Finding an environment's data file: an option, else an environment variable, else a default path."""

from __future__ import annotations

import os
from pathlib import Path

from hone.core import ConfigError


def resolve_data_file(env: str, path: str | Path | None, env_var: str, default: Path, example: str) -> Path:
    """`path`, else `$env_var`, else `default` (relative to the working directory) when it exists.

    `example` is how the file is named in the error (`PATH/test.jsonl`): a missing file is a
    `ConfigError` saying each way to point at it.
    """
    if path is not None and str(path) != "":
        chosen = Path(path).expanduser()
    elif os.environ.get(env_var):
        chosen = Path(os.environ[env_var]).expanduser()
    elif default.is_file():
        chosen = default
    else:
        raise ConfigError(
            f"{env}: no data file; pass --env-arg path={example}, set {env_var}, "
            f"or place the file at {default} (relative to the working directory)"
        )
    if not chosen.is_file():
        raise ConfigError(f"{env}: data file not found: {chosen} (pass --env-arg path={example})")
    return chosen.resolve()
