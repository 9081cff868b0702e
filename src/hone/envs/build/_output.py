"""The built directory: `hone_env.json`, `tasks.jsonl`, `splits.json`, and a pip-installable package.

    DIR/hone_env.json      {"manifest": BuildManifest, "scenarios": [Scenario...], "system_prompt": str}
    DIR/tasks.jsonl        one verified BuiltTask per line
    DIR/splits.json        {"train": [ids], "test": [ids], "heldout": [ids]}
    DIR/stages/            each stage's output and cache.json (written by the pipeline)
    DIR/pyproject.toml + DIR/src/hone_env_<slug>/   entry point `hone.envs`: <slug> = hone_env_<slug>:make

The package carries copies of the three files under `hone_env_<slug>/data/`, so an installed
environment does not need DIR. Splits: the held-out scenarios' tasks are `heldout` (no scenario
is on both sides); the other tasks go to `test` by a seeded hash of their id, else `train`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from hone.core import stable_int

from ._spec import BuildManifest, BuiltTask, Scenario

SPLITS = ("train", "test", "heldout")

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "hone-env-{dist}"
version = "{version}"
description = {description}
requires-python = ">=3.11"
dependencies = ["hone"]

[project.entry-points."hone.envs"]
{slug} = "hone_env_{slug}:make"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
hone_env_{slug} = ["data/*"]
"""

_INIT = '''\
"""{title}: a tool-use environment built by `hone env build` ({tasks} tasks, {scenarios} scenarios)."""

from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"


def make(**options: Any) -> Any:
    """The environment (a `hone.envs.build.BuiltEnv` over this package's data)."""
    from hone.envs.build import BuiltEnv

    return BuiltEnv.load(DATA, **options)
'''


def slug(name: str) -> str:
    """The environment's registry name and the package suffix: lowercase letters, digits and `_`."""
    text = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return (text if text[:1].isalpha() else f"env_{text}")[:60] or "env"


def choose_heldout(names: Sequence[str], seed: int, share: float) -> frozenset[str]:
    """The held-out scenarios: the `share` with the lowest seeded hash; one at least (of two or more), never all."""
    if len(names) < 2 or share <= 0:
        return frozenset()
    count = min(len(names) - 1, max(1, round(share * len(names))))
    ranked = sorted(names, key=lambda n: (stable_int(seed, "heldout", n), n))
    return frozenset(ranked[:count])


def assign_splits(
    tasks: Iterable[BuiltTask], heldout: frozenset[str], seed: int, test_share: float
) -> dict[str, list[str]]:
    """Task ids by split: held-out scenarios' tasks, then a seeded `test_share` of the rest."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for task in tasks:
        if task.scenario in heldout:
            out["heldout"].append(task.id)
        elif stable_int(seed, "split", task.id) % 10_000 < test_share * 10_000:
            out["test"].append(task.id)
        else:
            out["train"].append(task.id)
    return out


def write_output(
    out: Path,
    manifest: BuildManifest,
    scenarios: Sequence[Scenario],
    tasks: Sequence[BuiltTask],
    splits: dict[str, list[str]],
    system_prompt: str = "",
) -> None:
    """Write DIR's files and its package (each file replaced atomically)."""
    env = {
        "manifest": manifest.model_dump(mode="json"),
        "scenarios": [s.model_dump(mode="json") for s in scenarios],
        "system_prompt": system_prompt,
    }
    files = {
        "hone_env.json": json.dumps(env, ensure_ascii=False, indent=1),
        "tasks.jsonl": "".join(t.model_dump_json() + "\n" for t in tasks),
        "splits.json": json.dumps(splits, indent=1),
    }
    name = slug(manifest.name)
    package = out / "src" / f"hone_env_{name}"
    data = package / "data"
    data.mkdir(parents=True, exist_ok=True)
    for old in out.glob("src/hone_env_*"):
        if old != package and old.is_dir():
            shutil.rmtree(old)  # the source was renamed: one package only
    for file, text in files.items():
        _write(out / file, text)
        _write(data / file, text)
    title = manifest.name.replace('"', "'")
    _write(package / "__init__.py", _INIT.format(title=title, tasks=len(tasks), scenarios=len(scenarios)))
    description = json.dumps(f"hone environment {manifest.name} built from a {manifest.kind} source")
    _write(
        out / "pyproject.toml",
        _PYPROJECT.format(dist=name.replace("_", "-"), version="0.1.0", description=description, slug=name),
    )


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
