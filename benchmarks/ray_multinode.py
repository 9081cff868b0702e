"""A node lost halfway (issue 16): a run on a Ray cluster of three nodes on this machine (Ray's
`cluster_utils.Cluster`: a head and two worker nodes, each its own raylet) loses one node when
half its episodes are stored; the report checks every task x sample is stored exactly once.

Workers are spread over the nodes (`SPREAD`); killing a node (`remove_node`, not graceful: its
raylet and worker processes die) fails the episodes its workers were running, which the executor
runs again on fresh workers elsewhere. The model is the mock OpenAI-compatible server (50 ms a
call), the environment `ThreeTurnEnv` (3 turns), the store an SQLite file.

    .venv/bin/python benchmarks/ray_multinode.py [--tasks 300] [--k 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` importable here

from benchmarks.ray_scaling import ENV_SPEC
from benchmarks.rollout_overhead import ThreeTurnEnv, start_server

from hone.core import Sampling, Trajectory
from hone.models import resolve_model
from hone.rollout import RayExecutor, RunConfig, Runner
from hone.store import open_store

OUT = Path(__file__).parent / "results" / "ray_multinode.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    root = str(Path(__file__).resolve().parents[1])  # the nodes' workers import the environment from here
    os.environ["PYTHONPATH"] = os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])
    import ray
    from ray.cluster_utils import Cluster

    proc, url = start_server(args.delay)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    tmp = tempfile.mkdtemp()
    report: dict[str, Any] = {}
    try:
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        spec = f"openai-compatible:{url}:x"
        executor = RayExecutor(ENV_SPEC, spec, workers=6, per_worker=8)
        store = open_store(Path(tmp) / "hone.db")
        total = args.tasks * args.k
        victim = nodes[0]
        killed: dict[str, Any] = {}

        def kill_halfway(_: Trajectory) -> None:
            if not killed and store.count("multinode") >= total // 2:
                before = executor.where()
                killed.update(
                    node=victim.node_id,
                    at_stored=store.count("multinode"),
                    workers_on_it=sum(w["node"] == victim.node_id for w in before),
                    workers_by_node=sorted({w["node"][:8] for w in before}),
                )
                # Off the event loop: removing a node waits for its processes to go.
                threading.Thread(target=cluster.remove_node, args=(victim, False), daemon=True).start()

        cfg = RunConfig(run_id="multinode", n=args.tasks, k=args.k, concurrency=48, sampling=Sampling(temperature=0.0))
        runner = Runner(
            ThreeTurnEnv(), resolve_model(spec), cfg, store=store, env_spec=ENV_SPEC, model_spec=spec, executor=executor
        )
        start = time.perf_counter()
        result = asyncio.run(runner.run(on_trajectory=kill_halfway))
        wall = time.perf_counter() - start
        keys = store.done_keys("multinode")
        stored = store.count("multinode")
        errors = [t.task_id for t in store.query(run_id="multinode", status="error")]
        report = {
            "benchmark": "ray_multinode",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cluster": "1 head + 2 worker nodes on one machine (ray.cluster_utils.Cluster), 1 CPU each",
            "tasks_x_samples": total,
            "stored": stored,
            "distinct_keys": len(keys),
            "every_pair_once": stored == len(keys) == total,
            "errored": len(errors),
            "killed": killed,
            "workers_lost": executor.lost,
            "episodes_retried": executor.retried,
            "remaining": result.remaining,
            "wall_s": round(wall, 1),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        }
        store.close()
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        proc.kill()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine",)}, indent=1))
    print(f"wrote {args.out}")
    if not report.get("every_pair_once"):
        sys.exit(1)


if __name__ == "__main__":
    main()
