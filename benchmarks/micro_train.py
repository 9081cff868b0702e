"""`hone micro train` with its defaults: wall time, final loss, test accuracy. Writes JSON to benchmarks/results/.

Trains the micro model exactly as `hone micro train --env arith` does (default steps,
demonstrations, batch size, learning rate; evaluation on `eval_n` test tasks) into a
temporary directory, and records the wall time of the whole command (demonstrations,
training, saving, evaluation), the final training loss and the evaluation figures, with
their targets. Process CPU seconds are recorded too: other load on the machine stretches
wall time but barely changes CPU time.

    .venv/bin/python benchmarks/micro_train.py [--out benchmarks/results/micro_train.json]
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
import transformers
import trl

from hone.learn.micro import train_micro

TARGETS = {"wall_s_max": 900, "accuracy_min": 0.35, "accuracy_max": 0.75, "well_formed_min": 0.95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "micro_train.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hone-micro-bench-") as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        result = train_micro("arith", out=Path(tmp) / "checkpoint", progress=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    report = result.eval
    assert report is not None
    figures: dict[str, Any] = {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "train_s": result.timings["train_s"],
        "eval_s": result.timings["eval_s"],
        "tokens_per_s": result.tokens_per_second,
        "final_loss": result.final_loss,
        "accuracy": round(report.accuracy, 4),
        "accuracy_by_level": {k: round(v, 4) for k, v in report.by_level.items()},
        "well_formed": round(report.well_formed, 4),
        "tool_use": round(report.tool_use, 4),
        "eval_n": report.n,
    }
    checks = {
        "wall_s": wall <= TARGETS["wall_s_max"],
        "accuracy": TARGETS["accuracy_min"] <= report.accuracy <= TARGETS["accuracy_max"],
        "well_formed": report.well_formed >= TARGETS["well_formed_min"],
    }
    out = {
        "benchmark": "micro_train",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "hone micro train --env arith (defaults)",
        "args": {k: v for k, v in result.args.items() if k != "model"},
        "parameters": result.params,
        "targets": TARGETS,
        "results": figures,
        "passed": checks,
        "losses": [{"step": s, "loss": round(v, 4)} for s, v in result.losses],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"results": figures, "passed": checks}, indent=2))


if __name__ == "__main__":
    main()
