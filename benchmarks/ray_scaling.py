"""Ray executor scaling (issue 16): episodes/s with 1, 2 and 4 Ray workers on one machine beside
the in-process executor, and the CPU Ray adds per episode.

4,000 episodes of 3 turns (`ThreeTurnEnv`: the user pushes back twice) against the mock
OpenAI-compatible server (`python -m hone.testing.openai_server`, a separate process) with
50 ms latency per call; no store, so the executor is what is measured. CPU is every process
of the run but the server's: the driver, and with Ray its workers, raylet and GCS (psutil),
divided by episodes; the overhead is Ray's CPU per episode minus in-process's.

    .venv/bin/python benchmarks/ray_scaling.py [--episodes 4000] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` importable here

from benchmarks.rollout_overhead import ThreeTurnEnv, start_server

from hone.core import Sampling
from hone.models import resolve_model
from hone.rollout import RayExecutor, RunConfig, Runner
from hone.rollout._ray import DEFAULT_BATCH

OUT = Path(__file__).parent / "results" / "ray_scaling.json"
ENV_SPEC = "benchmarks.rollout_overhead:ThreeTurnEnv"


def cpu_seconds(exclude: int) -> dict[int, float]:
    """CPU seconds of this process and every process it started (Ray's too) but `exclude`, by pid."""
    me = psutil.Process()
    found: dict[int, float] = {}
    for p in [me, *me.children(recursive=True)]:
        if p.pid == exclude:
            continue
        try:
            t = p.cpu_times()
            found[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return found


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings (a process started in between counts whole)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def measure(
    base_url: str, server_pid: int, episodes: int, workers: int | None, in_flight: int, batch: int = DEFAULT_BATCH
) -> dict[str, Any]:
    spec = f"openai-compatible:{base_url}:x"
    executor = None
    if workers is not None:
        executor = RayExecutor(ENV_SPEC, spec, workers=workers, per_worker=max(1, in_flight // workers), batch=batch)
        asyncio.run(executor.start())  # workers up before the clock starts
        close = executor.close
        executor.start = _noop  # type: ignore[method-assign]
        executor.close = _noop  # type: ignore[method-assign]  # measured before the workers go
    cfg = RunConfig(n=episodes, concurrency=in_flight, sampling=Sampling(temperature=0.0))
    runner = Runner(ThreeTurnEnv(), resolve_model(spec), cfg, env_spec=ENV_SPEC, model_spec=spec, executor=executor)
    cpu0, wall0 = cpu_seconds(server_pid), time.perf_counter()
    result = asyncio.run(runner.run())
    wall, cpu = time.perf_counter() - wall0, spent(cpu0, cpu_seconds(server_pid))
    if executor is not None:
        asyncio.run(close())
    done = len(result.trajectories)
    assert done == episodes and all(len(t.steps) == 3 for t in result.trajectories), done
    return {
        "executor": "in-process" if workers is None else f"ray x{workers}",
        "workers": workers,
        "batch": None if workers is None else batch,
        "in_flight": in_flight,
        "episodes": done,
        "wall_s": round(wall, 2),
        "episodes_per_s": round(done / wall, 1),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_episode": round(1000 * cpu / done, 3),
    }


async def _noop() -> None:
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=4000)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--in-flight", type=int, default=64, help="episodes in flight, every executor alike")
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="episodes per Ray call, at most")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    )
    import ray

    proc, url = start_server(args.delay)
    rows = []
    try:
        rows.append(measure(url, proc.pid, args.episodes, None, args.in_flight))
        print(rows[-1], flush=True)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
        for workers in (1, 2, 4):
            rows.append(measure(url, proc.pid, args.episodes, workers, args.in_flight, args.batch))
            print(rows[-1], flush=True)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        proc.kill()
    base = rows[0]
    for r in rows[1:]:
        r["speed_vs_in_process"] = round(r["episodes_per_s"] / base["episodes_per_s"], 2)
        r["ray_cpu_ms_per_episode_over_in_process"] = round(r["cpu_ms_per_episode"] - base["cpu_ms_per_episode"], 3)
    overhead = min(r["ray_cpu_ms_per_episode_over_in_process"] for r in rows[1:])
    doc = {
        "benchmark": "ray_scaling",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "what": f"{args.episodes} episodes x 3 turns, mock server {args.delay * 1000:g} ms per call, "
        f"{args.in_flight} episodes in flight for every executor",
        "results": rows,
        "target_cpu_ms_per_episode_over_in_process": 2.0,
        "best_overhead_ms": overhead,
        "target_met": overhead <= 2.0,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for r in rows:
        extra = f"  x{r.get('speed_vs_in_process', 1.0)}  +{r.get('ray_cpu_ms_per_episode_over_in_process', 0)} ms CPU"
        print(
            f"{r['executor']:<11} {r['episodes_per_s']:>8.1f} episodes/s  {r['cpu_ms_per_episode']:>7.3f} ms CPU{extra}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
