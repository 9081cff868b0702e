"""Batched generation throughput of `HFLocal` on the micro model. Writes JSON to benchmarks/results/.

Concurrent `generate` calls (concurrency 1, 8, 32, 64), each generating exactly 128 new
tokens (`ignore_eos`) at temperature 1 from an `arith` prompt (system prompt, calculator
tool, a test-split question; levels mixed, so prompt lengths differ). tokens/s = generated
tokens / wall seconds of the whole `asyncio.gather` (prompt rendering, queueing, prefill
and decode included). For comparison, transformers' own batched `model.generate` on the
same 32 prompts (left-padded, sampling, exactly 128 new tokens). The model is the
committed micro checkpoint when present, else a randomly initialised micro model of the
same architecture (throughput depends on shapes, not weights). Rounds alternate between
the two and the median is reported.

    .venv/bin/python benchmarks/generation.py [--rounds 3] [--threads 0,1]

`--threads`: torch intra-op thread counts to run with (0 = torch's default). Each figure also
comes as tokens per CPU second of this process, which other load on the machine disturbs
less than wall time (with several threads it counts every thread's time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import transformers

from hone.core import Message, Sampling, ToolSpec
from hone.envs import make_env
from hone.learn.micro import build_tokenizer, new_micro_model
from hone.models import HFLocal, micro_checkpoint

NEW_TOKENS = 128


def prompts(n: int) -> tuple[list[list[Message]], list[ToolSpec]]:
    env: Any = make_env("arith")
    tasks = env.tasks("test", n=n)
    tools = [t.spec for t in env.tools]
    return [env.prompt(t) for t in tasks], tools


async def hone_round(
    model: HFLocal, concurrency: int, convs: list[list[Message]], tools: list[ToolSpec]
) -> dict[str, Any]:
    samplings = [
        Sampling(temperature=1.0, seed=i, max_tokens=NEW_TOKENS, extra={"ignore_eos": True}) for i in range(concurrency)
    ]
    before = model.stats.steps, model.stats.batches
    start, cpu = time.perf_counter(), time.process_time()
    calls = await asyncio.gather(*(model.generate(convs[i], tools, samplings[i]) for i in range(concurrency)))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    tokens = sum(len(c.completion_token_ids or ()) for c in calls)
    assert tokens == concurrency * NEW_TOKENS, tokens
    return {
        "wall_s": round(wall, 4),
        "tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1),
        "cpu_s": round(cpu, 4),
        "decode_steps": model.stats.steps - before[0],
        "admissions": model.stats.batches - before[1],
    }


def bare_round(model: Any, tokenizer: Any, convs: list[list[Message]], tools: list[ToolSpec]) -> dict[str, Any]:
    texts = [
        tokenizer.apply_chat_template(
            [m.to_openai(object_arguments=True) for m in conv],
            tools=[t.to_openai() for t in tools],
            add_generation_prompt=True,
            tokenize=False,
        )
        for conv in convs
    ]
    start, cpu = time.perf_counter(), time.process_time()
    batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(
            **batch,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            pad_token_id=tokenizer.pad_token_id,
        )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    tokens = (out.shape[1] - batch["input_ids"].shape[1]) * out.shape[0]
    return {
        "wall_s": round(wall, 4),
        "tokens": int(tokens),
        "tokens_per_s": round(tokens / wall, 1),
        "cpu_s": round(cpu, 4),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["tokens_per_s"] for r in runs]
    # CPU seconds of this process: a figure less sensitive than wall time to other load on the machine.
    per_cpu = [r["tokens"] / r["cpu_s"] for r in runs if r["cpu_s"] > 0]
    return {
        "median_tokens_per_s": round(statistics.median(rates), 1),
        "median_tokens_per_cpu_s": round(statistics.median(per_cpu), 1) if per_cpu else None,
        "rounds": runs,
    }


def load_model() -> tuple[Any, Any, str]:
    path = micro_checkpoint()
    if (path / "config.json").is_file():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path), f"checkpoint ({path})"
    tokenizer = build_tokenizer()
    return new_micro_model(tokenizer), tokenizer, "random micro model (new_micro_model; no checkpoint yet)"


def run(threads: int, rounds: int, levels: list[int]) -> dict[str, Any]:
    if threads:
        torch.set_num_threads(threads)
    model, tokenizer, source = load_model()
    model.eval()
    convs, tools = prompts(max(levels))
    hf = HFLocal(model, tokenizer, max_new_tokens=NEW_TOKENS, max_batch_size=max(levels), name="micro")

    async def main() -> dict[str, Any]:
        await hone_round(hf, 8, convs, tools)  # warm-up
        results: dict[str, list[dict[str, Any]]] = {str(c): [] for c in levels}
        bare: list[dict[str, Any]] = []
        for _ in range(rounds):
            bare.append(bare_round(model, tokenizer, convs[:32], tools))
            for c in levels:
                results[str(c)].append(await hone_round(hf, c, convs, tools))
        await hf.aclose()
        return {
            "hf_local": {c: summary(r) for c, r in results.items()},
            "bare_generate_batch_32": summary(bare),
        }

    out = asyncio.run(main())
    return {
        "torch_threads": torch.get_num_threads(),
        "model": source,
        "parameters": sum(p.numel() for p in model.parameters()),
        **out,
        "prefix_tokens_shared": hf.stats.prefix_tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="0", help="comma-separated torch thread counts (0 = default)")
    parser.add_argument("--levels", default="1,8,32,64")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "generation.json"))
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    load_before = os.getloadavg()
    runs = [run(int(t), args.rounds, levels) for t in args.threads.split(",")]
    result = {
        "benchmark": "generation",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "new_tokens_per_call": NEW_TOKENS,
        "target": ">= 2000 tokens/s at concurrency 32",
        "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for r in runs:
        rates = {c: v["median_tokens_per_s"] for c, v in r["hf_local"].items()}
        bare = r["bare_generate_batch_32"]["median_tokens_per_s"]
        print(f"threads={r['torch_threads']}: HFLocal tokens/s by concurrency {rates}; bare generate @32: {bare}")


if __name__ == "__main__":
    main()
