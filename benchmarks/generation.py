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

`--tools` (writes benchmarks/results/generation_tools.json): long prompts with tool documents,
on the micro-tools checkpoint (`--model PATH`, default the packaged one). 32 toolgen `test`
level-2 prompts (system prompt, the documents of the offered tools, the request: ~230-540 BPE
tokens) at concurrency `--concurrency`: HFLocal's generated tokens/s (exactly `--new-tokens`
each, `ignore_eos`, temperature 1; prefill included) and prefill tokens/s (the same calls with
one new token), beside transformers' batched `model.generate` on the same rendered prompts
(left-padded, same sampling) and one forward pass over them for prefill. Each measurement gets
fresh prompts (a tag opens the system message), so no prefix computed in an earlier round is
reused; within one, HFLocal computes the prefix its calls share once (`prefix_tokens_shared`);
`prefill_unshared_tokens_per_s` is its prefill when every prompt starts differently (no sharing).
Rounds alternate between the two; medians are reported.

    .venv/bin/python benchmarks/generation.py --tools --model /path/to/micro-tools [--rounds 3]
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
from hone.envs import Reset, make_env
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


def machine(load_before: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def tool_prompts(n: int) -> list[Reset]:
    """The openings (system prompt, offered tool documents, request) of `n` toolgen test tasks of level 2."""
    env: Any = make_env("toolgen")
    tasks = [t for t in env.tasks("test") if t.meta.get("level") == 2][:n]

    async def openings() -> list[Reset]:
        out = [await env.reset(t) for t in tasks]
        await env.aclose()
        return out

    return asyncio.run(openings())


def tagged(openings: list[Reset], tag: str, each: bool = False) -> list[Reset]:
    """`openings` with `tag` opening the system message: a prefix no earlier round computed (`each`:
    a different tag per prompt, so they share no prefix at all)."""
    out = []
    for i, o in enumerate(openings):
        first, *rest = o.messages
        label = f"{tag} {i}" if each else tag
        out.append(Reset(messages=[Message.system(f"[{label}] {first.content}"), *rest], tools=o.tools))
    return out


async def tools_hone(hf: HFLocal, openings: list[Reset], new: int) -> dict[str, Any]:
    samplings = [
        Sampling(temperature=1.0, seed=i, max_tokens=new, extra={"ignore_eos": True}) for i in range(len(openings))
    ]
    start = time.perf_counter()
    calls = await asyncio.gather(
        *(hf.generate(o.messages, o.tools, s) for o, s in zip(openings, samplings, strict=True))
    )
    wall = time.perf_counter() - start
    generated = sum(len(c.completion_token_ids or ()) for c in calls)
    assert generated == len(openings) * new, generated
    return {"wall_s": wall, "prompt_tokens": sum(len(c.prompt_token_ids or ()) for c in calls), "generated": generated}


def tools_bare(model: Any, tokenizer: Any, texts: list[str], new: int) -> dict[str, Any]:
    tokenizer.padding_side = "left"
    batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with torch.inference_mode():
        start = time.perf_counter()
        model(**batch, logits_to_keep=1)  # prefill alone: one forward pass, last position's logits
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
            pad_token_id=tokenizer.pad_token_id,
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


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in rounds[0].items() if isinstance(v, int | float)]
    return {**{k: round(statistics.median(r[k] for r in rounds), 3) for k in keys}, "rounds": rounds}


def run_tools(path: Path, concurrency: int, new: int, rounds: int) -> dict[str, Any]:
    """HFLocal and transformers' batched generate on the same tool-document prompts, alternating."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    hf = HFLocal(model, tokenizer, max_new_tokens=new, max_batch_size=concurrency, name=path.name)
    base = tool_prompts(concurrency)
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []

    async def main() -> None:
        await tools_hone(hf, tagged(base[:4], "warm-up"), 2)
        for r in range(rounds):
            fresh = [tagged(base, f"r{r} {part}") for part in ("bare", "prefill", "decode")]
            theirs.append(tools_bare(model, tokenizer, [hf.render(o.messages, o.tools) for o in fresh[0]], new))
            unshared = await tools_hone(hf, tagged(base, f"r{r} unshared", each=True), 1)
            shared = hf.stats.prefix_tokens
            prefill = await tools_hone(hf, fresh[1], 1)
            decode = await tools_hone(hf, fresh[2], new)
            ours.append(
                {
                    "tokens_per_s": round(decode["generated"] / decode["wall_s"], 1),
                    "prefill_tokens_per_s": round(prefill["prompt_tokens"] / prefill["wall_s"], 1),
                    "prefill_unshared_tokens_per_s": round(unshared["prompt_tokens"] / unshared["wall_s"], 1),
                    "wall_s": round(decode["wall_s"], 3),
                    "prefill_s": round(prefill["wall_s"], 3),
                    "prompt_tokens": prefill["prompt_tokens"],
                    "prefix_tokens_shared": hf.stats.prefix_tokens - shared,
                }
            )
            print(f"round {r}: HFLocal {ours[-1]}; transformers {theirs[-1]}", flush=True)
        await hf.aclose()

    asyncio.run(main())
    lengths = [len(hf.encode(o.messages, o.tools)) for o in base]
    return {
        "model": str(path),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch_threads": torch.get_num_threads(),
        "prompts": {
            "env": "toolgen",
            "split": "test",
            "level": 2,
            "n": len(base),
            "tokens_min": min(lengths),
            "tokens_mean": round(statistics.mean(lengths), 1),
            "tokens_max": max(lengths),
            "tools_min": min(len(o.tools) for o in base),
            "tools_max": max(len(o.tools) for o in base),
        },
        "concurrency": concurrency,
        "new_tokens_per_call": new,
        "hf_local": medians(ours),
        "transformers_generate": medians(theirs),
    }


def tools_main(args: argparse.Namespace) -> None:
    path = Path(args.model).expanduser() if args.model else micro_checkpoint(tools=True)
    if not (path / "config.json").is_file():
        where = "no micro-tools checkpoint is packaged yet" if not args.model else f"{path} has no config.json"
        raise SystemExit(f"generation --tools: {where}; pass --model PATH (a micro-tools checkpoint directory)")
    if args.threads != "0":
        torch.set_num_threads(int(args.threads.split(",")[0]))
    load_before = os.getloadavg()
    started = time.perf_counter()
    run = run_tools(path, args.concurrency, args.new_tokens, args.rounds)
    result = {
        "benchmark": "generation_tools",
        "machine": machine(load_before),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.perf_counter() - started, 1),
        **run,
    }
    out = Path(args.out or Path(__file__).parent / "results" / "generation_tools.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    ours, theirs = run["hf_local"], run["transformers_generate"]
    print(
        f"concurrency {args.concurrency}, prompts {run['prompts']['tokens_mean']} tokens on average: "
        f"HFLocal {ours['tokens_per_s']} tokens/s, prefill {ours['prefill_tokens_per_s']} tokens/s "
        f"({ours['prefill_unshared_tokens_per_s']} with no shared prefix); "
        f"transformers generate {theirs['tokens_per_s']} tokens/s, prefill {theirs['prefill_tokens_per_s']} tokens/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="0", help="comma-separated torch thread counts (0 = default)")
    parser.add_argument("--levels", default="1,8,32,64")
    parser.add_argument("--out", default=None, help="default: results/generation.json (--tools: generation_tools.json)")
    parser.add_argument("--tools", action="store_true", help="tool-document prompts on the micro-tools checkpoint")
    parser.add_argument("--model", default=None, help="--tools: the checkpoint directory (default: the packaged one)")
    parser.add_argument("--concurrency", type=int, default=32, help="--tools: concurrent calls")
    parser.add_argument("--new-tokens", type=int, default=64, help="--tools: tokens generated per call")
    args = parser.parse_args()
    if args.tools:
        tools_main(args)
        return
    args.out = args.out or str(Path(__file__).parent / "results" / "generation.json")
    levels = [int(x) for x in args.levels.split(",")]
    load_before = os.getloadavg()
    runs = [run(int(t), args.rounds, levels) for t in args.threads.split(",")]
    result = {
        "benchmark": "generation",
        "machine": machine(load_before),
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
