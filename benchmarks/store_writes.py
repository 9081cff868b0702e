"""Store write throughput (issue 16): trajectories written per second to PostgreSQL from 8
concurrent writer processes, beside SQLite from one process (and from 8, for the contrast).

Each writer stores its own trajectories the way the Runner does, one `put` (one transaction)
per finished episode; a second pass uses `put_many` in batches of 100 (imports, exports
back in). Trajectories are realistic: 3 steps with tool calls and results, token ids, hidden
and public feedback (about 4 KB of JSON each). The PostgreSQL server is a throwaway local
one (`hone.testing.postgres.LocalPostgres`, fsync off as in the tests; a production server
with fsync on commits slower).

    .venv/bin/python benchmarks/store_writes.py [--per-writer 1500] [--writers 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hone.core import Feedback, Ledger, Message, ModelCall, Step, ToolCall, Trajectory, Usage
from hone.store import SQLStore
from hone.testing.postgres import LocalPostgres

OUT = Path(__file__).parent / "results" / "store_writes.json"
CTX = mp.get_context("spawn")


def trajectory(writer: int, i: int) -> Trajectory:
    steps = []
    for s in range(3):
        call = ModelCall(
            model="bench",
            request_digest=f"{writer}-{i}-{s}",
            message=Message.assistant(None, [ToolCall(id=f"c{s}", name="calculator", arguments={"expression": "2+2"})]),
            usage=Usage(prompt_tokens=120, completion_tokens=12),
            prompt_token_ids=list(range(120)),
            completion_token_ids=list(range(12)),
        )
        steps.append(Step(call=call, observations=[Message.tool("4", f"c{s}", name="calculator")]))
    return Trajectory(
        run_id=f"bench-{writer}",
        task_id=f"task-{i:06d}",
        env="arith",
        model="bench",
        subset=f"L{i % 5 + 1}",
        prompt=[Message.system("Use the calculator."), Message.user(f"Compute {i} + 2")],
        steps=steps,
        answer="4",
        feedback=[
            Feedback(source="verifier", name="exact_match", score=1.0, passed=True, visibility="hidden"),
            Feedback(source="critic", name="style", text="fine", visibility="public"),
        ],
        reward=1.0,
        usage=Ledger(calls=3, prompt_tokens=360, completion_tokens=36, tool_calls=3, env_steps=3, seconds=1.0),
    )


def _write(url: str, writer: int, n: int, batch: int, barrier: Any, out: Any) -> None:
    items = [trajectory(writer, i) for i in range(n)]  # built before the clock starts
    with SQLStore(url) as store:
        barrier.wait()
        start = time.perf_counter()
        if batch <= 1:
            added = sum(store.put(t) for t in items)
        else:
            added = sum(store.put_many(items[k : k + batch]) for k in range(0, n, batch))
        out.put((writer, added, time.perf_counter() - start))


def measure(url: str, writers: int, per_writer: int, batch: int) -> dict[str, Any]:
    SQLStore(url).close()  # the schema exists before the clock starts
    barrier, out = CTX.Barrier(writers + 1), CTX.Queue()
    procs = [CTX.Process(target=_write, args=(url, w, per_writer, batch, barrier, out)) for w in range(writers)]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    got = [out.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - start
    for p in procs:
        p.join(60)
    stored = sum(added for _, added, _ in got)
    assert stored == writers * per_writer, (stored, writers * per_writer)
    return {
        "writers": writers,
        "batch": batch,
        "trajectories": stored,
        "seconds": round(wall, 3),
        "per_s": round(stored / wall, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-writer", type=int, default=1500)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    results: list[dict[str, Any]] = []
    with LocalPostgres() as pg, tempfile.TemporaryDirectory() as tmp:
        n = args.per_writer
        cases = [
            ("postgresql", args.writers, n, 1),
            ("sqlite", 1, n * args.writers, 1),
            ("sqlite", args.writers, n, 1),
            ("postgresql", args.writers, n, 100),
            ("sqlite", 1, n * args.writers, 100),
        ]
        for k, (backend, writers, per, batch) in enumerate(cases):
            url = pg.create_database(f"bench{k}") if backend == "postgresql" else f"sqlite:///{tmp}/bench{k}.db"
            row = {"backend": backend, **measure(url, writers, per, batch)}
            results.append(row)
            print(
                f"{backend:<11} {writers} writer(s), batch {batch:>3}: {row['per_s']:>8.1f} trajectories/s "
                f"({row['trajectories']} in {row['seconds']} s)",
                flush=True,
            )
    pg8 = next(r for r in results if r["backend"] == "postgresql" and r["batch"] == 1)
    sq1 = next(r for r in results if r["backend"] == "sqlite" and r["writers"] == 1 and r["batch"] == 1)
    doc = {
        "benchmark": "store_writes",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "what": "trajectories stored per second; put = one transaction per trajectory, as the Runner stores",
        "trajectory_json_bytes": len(trajectory(0, 0).model_dump_json()),
        "results": results,
        "postgres_8_writers_over_sqlite_1_process": round(pg8["per_s"] / sq1["per_s"], 2),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "postgres": "local throwaway server, fsync=off",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"PostgreSQL, {args.writers} writers / SQLite, 1 process: {doc['postgres_8_writers_over_sqlite_1_process']}x")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
