"""Serving benchmark: `arith` episodes/s with the micro model, in process and through `hone serve`.

Three ways in one run, on the same tasks (levels 1-5, test split, temperature 0):

(a) in process: the model from `resolve_model(spec)` (HFLocal), episodes by `run_episode`;
(b) through `hone serve --model SPEC` (a subprocess), episodes by `run_episode` with hone's
    `OpenAICompatible` (native tool calls, token ids on);
(c) through the same server with a bare official `openai` SDK loop: tool calls executed with
    hone's `calculate`, answers checked with hone's `extract_final_answer`.

The model is the committed micro checkpoint (spec `micro`) when it exists, else a randomly
initialised micro model of the same architecture saved to a temporary directory (`hf:PATH`);
the JSON says which. A random model rarely stops early, so its calls run to `--max-tokens`.
Each way first runs a warm-up episode, not timed; rounds rotate the order of the ways and
medians are reported (other processes share the CPU, so single runs are noisy).

    .venv/bin/python benchmarks/serve.py [--episodes 64] [--concurrency 32] [--max-tokens 160]
                                         [--rounds 3] [--threads 1]

`--part requests` measures the server itself instead: requests/s for normal requests
(an arith question with the calculator tool, then the same conversation with the tool's
result; bare `openai` SDK, concurrency 32) against `hone serve`'s `serve()` in a
subprocess, serving an instant scripted model, so only hone serve's own cost is timed;
the server's CPU milliseconds per request (from /proc) are reported too, being far less
sensitive than requests/s to other load on the machine.

    .venv/bin/python benchmarks/serve.py --part requests [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import openai
import torch
import transformers

from hone.core import Sampling, Task, Trajectory
from hone.envs import Arith, calculate, extract_final_answer, numbers_match
from hone.models import ChatModel, OpenAICompatible, aclose_model, resolve_model
from hone.rollout import EpisodeLimits, run_episode

CHECKPOINT = Path(__file__).resolve().parents[1] / "src" / "hone" / "learn" / "micro" / "checkpoint"
LIMITS = EpisodeLimits(max_turns=4, max_tool_calls=4, timeout_s=600, tool_errors="observe")


def pick_model(workdir: Path) -> tuple[str, str]:
    """(spec, description): the committed checkpoint if present, else a random micro model."""
    if (CHECKPOINT / "config.json").exists():
        return "micro", f"committed micro checkpoint ({CHECKPOINT})"
    from hone.learn.micro import build_tokenizer, new_micro_model

    tokenizer = build_tokenizer()
    model = new_micro_model(tokenizer)
    path = workdir / "micro-random"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    params = sum(p.numel() for p in model.parameters())
    return f"hf:{path}", f"random micro model ({params / 1e6:.2f}M parameters, no checkpoint committed yet)"


def summarize(
    trajectories: Sequence[Trajectory] | None, wall: float, rows: Sequence[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Episodes/s, calls, tokens, tool use and accuracy from trajectories or bare-loop rows."""
    if trajectories is not None:
        rows = [
            {
                "calls": len(t.steps),
                "prompt_tokens": sum(s.call.usage.prompt_tokens for s in t.steps),
                "completion_tokens": sum(s.call.usage.completion_tokens for s in t.steps),
                "tool_calls": t.tool_call_count,
                "passed": t.passed,
                "error": t.status == "error",
            }
            for t in trajectories
        ]
    assert rows is not None
    n = len(rows)
    return {
        "episodes": n,
        "wall_s": round(wall, 3),
        "episodes_per_s": round(n / wall, 3),
        "model_calls": sum(r["calls"] for r in rows),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "completion_tokens_per_s": round(sum(r["completion_tokens"] for r in rows) / wall, 1),
        "episodes_using_tool": sum(r["tool_calls"] > 0 for r in rows),
        "tool_calls": sum(r["tool_calls"] for r in rows),
        "passed": sum(bool(r["passed"]) for r in rows),
        "errors": sum(bool(r["error"]) for r in rows),
    }


async def timed(
    run: Callable[[Task], Awaitable[Any]], tasks: Sequence[Task], concurrency: int
) -> tuple[list[Any], float]:
    """Run one warm-up task, then all `tasks` at `concurrency`; returns results and wall time."""
    await run(tasks[0])
    sem = asyncio.Semaphore(concurrency)

    async def one(task: Task) -> Any:
        async with sem:
            return await run(task)

    start = time.perf_counter()
    results = await asyncio.gather(*[one(t) for t in tasks])
    return list(results), time.perf_counter() - start


async def hone_way(
    env: Arith, model: ChatModel, tasks: Sequence[Task], concurrency: int, sampling: Sampling
) -> dict[str, Any]:
    async def run(task: Task) -> Trajectory:
        return await run_episode(env.clone(), model, task, sampling=sampling, limits=LIMITS)

    trajectories, wall = await timed(run, tasks, concurrency)
    return summarize(trajectories, wall)


async def bare_way(
    env: Arith, base_url: str, name: str, tasks: Sequence[Task], concurrency: int, max_tokens: int
) -> dict[str, Any]:
    """The same episodes written directly against the openai SDK."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=600)
    tools = [t.spec.to_openai() for t in env.tools]

    async def run(task: Task) -> dict[str, Any]:
        messages: list[Any] = [m.model_dump(exclude_none=True) for m in env.prompt(task)]
        row = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "tool_calls": 0, "passed": False, "error": False}
        for _ in range(LIMITS.max_turns):
            reply = await client.chat.completions.create(
                model=name, messages=messages, tools=tools, temperature=0.0, max_tokens=max_tokens
            )
            row["calls"] += 1
            if reply.usage is not None:
                row["prompt_tokens"] += reply.usage.prompt_tokens
                row["completion_tokens"] += reply.usage.completion_tokens
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                answer = extract_final_answer(message.content)
                row["passed"] = answer is not None and numbers_match(answer, task.target)
                break
            for call in message.tool_calls:
                row["tool_calls"] += 1
                try:
                    result = calculate(json.loads(call.function.arguments)["expression"])  # type: ignore[union-attr]
                except (ValueError, KeyError, TypeError) as exc:
                    result = f"error: {exc}"
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        return row

    try:
        rows, wall = await timed(run, tasks, concurrency)
    finally:
        await client.close()
    return summarize(None, wall, rows)


def scripted_arith() -> ChatModel:
    """An instant model: a calculator call on the question's expression, then the answer."""
    from hone.core import Message
    from hone.models import Scripted, call_tool
    from hone.testing import find_expression

    def reply(messages: Sequence[Message], tools: Sequence[Any]) -> Message | str:
        last = messages[-1]
        if last.role == "tool":
            return f"The answer is {last.text}."
        return call_tool("calculator", {"expression": find_expression(last.text) or "0"})

    return Scripted(reply, name="scripted")


def serve_scripted() -> None:
    """The server side of `--part requests` (a subprocess): prints its URL, serves until SIGTERM."""
    from hone.serve import serve

    serve(scripted_arith(), port=0, on_ready=lambda url: print(f"serving scripted at {url}", flush=True))


async def request_rate(base_url: str, total: int, concurrency: int) -> dict[str, Any]:
    """`total` normal requests (half tool calls, half final answers) at `concurrency`; requests/s."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=120)
    env = Arith(levels="1-5")
    tools = [t.spec.to_openai() for t in env.tools]
    tasks = env.tasks("test", n=64)
    sem = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        messages: list[Any] = [m.model_dump(exclude_none=True) for m in env.prompt(tasks[i % len(tasks)])]
        if i % 2:
            call = {
                "id": "call_0",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "1 + 2"}'},
            }
            messages += [
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_0", "content": "3"},
            ]
        async with sem:
            reply = await client.chat.completions.create(model="scripted", messages=messages, tools=tools)
        ok = reply.choices[0].message.tool_calls if i % 2 == 0 else reply.choices[0].message.content
        failures += not ok

    try:
        await asyncio.gather(*[one(i) for i in range(32)])  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*[one(i) for i in range(total)])
        wall = time.perf_counter() - start
    finally:
        await client.close()
    return {"requests": total, "wall_s": round(wall, 3), "requests_per_s": round(total / wall, 1), "failures": failures}


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def requests_part(args: argparse.Namespace) -> None:
    args_ = [sys.executable, __file__, "--part", "serve-scripted"]
    proc = subprocess.Popen(args_, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("serving scripted at "):
        proc.kill()
        raise RuntimeError(f"the scripted server did not start: {line!r}")
    url = line.rsplit(" ", 1)[1]
    rounds = []
    try:
        for r in range(args.rounds):
            cpu = server_cpu_s(proc.pid)
            rounds.append(await request_rate(url, args.requests, args.concurrency))
            # The server's own CPU per request: far less sensitive than requests/s to other load.
            rounds[-1]["server_cpu_ms_per_request"] = round((server_cpu_s(proc.pid) - cpu) * 1000 / args.requests, 3)
            print(f"round {r}: {json.dumps(rounds[-1])}", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    rates = [r["requests_per_s"] for r in rounds]
    results = {
        "benchmark": "serve-requests",
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "setup": {
            "model": "instant scripted arith model (calculator call, then the answer)",
            "client": f"openai {openai.__version__} AsyncOpenAI",
            "requests": args.requests,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
        },
        "requests_per_s": statistics.median(rates),
        "requests_per_s_rounds": rates,
        "server_cpu_ms_per_request": statistics.median(r["server_cpu_ms_per_request"] for r in rounds),
        "failures": sum(r["failures"] for r in rounds),
    }
    out = args.out if args.out_given else args.out.with_name("serve-requests.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    cpu = results["server_cpu_ms_per_request"]
    print(json.dumps({"requests_per_s": results["requests_per_s"], "rounds": rates, "server_cpu_ms_per_request": cpu}))


def start_server(spec: str, name: str, threads: int) -> tuple[subprocess.Popen[str], str, float]:
    start = time.perf_counter()
    args = [sys.executable, "-m", "hone", "serve", "--model", spec, "--model-name", name, "--port", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith(f"serving {name} at "):
        proc.kill()
        raise RuntimeError(f"hone serve did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1], time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=160, help="completion tokens per model call")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three ways; medians are reported")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads, here and in the server (OMP_NUM_THREADS); 0: default"
    )
    parser.add_argument("--spec", help="benchmark this model spec instead (default: micro or a random micro model)")
    parser.add_argument("--out", type=Path, default=None, help="default: results/serve.json (serve-requests.json)")
    parser.add_argument("--part", choices=("episodes", "requests"), default="episodes", help="what to measure")
    parser.add_argument("--requests", type=int, default=2000, help="--part requests: requests per round")
    args = parser.parse_args()
    args.out_given = args.out is not None
    args.out = args.out or Path(__file__).parent / "results" / "serve.json"
    if args.part == "requests":
        await requests_part(args)
        return
    if args.threads:
        # Two intra-op threads on two cores shared with other busy processes ran 3-30x slower
        # (and far noisier) than one in our runs: OpenMP threads spin while waiting for each other.
        torch.set_num_threads(args.threads)

    env = Arith(levels="1-5")
    tasks = env.tasks("test", n=args.episodes)
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        spec, described = (args.spec, f"model spec {args.spec}") if args.spec else pick_model(Path(tmp))
        results: dict[str, Any] = {
            "benchmark": "serve",
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "openai": openai.__version__,
                "cpu_threads": torch.get_num_threads(),
            },
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": described,
            "setup": {
                "env": "arith levels 1-5, test split",
                "episodes": args.episodes,
                "concurrency": args.concurrency,
                "temperature": 0.0,
                "max_tokens": args.max_tokens,
                "rounds": args.rounds,
                "limits": LIMITS.model_dump(),
            },
        }
        model = resolve_model(spec)
        proc, url, startup = start_server(spec, "micro", args.threads)
        results["server_startup_s"] = round(startup, 2)
        client = OpenAICompatible("micro", base_url=url, max_concurrency=args.concurrency, timeout_s=600)
        ways: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "in_process": lambda: hone_way(env, model, tasks, args.concurrency, sampling),
            "served_hone_client": lambda: hone_way(env, client, tasks, args.concurrency, sampling),
            "served_bare_sdk": lambda: bare_way(env, url, "micro", tasks, args.concurrency, args.max_tokens),
        }
        runs: dict[str, list[dict[str, Any]]] = {way: [] for way in ways}
        try:
            for r in range(args.rounds):
                # Rotate the order: other load on the machine drifts, and no way always goes first.
                names = list(ways)[r % len(ways) :] + list(ways)[: r % len(ways)]
                for way in names:
                    runs[way].append(await ways[way]())
                    print(f"round {r} {way}: {json.dumps(runs[way][-1])}", flush=True)
        finally:
            await client.aclose()
            await aclose_model(model)
            proc.terminate()
            proc.wait(30)
        for way, summaries in runs.items():
            rates = [s["episodes_per_s"] for s in summaries]
            median = statistics.median(rates)
            last = {k: v for k, v in summaries[-1].items() if k not in ("wall_s", "completion_tokens_per_s")}
            results[way] = {
                **last,
                "episodes_per_s": round(median, 3),
                "episodes_per_s_rounds": rates,
                "completion_tokens_per_s": round(last["completion_tokens"] / last["episodes"] * median, 1),
            }
        results["served_hone_client"]["token_ids"] = "off" if client.disabled else "on"
    base = results["in_process"]["episodes_per_s"]
    results["relative_to_in_process"] = {
        way: round(results[way]["episodes_per_s"] / base, 3) for way in ("served_hone_client", "served_bare_sdk")
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["relative_to_in_process"]))


if __name__ == "__main__":
    if sys.argv[1:] == ["--part", "serve-scripted"]:  # the server side of --part requests (a subprocess)
        serve_scripted()
    else:
        asyncio.run(main())
