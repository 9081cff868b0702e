"""Build speed: `hone env build` (the pipeline's `build`) on the whole shipped toolgen catalog, from scratch.

Generates and verifies (every reference solution executed in the sandbox) about 11,000 tasks:
46 scenarios x 6 levels x 40 tasks (the shipped settings). Reports tasks/s, seconds per stage
(from the stage files' write times), what verification dropped and why, and the time of a cached
rerun (every stage read back). Target: >= 10,000 tasks in <= 2 minutes on 2 cores. `--cores N`
pins this process, and so the sandbox it starts, to N CPUs. Writes benchmarks/results/env_build.json.

    .venv/bin/python benchmarks/env_build.py [--cores 2] [--tasks-per-level 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from hone.envs.build._catalog import load_catalog
from hone.envs.build._pipeline import STAGES, build
from hone.envs.build._toolgen import SEED, TASKS_PER_LEVEL

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2, help="CPUs to pin to (0: do not pin)")
    parser.add_argument("--workers", type=int, default=None, help="sandbox workers (default: the pinned CPUs)")
    parser.add_argument("--tasks-per-level", type=int, default=TASKS_PER_LEVEL)
    parser.add_argument("-o", "--output", default=str(ROOT / "benchmarks/results/env_build.json"))
    args = parser.parse_args()
    if args.cores:
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[: args.cores])
    cpus = len(os.sched_getaffinity(0))
    workers = args.workers or cpus

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "toolgen"
        start = time.perf_counter()
        wall0 = time.time()
        source = load_catalog(seed=SEED)
        loaded = time.perf_counter() - start
        manifest = build(source, out, seed=SEED, tasks_per_level=args.tasks_per_level, workers=workers)
        total = time.perf_counter() - start
        stamps = [wall0 + loaded] + [
            (out / "stages" / f"{i + 1:02d}_{name}.json").stat().st_mtime for i, name in enumerate(STAGES)
        ]
        stages = {"catalog": round(loaded, 3)}
        stages |= {name: round(stamps[i + 1] - stamps[i], 3) for i, name in enumerate(STAGES)}
        stages["write"] = round(wall0 + total - stamps[-1], 3)
        again = time.perf_counter()
        rerun = build(source, out, seed=SEED, tasks_per_level=args.tasks_per_level, workers=workers)
        cached = time.perf_counter() - again
        assert rerun.model_dump() == manifest.model_dump(), "a cached rerun must give the same manifest"

    report = {
        "benchmark": "env_build",
        "what": "hone env build of the toolgen catalog from scratch: generate, verify every task in the sandbox",
        "tasks": manifest.tasks,
        "scenarios": manifest.scenarios,
        "tools": manifest.tools,
        "tasks_per_level": args.tasks_per_level,
        "seconds": round(total, 2),
        "tasks_per_s": round(manifest.tasks / total, 1),
        "stage_seconds": stages,
        "cached_rerun_seconds": round(cached, 2),
        "by_level": manifest.by_level,
        "splits": manifest.splits,
        "dropped": manifest.dropped,
        "dropped_total": sum(manifest.dropped.values()),
        "target": ">= 10,000 tasks in <= 120 s on 2 cores",
        "target_met": manifest.tasks >= 10_000 and total <= 120 and cpus <= 2,
        "cpus": cpus,
        "workers": workers,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "load": os.getloadavg()},
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
