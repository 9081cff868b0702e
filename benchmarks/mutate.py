"""Mutation testing of the modules that decide reported results (issue 19), with mutmut.

Each group is a set of modules and the tests that guard them: mutmut mutates only those modules and,
for each mutant, runs only the listed tests that reach the mutated function (mutmut 3 records which
tests call which functions). Every group runs in its own scratch copy of the tracked files, so the
checkout is never touched. Writes `benchmarks/results/mutation.json`: per group the mutants, killed,
survived, timeouts, seconds and when it ran, and each survivor's name and diff for triage (every one is
listed in docs/testing.md; tests/test_mutation_triage.py checks that). Groups not run this time keep their
earlier figures in the file. The scratch copies hold the files git tracks: `git add` new tests first.

    .venv/bin/python benchmarks/mutate.py [--groups metrics,ledger] [--out FILE]     # or: make mutate
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "mutation.json"
SCRATCH = Path(os.environ.get("HONE_MUTATE_DIR", "/tmp/hone-mutate"))
MUTMUT = [sys.executable, "-m", "mutmut"]

GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "metrics": (["src/hone/metrics/*"], ["tests/metrics"]),
    # The Ray path (`solve_there`, `executor=`) is covered by tests/rollout/test_ray_executor.py, left out:
    # a Ray cluster per mutant would take hours.
    "compare": (["src/hone/improve/_compare.py"], ["tests/improve"]),
    "ledger": (["src/hone/core/_ledger.py"], ["tests/core/test_ledger.py", "tests/rollout/test_runner.py"]),
    "grading": (
        ["src/hone/core/_numbers.py", "src/hone/envs/_answers.py"],
        ["tests/envs/test_answers.py", "tests/envs/test_arith.py", "tests/envs/test_gsm8k.py"],
    ),
    "verifiers": (
        ["src/hone/feedback/_code.py", "src/hone/feedback/_toolmatch.py", "src/hone/feedback/_callverify.py"],
        ["tests/feedback"],
    ),
    "rewards": (
        ["src/hone/feedback/_parts.py", "src/hone/feedback/_toolreward.py", "src/hone/feedback/_compose.py"],
        ["tests/feedback"],
    ),
    "datasets": (
        ["src/hone/learn/data/*"],
        [
            "tests/learn/test_learn_data.py",
            "tests/learn/test_learn_data_rows.py",
            "tests/learn/test_consistency.py",
            "tests/learn/test_trl_formats.py",
        ],
    ),
    "resume": (
        ["src/hone/rollout/_runner.py"],
        ["tests/rollout/test_runner.py", "tests/rollout/test_runner_executor.py", "tests/rollout/test_evaluate_run.py"],
    ),
    "public-feedback": (
        ["src/hone/improve/_guard.py", "src/hone/core/_trajectory.py"],
        [
            "tests/improve/test_honesty.py",
            "tests/core/test_hidden_reward.py",
            "tests/core/test_trajectory_feedback.py",
            "tests/store/test_schema_v1.py",  # the trajectory module's upgrade of stored v1 records
            "tests/feedback/test_reward_hacking.py",
        ],
    ),
    "sandbox-limits": (["src/hone/sandbox/_limits.py"], ["tests/sandbox"]),
    "export-import": (
        ["src/hone/store/_export.py", "src/hone/store/_export_formats.py"],
        [
            "tests/store/test_export.py",
            "tests/store/test_export_formats.py",
            "tests/store/test_export_exact.py",
            "tests/store/test_export_nested.py",
        ],
    ),
}
"""Group -> (modules mutated, as mutmut `only_mutate` globs; tests run against them)."""

PYTEST_ARGS: dict[str, list[str]] = {
    # The store tests run on SQLite twice and on PostgreSQL; the export code is the same on all three, and a
    # PostgreSQL server started for every mutant would triple the group's time.
    "export-import": ["-k", "not postgresql"],
}
"""Group -> extra pytest arguments for every run of its tests."""


def _copy_tree(dest: Path) -> None:
    """The tracked files only (no .venv, no build output), as CI checks them out."""
    if dest.exists():
        shutil.rmtree(dest)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)


def _config(modules: list[str], tests: list[str], pytest_args: list[str]) -> str:
    def listed(xs: list[str]) -> str:
        return "\n".join(f"    {x}" for x in xs)

    extra = f"pytest_add_cli_args =\n{listed(pytest_args)}\n" if pytest_args else ""
    return (
        "[mutmut]\nsource_paths = src/\n"
        f"only_mutate =\n{listed(modules)}\n"
        f"pytest_add_cli_args_test_selection =\n{listed(tests)}\n{extra}"
        # Workers forked from a clean server, not from the process that ran the tests: a sandbox's server
        # thread does not survive a fork, and a mutant forked after it hangs for good.
        "process_isolation = forkserver\n"
    )


def run_group(name: str, modules: list[str], tests: list[str]) -> dict[str, Any]:
    where = SCRATCH / name
    _copy_tree(where)
    (where / "setup.cfg").write_text(_config(modules, tests, PYTEST_ARGS.get(name, [])))
    start = time.monotonic()
    with (where / "mutmut.log").open("w") as log:
        done = subprocess.run([*MUTMUT, "run"], cwd=where, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    (where / "seconds.txt").write_text(f"{seconds:.1f}\n")
    return collect_group(name, modules, tests, done.returncode)


def collect_group(name: str, modules: list[str], tests: list[str], returncode: int = 0) -> dict[str, Any]:
    """The figures and survivors of group `name` from its scratch copy (after `mutmut run` there)."""
    where = SCRATCH / name
    mutmut = MUTMUT
    seconds_file = where / "seconds.txt"
    seconds = float(seconds_file.read_text()) if seconds_file.is_file() else 0.0
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=where, capture_output=True)
    stats_file = where / "mutants" / "mutmut-cicd-stats.json"
    if returncode != 0 or not stats_file.is_file() or not seconds_file.is_file():
        tail = (where / "mutmut.log").read_text(errors="replace")[-1500:]
        return {"group": name, "error": f"mutmut run exited {returncode} or did not finish", "log_tail": tail}
    stats = json.loads(stats_file.read_text())
    listing = subprocess.run([*mutmut, "results"], cwd=where, capture_output=True, text=True).stdout
    survivors = []
    for line in listing.splitlines():
        key, _, status = line.strip().rpartition(": ")
        if status in ("survived", "timeout", "no tests"):
            diff = subprocess.run([*mutmut, "show", key], cwd=where, capture_output=True, text=True).stdout
            survivors.append({"mutant": key, "status": status, "diff": diff.strip()[-1200:]})
    tested = stats["total"] - stats.get("skipped", 0)
    return {
        "group": name,
        "modules": modules,
        "tests": tests,
        "mutants": stats["total"],
        "killed": stats["killed"],
        "survived": stats["survived"],
        "timeout": stats["timeout"],
        "no_tests": stats["no_tests"],
        "killed_share": round(stats["killed"] / tested, 4) if tested else None,
        "seconds": round(seconds, 1),
        "measured": datetime.fromtimestamp(seconds_file.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "survivors": survivors,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default=",".join(GROUPS), help=f"comma-separated, of {', '.join(GROUPS)}")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--collect", action="store_true", help="only read back groups already run in the scratch copies")
    args = ap.parse_args()
    chosen = [g.strip() for g in args.groups.split(",") if g.strip()]
    if not chosen:
        raise SystemExit(f"no group chosen; choose from {', '.join(GROUPS)}")
    unknown = [g for g in chosen if g not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    results: list[dict[str, Any]] = []
    for name in chosen:
        print(f"{name}: mutating {', '.join(GROUPS[name][0])}", flush=True)
        row = collect_group(name, *GROUPS[name]) if args.collect else run_group(name, *GROUPS[name])
        results.append(row)
        write(results, args.out)  # after every group: a stopped run keeps what it measured
        if "error" in row:
            print(f"  {row['error']}\n{row['log_tail']}", flush=True)
        else:
            print(
                f"  {row['mutants']} mutants, {row['killed']} killed ({100 * (row['killed_share'] or 0):.1f}%), "
                f"{row['survived']} survived, {row['timeout']} timeouts, {row['seconds']:.0f}s",
                flush=True,
            )
    _, tested, killed = write(results, args.out)
    print(f"all groups in {args.out}: {tested} mutants, {killed} killed")
    if any("error" in r for r in results):
        raise SystemExit(1)  # a group that did not run is not a result


def write(results: list[dict[str, Any]], out: Path) -> tuple[list[dict[str, Any]], int, int]:
    """Write `results` into `out`, keeping the groups measured earlier that this run did not redo."""
    fresh = {r["group"] for r in results}
    try:
        earlier = [g for g in json.loads(out.read_text())["groups"] if g["group"] not in fresh]
    except (OSError, ValueError, KeyError, TypeError):
        earlier = []
    results = sorted([*earlier, *results], key=lambda r: list(GROUPS).index(r["group"]) if r["group"] in GROUPS else 99)
    ok = [r for r in results if "error" not in r]
    killed, tested = sum(r["killed"] for r in ok), sum(r["mutants"] for r in ok)
    version = subprocess.run([*MUTMUT, "--version"], capture_output=True, text=True).stdout
    version = version.split()[-1] if version.split() else "?"
    doc = {
        "benchmark": "mutation",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool": f"mutmut {version}",
        "groups": results,
        "total": {"mutants": tested, "killed": killed, "killed_share": round(killed / tested, 4) if tested else None},
        "seconds": round(sum(r.get("seconds", 0) for r in ok), 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return ok, tested, killed


if __name__ == "__main__":
    main()
