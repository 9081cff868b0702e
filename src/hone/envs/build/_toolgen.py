"""`toolgen`: the built-in tool-use environment family, built from the shipped scenario catalog.

The catalog (`catalog/*.json`, expanded by `_catalog.py`) is built once by the pipeline with the
template generator and shipped, compressed, as `catalog/_toolgen.json.xz` (the three files of a
built directory), so `make_env("toolgen")` starts offline in about a second with no build. The
held-out scenarios (`"heldout": true` in their files) form the `heldout` split: their tools and
worlds never appear in `train` or `test`.

Regenerate the shipped file after changing the catalog or the pipeline (deterministic: the same
catalog, seed and code give the same bytes):

    python -m hone.envs.build._toolgen --rebuild            # rewrites catalog/_toolgen.json.xz
    python -m hone.envs.build._toolgen --out DIR            # a normal built directory instead
"""

from __future__ import annotations

import argparse
import json
import lzma
import re
import tempfile
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from hone.core import ConfigError, validate_options

from ._catalog import load_catalog
from ._env import BuiltEnv
from ._envkit import DEFAULT_SYSTEM_PROMPT, ENV_FILE, SPLITS, SPLITS_FILE, TASKS_FILE, _Data
from ._harness import DEFAULT_CALL_TIMEOUT_S
from ._spec import LEVELS, BuildManifest, BuiltTask, Scenario

SHIPPED = "_toolgen.json.xz"
SEED = 0
TASKS_PER_LEVEL = 40
"""Per scenario and level: 46 scenarios x 6 levels x 40 = about 11,000 verified tasks."""


def _levels(value: Any) -> list[int]:
    """Levels as text ("1-6", "2", "1,2,4") or a list of ints -> sorted; `ValueError` (one line) otherwise."""
    items = value if isinstance(value, list | tuple) else [value]
    out: set[int] = set()
    try:
        for item in items:
            text = str(item).strip()
            if m := re.fullmatch(r"(\d)\s*-\s*(\d)", text):
                out.update(range(int(m[1]), int(m[2]) + 1))
            else:
                out.update(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ValueError("levels: use e.g. 1-6, 2 or 1,2,4") from None
    if not out or not out <= set(LEVELS):
        raise ValueError(f"levels are 1 to 6 ({', '.join(f'{k} {v}' for k, v in LEVELS.items())})")
    return sorted(out)


class ToolgenOptions(BaseModel):
    """What `-e KEY=VALUE` may set on `toolgen`."""

    model_config = ConfigDict(extra="forbid")
    levels: Annotated[list[int], BeforeValidator(_levels)] = Field(
        default=list(LEVELS), description="Levels posed: 1 single, 2 choice, 3 parallel, 4 chain, 5 ask, 6 no_tool."
    )
    scenarios: list[str] | None = Field(None, description="Only these catalog scenarios (default: all).")
    call_timeout_s: float = Field(DEFAULT_CALL_TIMEOUT_S, gt=0, le=600, description="Seconds per tool call.")
    memory_mb: int = Field(512, ge=64, le=65536, description="Memory of the episode's interpreter (MiB).")


class Toolgen(BuiltEnv):
    """Tool use over 46 shipped scenarios (500+ tools), levels 1-6; splits train, test, heldout (unseen scenarios).

    Options: `levels` ("1-6" default, "1,2", a list), `scenarios` (names, default all),
    `call_timeout_s`, `memory_mb`. Task.meta: level, subset, scenario, heldout. Every task was
    verified at build time by running its reference solution in the sandbox.
    """

    Options: ClassVar[type[BaseModel]] = ToolgenOptions

    def __init__(
        self,
        levels: Any = "1-6",
        scenarios: Sequence[str] | None = None,
        *,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        memory_mb: int = 512,
        sandbox: Any = None,
    ) -> None:
        opts = validate_options(
            ToolgenOptions,
            {"levels": levels, "scenarios": scenarios, "call_timeout_s": call_timeout_s, "memory_mb": memory_mb},
            "toolgen",
        )
        data = shipped()
        unknown = sorted(set(opts.scenarios or ()) - set(data.scenarios))
        if unknown:
            raise ConfigError(
                f"toolgen: unknown scenario {unknown[0]!r}; scenarios: {', '.join(sorted(data.scenarios))}"
            )
        self.levels = opts.levels
        keep_scenarios = set(opts.scenarios or data.scenarios)
        keep = {
            i for i, t in data.tasks.items() if t.level in opts.levels and t.scenario in keep_scenarios
        }  # every task stays gradable; only what `tasks()` poses is filtered
        view = _Data(
            root=data.root,
            manifest=data.manifest,
            scenarios=data.scenarios,
            tasks=data.tasks,
            splits={s: [i for i in ids if i in keep] for s, ids in data.splits.items()},
            system_prompt=data.system_prompt,
        )
        super().__init__(view, call_timeout_s=opts.call_timeout_s, memory_mb=opts.memory_mb, sandbox=sandbox)


def _shipped_path() -> Path:
    return Path(str(resources.files("hone.envs.build").joinpath("catalog", SHIPPED)))


@cache
def shipped() -> _Data:
    """The shipped build, parsed once per process (clones and instances share it, read-only)."""
    path = _shipped_path()
    if not path.is_file():
        raise ConfigError(
            f"{path}: the shipped toolgen build is missing; run python -m hone.envs.build._toolgen --rebuild"
        )
    files = unpack(path.read_bytes())
    head = json.loads(files[ENV_FILE])
    tasks = [BuiltTask.model_validate_json(line) for line in files[TASKS_FILE].splitlines() if line.strip()]
    raw = json.loads(files[SPLITS_FILE])
    return _Data(
        root=path,
        manifest=BuildManifest.model_validate(head["manifest"]),
        scenarios={s.name: s for s in (Scenario.model_validate(x) for x in head["scenarios"])},
        tasks={t.id: t for t in tasks},
        splits={name: [str(i) for i in raw.get(name, [])] for name in SPLITS},
        system_prompt=str(head.get("system_prompt") or DEFAULT_SYSTEM_PROMPT),
    )


def pack(build_dir: Path) -> bytes:
    """A built directory's three files as one xz-compressed JSON object (deterministic bytes)."""
    files = {name: (build_dir / name).read_text(encoding="utf-8") for name in (ENV_FILE, TASKS_FILE, SPLITS_FILE)}
    text = json.dumps(files, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return lzma.compress(text.encode(), preset=9 | lzma.PRESET_EXTREME)


def unpack(blob: bytes) -> dict[str, str]:
    """The file texts of a `pack`ed build."""
    files = json.loads(lzma.decompress(blob))
    if not isinstance(files, dict) or not {ENV_FILE, TASKS_FILE, SPLITS_FILE} <= set(files):
        raise ConfigError("not a packed toolgen build (expected hone_env.json, tasks.jsonl, splits.json)")
    return {str(k): str(v) for k, v in files.items()}


def build_toolgen(
    out_dir: Path | str,
    names: Sequence[str] | None = None,
    *,
    seed: int = SEED,
    tasks_per_level: int = TASKS_PER_LEVEL,
    levels: Sequence[int] = tuple(LEVELS),
    workers: int | None = None,
    progress: bool = False,
) -> BuildManifest:
    """Build the catalog (or the scenarios `names`) into `out_dir` with the shipped settings."""
    from ._pipeline import build

    source = load_catalog(names, seed)
    return build(
        source, out_dir, seed=seed, tasks_per_level=tasks_per_level, levels=levels, workers=workers, progress=progress
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hone.envs.build._toolgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help=f"rebuild and rewrite catalog/{SHIPPED}")
    parser.add_argument("--out", type=Path, help="write a built directory here instead")
    parser.add_argument("--scenarios", help="comma-separated scenario names (default: all)")
    parser.add_argument("--tasks-per-level", type=int, default=TASKS_PER_LEVEL)
    parser.add_argument("--workers", type=int)
    args = parser.parse_args(argv)
    if not args.rebuild and args.out is None:
        parser.error("give --rebuild or --out DIR")
    names = [n.strip() for n in args.scenarios.split(",")] if args.scenarios else None
    if args.rebuild and (names or args.tasks_per_level != TASKS_PER_LEVEL):
        parser.error("--rebuild uses the shipped settings (all scenarios, the default tasks per level)")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "toolgen"
        manifest = build_toolgen(out, names, tasks_per_level=args.tasks_per_level, workers=args.workers, progress=True)
        if args.rebuild:
            target = _shipped_path()
            target.write_bytes(pack(out))
            print(f"wrote {target} ({target.stat().st_size:,} bytes)")
    print(
        f"{manifest.tasks} tasks over {manifest.scenarios} scenarios ({manifest.tools} tools); "
        f"by level {manifest.by_level}; splits {manifest.splits}; dropped {manifest.dropped or 'none'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
