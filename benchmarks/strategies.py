"""Test-time strategies at equal compute: arith levels 3-5, the same per-task budget for each.

single, best_of_n (majority vote; the compute-matched baseline), refine, reflexion, mcts,
evolve and deliberate run one after another on the same tasks (test split) with the same
Budget per task (default calls=16), through `hone.improve.compare`. Strategies see public
feedback only; the hidden grader scores each task's chosen answer. For each strategy:
accuracy with its 95% Wilson interval, calls, tokens, summed solve seconds and wall seconds,
and the paired difference to best-of-n on the same tasks (95% t interval): "beats" only when
that interval is above zero.

Models: `micro` (the embedded model; default), any model spec, or `noisy`: a scripted model
that knows each task's calculator expression but with probability `--wrong` (per level:
higher on word problems) changes one number in it (a grounded but wrong answer) and with
probability `--slip` misreports the calculator's result (an ungrounded answer). Its noise is
drawn from each call's sampling seed, so runs are reproducible.

Writes benchmarks/results/strategies.json (strategies-MODEL.json for other models) and the
table into benchmarks/RESULTS.md between this model's markers, other sections untouched.

    .venv/bin/python benchmarks/strategies.py [--model micro|noisy|SPEC] [-n 200] [--budget calls=16]
                                              [--levels 3-5] [--threads 1] [--concurrency 32] [--temperature T]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hone.core import Budget, Message, ModelCall, Sampling, ToolSpec, Usage, stable_int
from hone.envs import make_env
from hone.envs._arith import solution_expression
from hone.improve import Comparison, acompare, make_strategy
from hone.models import ChatModel, aclose_model, call_tool, request_digest, resolve_model

STRATEGIES = ["single", "best_of_n", "refine", "reflexion", "mcts", "evolve", "deliberate"]
HERE = Path(__file__).parent


class NoisyArith:
    """A scripted arith model with seeded errors (see the module docstring)."""

    name = "noisy"

    def __init__(self, expressions: dict[str, tuple[str, int]], wrong: Sequence[float], slip: float) -> None:
        self.expressions = expressions  # question -> (calculator expression, level)
        self.wrong = list(wrong)
        self.slip = slip

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None, sampling: Sampling | None = None
    ) -> ModelCall:
        sampling = sampling or Sampling()
        rng = random.Random(stable_int("noisy-arith", sampling.seed, len(messages)))
        question = next((m.text for m in messages if m.role == "user"), "")
        expr, level = self.expressions.get(question, ("0", 3))
        if messages[-1].role == "tool":
            result = messages[-1].text.strip()
            if rng.random() < self.slip and re.fullmatch(r"-?\d+", result):
                result = str(int(result) + rng.choice((-1, 1)) * rng.randint(1, 10))
            message = Message.assistant(f"The answer is {result}.")
        else:
            if rng.random() < self.wrong[min(level, len(self.wrong)) - 1]:
                numbers = re.findall(r"\d+", expr)
                pick = rng.choice(numbers)
                expr = expr.replace(pick, str(int(pick) + rng.randint(1, 9)), 1)
            message = call_tool("calculator", {"expression": expr}, call_id=f"c{rng.randint(0, 10**6)}")
        prompt = sum(len(m.text) for m in messages) // 4 + 1
        return ModelCall(
            model=self.name,
            request_digest=request_digest(self.name, messages, tools, sampling),
            sampling=sampling,
            message=message,
            usage=Usage(prompt_tokens=prompt, completion_tokens=16),
        )


def _markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    noisy = " (a scripted model with seeded errors)" if cfg["model"] == "noisy" else ""
    # What the strategies sampled at: --temperature, else the model's default (hone.improve._defaults.default_sampling).
    temps = sorted({r["temperature"] for r in results["rows"] if r["strategy"] != "single" and "temperature" in r})
    origin = "" if cfg.get("temperature") is not None else " (the model's default)"
    shown = ", ".join(f"{t:g}" for t in temps if t is not None)
    sampling = f", sampling temperature {shown}{origin} (single: greedy)" if shown else ""
    lines = [
        "## Test-time strategies at equal compute (`benchmarks/strategies.py`)",
        "",
        f"arith levels {cfg['levels']}, {cfg['n']} tasks (test split), model `{cfg['model']}`, "
        f"budget `{cfg['budget']}` per task for every strategy{sampling}; public feedback only, hidden grading of the "
        f"chosen answer{noisy}. Paired difference to best-of-n (vote) on the same tasks with a 95% t interval; "
        f"'beats' only when the interval is above zero. {results['machine']['cpus']} CPUs, run "
        f"{results['finished']}.",
        "",
        "| strategy | accuracy | 95% CI | vs best-of-n (paired 95% CI) | calls | tokens | solve s | wall s |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results["rows"]:
        ci = r["ci"] or [0.0, 0.0]
        if "delta" in r:
            lo, hi = r["delta_ci"]
            versus = f"{100 * r['delta']:+.1f} pts [{100 * lo:+.1f}, {100 * hi:+.1f}] {r['vs_baseline']}"
        else:
            versus = "baseline"
        lines.append(
            f"| {r['strategy']} | {100 * r['accuracy']:.1f}% | [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}] | {versus} "
            f"| {r['calls']:,} | {r['tokens']:,} | {r['seconds']:.1f} | {r['wall_seconds']:.1f} |"
        )
    beat = [r["strategy"] for r in results["rows"] if r.get("vs_baseline") == "beats"]
    lost = [r["strategy"] for r in results["rows"] if r.get("vs_baseline") == "loses"]
    lines += [
        "",
        f"Beat the compute-matched best-of-n: {', '.join(beat) or 'none'}. "
        f"Worse than it: {', '.join(lost) or 'none'}. The rest are within noise.",
    ]
    return "\n".join(lines)


def _write_markdown(path: Path, section: str, model: str) -> None:
    """Replace this model's section between its markers (or append it); leave the rest alone."""
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", model)
    start, end = f"<!-- strategies:{key}:start -->", f"<!-- strategies:{key}:end -->"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{start}\n{section}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


async def _run(args: argparse.Namespace) -> tuple[Comparison, str]:
    env = make_env("arith", levels=args.levels)
    tasks = env.tasks("test", n=args.n, seed=args.seed)
    model: ChatModel
    if args.model == "noisy":
        expressions = {}
        for task in tasks:
            reset = await env.clone().reset(task)
            question = next(m.text for m in reset.messages if m.role == "user")
            expressions[question] = (solution_expression(task), int(task.meta["level"]))
        model = NoisyArith(expressions, wrong=[float(w) for w in args.wrong.split(",")], slip=args.slip)
    else:
        model = resolve_model(args.model)
    # The scripted model follows no instructions: operators fall back as with the micro model.
    options: dict[str, Any] = {"instruct": False} if args.model == "noisy" else {}
    sampled = {"sampling": Sampling(temperature=args.temperature)} if args.temperature is not None else {}
    strategies = [
        make_strategy(s, seed=args.seed, **options, **({} if s == "single" else sampled))  # single stays greedy
        for s in args.strategies.split(",")
    ]

    def progress(name: str, _: object) -> None:
        done[name] = done.get(name, 0) + 1
        if done[name] % max(1, len(tasks) // 4) == 0 or done[name] == len(tasks):
            print(f"  {name}: {done[name]}/{len(tasks)}", flush=True)

    done: dict[str, int] = {}
    try:
        cmp = await acompare(
            strategies,
            env,
            model,
            Budget.parse(args.budget),
            tasks=tasks,
            concurrency=args.concurrency,
            baseline=False,
            on_result=progress,
        )
    finally:
        await aclose_model(model)
    return cmp, model.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="micro", help="micro, noisy (scripted) or a model spec")
    parser.add_argument("-n", type=int, default=200, help="tasks")
    parser.add_argument("--levels", default="3-5")
    parser.add_argument("--budget", default="calls=16", help="per task, for every strategy")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--temperature", type=float, help="sampling temperature of every strategy but single (default: the model's)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="tasks solved at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (micro/hf models)")
    parser.add_argument("--wrong", default="0.3,0.3,0.35,0.5,0.6", help="noisy: wrong-expression rate per level")
    parser.add_argument("--slip", type=float, default=0.15, help="noisy: misreported-result rate")
    parser.add_argument("--out", type=Path, help="JSON results (default results/strategies.json; -MODEL if not micro)")
    parser.add_argument("--markdown", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    if args.out is None:
        suffix = "" if args.model == "micro" else "-" + re.sub(r"[^A-Za-z0-9_.-]", "_", args.model)
        args.out = HERE / "results" / f"strategies{suffix}.json"
    machine: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    if args.model != "noisy":
        import torch

        torch.set_num_threads(args.threads)
        machine |= {"torch": torch.__version__, "torch_threads": args.threads}
    start = time.perf_counter()
    cmp, model_name = asyncio.run(_run(args))
    results = {
        "config": {
            "model": args.model,
            "model_name": model_name,
            "n": args.n,
            "levels": args.levels,
            "budget": args.budget,
            "seed": args.seed,
            "temperature": args.temperature,
            "concurrency": args.concurrency,
            "noise": {"wrong": args.wrong, "slip": args.slip} if args.model == "noisy" else None,
            "strategies": {r.strategy: r.config for r in cmp.reports},
        },
        "rows": cmp.rows(),
        "by_level": {r.strategy: {k: v.accuracy for k, v in r.summary.by_subset.items()} for r in cmp.reports},
        "wall_s": round(time.perf_counter() - start, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    section = _markdown(results)
    _write_markdown(args.markdown, section, args.model)
    print(section)
    print(f"wrote {args.out} and {args.markdown}")


if __name__ == "__main__":
    main()
