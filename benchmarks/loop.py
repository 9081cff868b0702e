"""`hone loop` on arith with the micro model: the gain, methods at equal wall time, step throughput.

Three measurements, written to benchmarks/results/loop.json:

1. The demo loop (`make demo`: `hone loop arith` with its defaults, expert iteration from
   `micro-base`): held-out accuracy before and after, tool calls per solved task before
   and after, wall time (target: >= +15 points in <= 600 s on 2 cores), and the start and
   final checkpoints on the `heldout` split, which the loop never evaluates on.
2. GRPO vs expert iteration vs DPO from the same start, each loop stopped at the same
   wall-time budget (a new iteration does not start once it is spent): a table.
3. Training throughput on 2 cores: tokens/s of the SFT, DPO and GRPO calls of those loops.

Each loop writes into a temporary store and report directory.

    .venv/bin/python benchmarks/loop.py [--budget 300] [--skip-methods] [--out benchmarks/results/loop.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hone.learn.loop import LoopConfig, run_loop
from hone.store import SQLStore

TARGETS = {"gain_points_min": 15.0, "demo_wall_s_max": 600}
DEMO: dict[str, Any] = {}  # LoopConfig's defaults, as `make demo` runs it


def _independent(report: Any, split: str = "heldout", n: int = 200) -> dict[str, Any]:
    """Start and final checkpoints on a split the loop never saw (it evaluates on `test`): what of the gain holds."""
    from hone import evaluate
    from hone.core import Sampling

    out: dict[str, Any] = {"split": split, "n": n}
    for key, it in (("before", report.iterations[0]), ("after", report.iterations[-1])):
        res = evaluate("arith", f"hf:{it.checkpoint}", split=split, n=n, store=False, sampling=Sampling(temperature=0))
        out[key] = round(res.summary.accuracy or 0.0, 4)
        out[f"by_level_{key}"] = {k: round(v.accuracy or 0.0, 4) for k, v in res.summary.by_subset.items()}
    out["gain_points"] = round(100 * (out["after"] - out["before"]), 1)
    return out


def _loop(tmp: Path, name: str, **over: Any) -> dict[str, Any]:
    config = LoopConfig(out=tmp / name, loop_id=name, **over)
    start = time.perf_counter()
    with SQLStore(f"sqlite:///{tmp}/{name}.db") as store:
        report = run_loop(config, store, log=lambda m: print(f"  [{name}] {m}", flush=True))
    wall = time.perf_counter() - start
    its = report.iterations
    return {
        "independent_split": _independent(report),
        "temperature": config.temperature,
        "method": config.method,
        "model": config.model,
        "lr": config.learning_rate,
        "wall_s": round(wall, 1),
        "iterations": len(its) - 1,
        "before": its[0].heldout_accuracy,
        "after": its[-1].heldout_accuracy,
        "gain_points": round(100 * (its[-1].heldout_accuracy - its[0].heldout_accuracy), 1),
        "by_level_before": its[0].accuracy_by_level,
        "by_level_after": its[-1].accuracy_by_level,
        "tool_calls_per_solved_before": its[0].tool_calls_per_solved_task,
        "tool_calls_per_solved_after": its[-1].tool_calls_per_solved_task,
        "train_tokens_per_s": [it.train.get("tokens_per_second") for it in its[1:]],
        "monitors": [it.monitors for it in its[1:]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "loop.json")
    parser.add_argument("--budget", type=float, default=300.0, help="Seconds per method in the comparison.")
    parser.add_argument("--skip-methods", action="store_true", help="Only the demo loop.")
    parser.add_argument("--skip-demo", action="store_true", help="Only the methods at equal wall time.")
    parser.add_argument("--model", default="micro-base", help="The start of every loop.")
    args = parser.parse_args()
    # Sections not rerun (--skip-demo / --skip-methods) are kept from the last results.
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results["targets"] = TARGETS
    with tempfile.TemporaryDirectory(prefix="hone-loop-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_demo:
            demo = _loop(tmp, "demo", **{"model": args.model, **DEMO})
            demo["checks"] = {
                "gain": demo["gain_points"] >= TARGETS["gain_points_min"],
                "wall_s": demo["wall_s"] <= TARGETS["demo_wall_s_max"],
            }
            results["demo"] = demo
        if not args.skip_methods:
            results["equal_wall_time"] = {"budget_s": args.budget, "start": args.model, "methods": {}}
            for method in ("expert-iteration", "grpo", "dpo"):
                row = _loop(tmp, f"cmp-{method}", model=args.model, method=method, iterations=20, budget_s=args.budget)
                results["equal_wall_time"]["methods"][method] = row
    results["machine"] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if "demo" in results:
        d = results["demo"]
        gain = f"{d['gain_points']:+.1f} points"
        print(f"demo: {100 * d['before']:.1f}% -> {100 * d['after']:.1f}% ({gain}) in {d['wall_s']}s")
    for method, row in results.get("equal_wall_time", {}).get("methods", {}).items():
        print(
            f"{method:>17}: {100 * row['before']:.1f}% -> {100 * row['after']:.1f}% in {row['wall_s']}s, "
            f"{row['iterations']} iterations"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
