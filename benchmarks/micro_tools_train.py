"""`hone micro train --env toolgen` with its defaults: wall time, held-out accuracy by level, BFCL (JSON results).

Trains micro-tools exactly as `hone micro train --env toolgen` does (default steps, demonstrations,
augmentation, batch size, learning rate) into a temporary directory (or `--keep DIR`), records
the wall and process CPU time of the whole command (demonstrations, tokenizer, training, saving,
held-out evaluation), the final loss, accuracy on the `heldout` split (tool sets never seen in
training) by level and for levels 1-2 / 3-6, and then BFCL by category with hone's `bfcl`
grader (`--bfcl-n` tasks, a seeded sample; 1,000, the default, is every task of the four
categories) and what the model got wrong, counted; each evaluation twice: the model alone, and
with tool calls decoded under the offered tools' grammar
(`constrained_tools`, llguidance), reported apart.

    .venv/bin/python benchmarks/micro_tools_train.py [--bfcl-n 1000] [--keep DIR] [--out ...json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import transformers
import trl

from hone.learn.micro_tools import train_micro_tools

TARGETS = {"wall_s_max": 1800, "levels_1_2_min": 0.60, "bfcl_simple_min": 0.15}


def _bfcl(path: Path, n: int, constrained: bool = False) -> dict[str, Any]:
    import asyncio

    from hone.core import Sampling
    from hone.envs import make_env
    from hone.models import HFLocal
    from hone.rollout import RunConfig, evaluate_run

    # seed 1 shuffles: BFCL's files go by topic, and their first tasks overstated `simple_python` (15% of the first
    # 20 against 2.75% of all 400 for the packaged micro-tools).
    config = RunConfig(split="test", n=n, seed=1, concurrency=64, sampling=Sampling(temperature=0))

    async def run() -> Any:
        chat = HFLocal(path, constrained_tools=constrained)
        return await evaluate_run(make_env("bfcl"), chat, config, close_model=True)

    started = time.perf_counter()
    trajectories = asyncio.run(run()).trajectories
    seconds = time.perf_counter() - started
    by_cat: dict[str, list[bool]] = {}
    kinds: Counter[str] = Counter()
    for t in trajectories:
        by_cat.setdefault(str(t.subset), []).append(bool(t.passed))
        if not t.passed:
            kinds[_failure(t)] += 1
    return {
        "n": len(trajectories),
        "seconds": round(seconds, 1),
        "accuracy": round(sum(t.passed for t in trajectories) / max(1, len(trajectories)), 4),
        "by_category": {k: {"n": len(v), "accuracy": round(sum(v) / len(v), 4)} for k, v in sorted(by_cat.items())},
        "failures": dict(kinds.most_common()),
    }


def _failure(t: Any) -> str:
    """The kind of a failed BFCL episode: the grader's verdict kind (BFCL's rule that failed first)."""
    if t.error is not None:
        return f"error: {t.error.type}"
    for f in t.feedback:
        if f.name == "bfcl_ast":
            return str(f.evidence.get("kind", "unknown"))
    return "ungraded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "micro_tools_train.json")
    parser.add_argument("--bfcl-n", type=int, default=1000, help="BFCL tasks afterwards (0: skip)")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the checkpoint here instead of a temporary dir")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hone-micro-tools-bench-") as tmp:
        ckpt = args.keep or Path(tmp) / "checkpoint"
        start, cpu = time.perf_counter(), time.process_time()
        result = train_micro_tools("toolgen", out=ckpt, progress=False, threads=args.threads)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        bfcl = _bfcl(ckpt, args.bfcl_n) if args.bfcl_n else None
        bfcl_constrained = _bfcl(ckpt, args.bfcl_n, constrained=True) if args.bfcl_n else None
    report, constrained = result.eval, result.eval_constrained
    assert report is not None and constrained is not None, "install hone[constrained] (llguidance) to run this"
    groups, constrained_groups = report.groups or {}, constrained.groups or {}
    figures: dict[str, Any] = {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "train_s": result.timings["train_s"],
        "eval_s": result.timings["eval_s"],
        "tokens_per_s": result.tokens_per_second,
        "final_loss": result.final_loss,
        "heldout_accuracy": round(report.accuracy, 4),
        "heldout_by_level": {k: round(v, 4) for k, v in report.by_level.items()},
        "heldout_groups": {k: round(v, 4) for k, v in groups.items()},
        "well_formed": round(report.well_formed, 4),
        "eval_n": report.n,
        "bfcl": bfcl,
        # the same evaluations with tool calls decoded under the offered tools' grammar (constrained_tools)
        "constrained": {
            "heldout_accuracy": round(constrained.accuracy, 4),
            "heldout_by_level": {k: round(v, 4) for k, v in constrained.by_level.items()},
            "heldout_groups": {k: round(v, 4) for k, v in constrained_groups.items()},
            "well_formed": round(constrained.well_formed, 4),
            "bfcl": bfcl_constrained,
        },
    }

    def simple(b: dict[str, Any] | None) -> float | None:
        return (b or {}).get("by_category", {}).get("simple_python", {}).get("accuracy")

    checks = {
        "wall_s": wall <= TARGETS["wall_s_max"],
        "levels_1_2": groups.get("levels 1-2", 0.0) >= TARGETS["levels_1_2_min"],
        "levels_1_2_constrained": constrained_groups.get("levels 1-2", 0.0) >= TARGETS["levels_1_2_min"],
        "bfcl_simple": (simple(bfcl) or 0.0) >= TARGETS["bfcl_simple_min"],
        "bfcl_simple_constrained": (simple(bfcl_constrained) or 0.0) >= TARGETS["bfcl_simple_min"],
    }
    out = {
        "benchmark": "micro_tools_train",
        "command": "hone micro train --env toolgen (defaults)",
        "targets": TARGETS,
        "figures": figures,
        "checks": checks,
        "training": result.to_dict()["args"],
        "machine": {
            "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"figures": figures, "checks": checks}, indent=2))


if __name__ == "__main__":
    main()
