"""Rollout overhead benchmark (issue: the core loop). Writes JSON to benchmarks/results/.

(a) Framework CPU time per turn: the Runner on `arith` with a `Scripted` model (no
    network, no model cost), trajectories written to a SQLite store; target <= 0.3 ms.
(b) Episodes per second through `OpenAICompatible` against the mock OpenAI-compatible
    server (a separate process, no added latency): N episodes x 3 turns at concurrency
    128, side by side with a bare `openai` SDK loop making the same calls; rounds
    alternate (bare, hone, bare, hone...) and medians are reported. Target hone/bare >= 0.8.

    .venv/bin/python benchmarks/rollout_overhead.py [--episodes 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openai

from hone.core import Feedback, Message, Sampling, Task, ToolSpec, Trajectory, stable_int
from hone.envs import Reset, StepResult, make_env
from hone.models import OpenAICompatible, Scripted, call_tool
from hone.rollout import EpisodeLimits, RunConfig, Runner
from hone.store import open_store
from hone.testing import find_expression

SYSTEM = "You are a careful assistant."
FOLLOW_UP = "Are you sure? Check again."


class ThreeTurnEnv:
    """A chat environment: the user pushes back twice, the episode ends after 3 answers."""

    name = "three-turn"
    version = "1"

    def __init__(self, turns: int = 3) -> None:
        self.turns = turns
        self.count = 0

    def splits(self) -> list[str]:
        return ["test"]

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        return [Task(id=f"q{i}", input={"q": f"Compute: {i} + {i}"}, target=str(2 * i)) for i in range(n or 100)]

    def clone(self) -> ThreeTurnEnv:
        fresh = copy.copy(self)
        fresh.count = 0
        return fresh

    async def reset(self, task: Task) -> Reset:
        return Reset(messages=[Message.system(SYSTEM), Message.user(task.input["q"])])

    async def step(self, message: Message) -> StepResult:
        self.count += 1
        if self.count >= self.turns:
            return StepResult(done=True, answer=message.text)
        return StepResult(observations=[Message.user(FOLLOW_UP)])

    async def grade(self, trajectory: Trajectory) -> list[Feedback]:
        return [Feedback(source="verifier", score=1.0, passed=True, visibility="hidden")]


def scripted_arith(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Message | str:
    last = messages[-1]
    if last.role == "user":
        return call_tool("calculator", {"expression": find_expression(last.text) or "0"})
    return f"The answer is {last.text}."


async def bench_cpu_per_turn(episodes: int, with_store: bool) -> dict[str, Any]:
    env = make_env("arith")
    tmp = tempfile.mkdtemp()
    store = open_store(Path(tmp) / "bench.db") if with_store else None
    cfg = RunConfig(n=episodes, concurrency=32, sampling=Sampling(temperature=0.0))
    runner = Runner(env, Scripted(scripted_arith), cfg, store=store)
    tasks = runner.tasks()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = await runner.run(tasks)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    turns = sum(len(t.steps) for t in result.trajectories)
    if store is not None:
        store.close()
    return {
        "episodes": len(result.trajectories),
        "turns": turns,
        "store": "sqlite" if with_store else "none",
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "cpu_ms_per_turn": round(1000 * cpu / turns, 4),
        "target_ms_per_turn": 0.3,
    }


def start_server(delay: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hone.testing.openai_server", "--port", "0", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"mock server did not start: {line!r}")
    return proc, line.split()[1]


async def bare_loop(base_url: str, episodes: int, turns: int, concurrency: int, transport: str = "httpx") -> float:
    """The same calls as hone makes, written directly against the openai SDK."""
    http = openai.DefaultAioHttpClient() if transport == "aiohttp" else None
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, http_client=http)
    sem = asyncio.Semaphore(concurrency)

    async def episode(i: int) -> None:
        async with sem:
            messages: list[Any] = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Compute: {i} + {i}"},
            ]
            for t in range(turns):
                resp = await client.chat.completions.create(
                    model="x", messages=messages, temperature=0.0, top_p=1.0, seed=stable_int(0, f"q{i}", 0)
                )
                messages.append({"role": "assistant", "content": resp.choices[0].message.content})
                if t < turns - 1:
                    messages.append({"role": "user", "content": FOLLOW_UP})

    t0 = time.perf_counter()
    await asyncio.gather(*(episode(i) for i in range(episodes)))
    elapsed = time.perf_counter() - t0
    await client.close()
    return episodes / elapsed


async def hone_loop(
    base_url: str, episodes: int, turns: int, concurrency: int, store_dir: str, transport: str = "auto"
) -> float:
    model = OpenAICompatible(
        "x",
        base_url=base_url,
        api_key="EMPTY",
        max_concurrency=concurrency,
        logprobs=False,
        token_ids=False,
        transport=transport,  # type: ignore[arg-type]
    )
    store = open_store(Path(store_dir) / f"hone-{time.time_ns()}.db")
    cfg = RunConfig(
        n=episodes, concurrency=concurrency, sampling=Sampling(temperature=0.0), limits=EpisodeLimits(max_turns=turns)
    )
    runner = Runner(ThreeTurnEnv(turns), model, cfg, store=store)
    t0 = time.perf_counter()
    result = await runner.run()
    elapsed = time.perf_counter() - t0
    await model.aclose()
    store.close()
    bad = [t for t in result.trajectories if t.status != "ok"]
    if bad:
        raise RuntimeError(f"{len(bad)} hone episodes failed, first: {bad[0].error}")
    return len(result.trajectories) / elapsed


async def bench_throughput(episodes: int, turns: int, concurrency: int, rounds: int) -> dict[str, Any]:
    proc, base_url = start_server()
    # Each transport is compared like for like: the SDK's default httpx client, and the
    # SDK's aiohttp client (which hone picks by default when aiohttp is installed).
    runs: dict[str, list[float]] = {"bare_httpx": [], "hone_httpx": [], "bare_aiohttp": [], "hone_aiohttp": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            await bare_loop(base_url, 200, turns, concurrency)  # warm up
            await hone_loop(base_url, 200, turns, concurrency, tmp)
            for _ in range(rounds):
                for transport in ("httpx", "aiohttp"):
                    runs[f"bare_{transport}"].append(await bare_loop(base_url, episodes, turns, concurrency, transport))
                    runs[f"hone_{transport}"].append(
                        await hone_loop(base_url, episodes, turns, concurrency, tmp, transport)
                    )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "episodes": episodes,
        "turns_per_episode": turns,
        "concurrency": concurrency,
        "rounds": rounds,
        "episodes_per_s": {k: [round(x, 1) for x in v] for k, v in runs.items()},
        "median_episodes_per_s": {k: round(v, 1) for k, v in med.items()},
        "ratio_hone_over_bare_httpx": round(med["hone_httpx"] / med["bare_httpx"], 3),
        "ratio_hone_over_bare_aiohttp": round(med["hone_aiohttp"] / med["bare_aiohttp"], 3),
        "ratio_hone_default_over_bare_default": round(med["hone_aiohttp"] / med["bare_httpx"], 3),
        "target_ratio": 0.8,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu-episodes", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rollout_overhead.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "rollout_overhead",
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "openai": openai.__version__},
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    results["cpu_per_turn"] = [
        await bench_cpu_per_turn(args.cpu_episodes, with_store=False),
        await bench_cpu_per_turn(args.cpu_episodes, with_store=True),
    ]
    print(json.dumps(results["cpu_per_turn"], indent=1))
    results["throughput"] = await bench_throughput(args.episodes, args.turns, args.concurrency, args.rounds)
    print(json.dumps(results["throughput"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
