"""Tool-call grading speed: hone's BFCL-rule matcher vs bfcl-eval's official AST checker, same outputs, same run.

The outputs are `bfcl_agreement.py`'s (the BFCL ground truth of 1,000 questions and its
perturbations, without the broken-JSON ones, which the official checker never sees). Both
sides start from decoded calls, as each meets them in practice: hone from the assistant
`Message` the model client recorded (`grade_message`: names mapped back, schemas looked up,
`match_calls`), bfcl-eval from the FC handlers' decoded `[{name: {arguments}}]`
(`ast_checker`). Also hone's matcher alone (`match_calls` on prepared calls). Rounds alternate
(official, hone, matcher, ...); medians of verdicts/s are reported, with the ratio; target for
hone >= 5,000 verdicts/s. Writes benchmarks/results/tool_grading.json. Pure Python, one core.

    pip install --no-deps --target /tmp/bfcl_eval bfcl-eval==2026.3.23   # see bfcl_agreement.py
    .venv/bin/python benchmarks/tool_grading.py [--bfcl-eval /tmp/bfcl_eval] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bfcl_agreement import MODEL, ROOT, hone_message, load_official, outputs

from hone.envs._bfcl import expected_calls, grade_message, resolve_dir
from hone.feedback._toolmatch import match_calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bfcl-eval", default=os.environ.get("BFCL_EVAL_PATH", "/tmp/bfcl_eval"))
    parser.add_argument("--data", default=None, help="BFCL data directory (default as the bfcl environment)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-o", "--output", default=str(ROOT / "benchmarks/results/tool_grading.json"))
    args = parser.parse_args()
    ast_checker, _, python, version = load_official(args.bfcl_eval)
    outs = [o for o in outputs(resolve_dir(args.data)) if o.variant != "broken_json"]

    # Inputs prepared outside the timed loops, in the form each grader receives them.
    official_in = [
        (list(o.entry.functions), [{n: json.loads(a)} for n, a in o.raw], list(o.entry.ground_truth), o.entry.category)
        for o in outs
    ]
    hone_in = [(o.task, hone_message(o)) for o in outs]
    matcher_in = []
    for o in outs:
        names = o.task.input["tool_names"]
        calls = [(names.get(n, n), json.loads(a)) for n, a in o.raw]
        schemas = {f["name"]: f for f in o.entry.functions}
        matcher_in.append((calls, expected_calls(o.entry.ground_truth), schemas))

    def official_round() -> tuple[float, int]:
        start = time.perf_counter()
        valid = sum(bool(ast_checker(f, d, g, python, c, MODEL)["valid"]) for f, d, g, c in official_in)
        return time.perf_counter() - start, valid

    def hone_round() -> tuple[float, int]:
        start = time.perf_counter()
        ok = sum(grade_message(task, message).ok for task, message in hone_in)
        return time.perf_counter() - start, ok

    def matcher_round() -> tuple[float, int]:
        start = time.perf_counter()
        ok = sum(match_calls(c, e, s).ok for c, e, s in matcher_in)
        return time.perf_counter() - start, ok

    timings: dict[str, list[float]] = {"official": [], "hone": [], "hone_matcher": []}
    passed: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, fn in (("official", official_round), ("hone", hone_round), ("hone_matcher", matcher_round)):
            seconds, ok = fn()
            timings[name].append(len(outs) / seconds)
            passed[name] = ok
    rates = {k: round(statistics.median(v)) for k, v in timings.items()}
    result: dict[str, Any] = {
        "benchmark": "tool_grading",
        "n_outputs": len(outs),
        "rounds": args.rounds,
        "verdicts_per_s": rates,
        "verdicts_per_s_all_rounds": {k: [round(x) for x in v] for k, v in timings.items()},
        "passed": passed,
        "hone_vs_official": round(rates["hone"] / rates["official"], 2),
        "target_hone": 5000,
        "bfcl_eval_version": version,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"tool grading on {len(outs)} outputs: hone {rates['hone']:,}/s (matcher alone {rates['hone_matcher']:,}/s), "
        f"bfcl-eval {rates['official']:,}/s, ratio {result['hone_vs_official']} -> {args.output}"
    )
    return 0 if rates["hone"] >= 5000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
