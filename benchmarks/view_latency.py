"""Latency of `hone view` on a generated store of 100,000 trajectories (issue 15).

Builds, once and seeded, an SQLite store shaped like real ones through hone's public API
(`open_store`, `save_run`, `put_many`): about 200 runs of every kind (eval; improve with its
`-candidates` child; loop with `-eval-N` and `-collect-N` children), four envs (arith, gsm8k,
toolgen, humaneval), API and local models (local ones keep prompt/completion token ids, loop
collections log-probabilities too), 1-6 steps with tool calls and observations, hidden and
public feedback, errors, subsets, k=1..4 samples, and a few big runs: one eval run holds 30%
of the store (30,000 trajectories at --n 100000). A rerun finds the store (PATH holds n
trajectories) and skips the build.

Then serves `hone.web.create_app(store_url)` with uvicorn in a subprocess on 127.0.0.1 and
times GETs with httpx (response read in full), `--reps` times each after `--warmup`
untimed ones: the runs list, the runs list filtered, the big run's page (plain, searched,
sorted, searched and sorted, searched for text that is nowhere, page 50, page 50 sorted), a
typical run's page, and transcripts (a different trajectory each request, a third of them the
big run's longest: 6 steps with token ids). Reports p50/p95/max in ms beside the targets (runs
list and run page < 300 ms, a transcript < 100 ms; a target is met when p95 is under it), the
server's CPU ms per request (less sensitive to other load on the machine), the store's size on
disk and the build time. Writes benchmarks/results/view_latency.json. The store goes under /tmp
(default /tmp/hone-view-bench/hone-N.db), never in the repository.

    .venv/bin/python benchmarks/view_latency.py --build /tmp/hone-view-bench/hone-100000.db --n 100000  # build only
    .venv/bin/python benchmarks/view_latency.py [--store PATH] [--n 100000] [--reps 30] [--rebuild]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hone.core import (
    ErrorInfo,
    Feedback,
    Ledger,
    Message,
    ModelCall,
    Sampling,
    Step,
    ToolCall,
    ToolSpec,
    Trajectory,
    Usage,
)
from hone.store import RunInfo, open_store, store_url

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STORE = Path("/tmp/hone-view-bench")
BASE_TIME = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
BATCH = 1000
BIG_SHARE = 0.30  # the big eval run's share of the store
MID_SHARES = {"loop-collect": 0.08, "improve-candidates": 0.05}  # the next biggest runs
TARGETS_MS = {"list": 300.0, "run": 300.0, "transcript": 100.0}

# -- what the store holds -----------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    spec: str
    local: bool  # local backends keep token ids (and a tool format); API ones report a cost
    vocab: int
    strength: float  # chance of passing an easy task


MODELS = [
    ModelShape("micro", True, 128, 0.55),
    ModelShape("hf:Qwen/Qwen2.5-0.5B-Instruct", True, 151_000, 0.45),
    ModelShape("hf:./checkpoints/qwen2.5-1.5b-instruct", True, 151_000, 0.6),
    ModelShape("openai:gpt-4o-mini", False, 200_000, 0.8),
    ModelShape("openai:gpt-4.1", False, 200_000, 0.9),
    ModelShape("vllm:meta-llama/Llama-3.1-8B-Instruct", True, 128_000, 0.7),
]
STRATEGIES = ["best_of_n", "mcts", "evolve", "deliberate", "self_refine"]
OPS = ["root", "sample", "expand", "revision", "rollout"]
CITIES = ["Lisbon", "Paris", "Osaka", "Lima", "Accra", "Oslo", "Quito", "Hanoi", "Perth", "Cusco"]
CITIES += ["Dakar", "Turin", "Kyoto", "Leeds", "Porto", "Tunis", "Sofia", "Cairo", "Delhi", "Dubai"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "INR"]
TEXT = "first we find the total then subtract what was given away so the remaining amount is the difference \
between the two numbers and we multiply by the price per item to get the cost in dollars"
WORDS = TEXT.split()
LIMITS = {"max_turns": 10, "max_tool_calls": 20, "timeout_s": 300.0, "tool_errors": "auto"}
BUDGET = {"calls": None, "tokens": None, "cost_usd": None, "tool_calls": None, "seconds": None}


def _schema(**props: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {k: {"type": v, "description": f"The {k.replace('_', ' ')}."} for k, v in props.items()},
        "required": list(props),
    }


CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression and return the result.\n\nSupports numbers, + - * / // % ** "
    'and parentheses, e.g. "(12 + 7) * 3 / 4".',
    parameters=_schema(expression="string"),
)
RUN_PYTHON = ToolSpec(
    name="run_python",
    description="Run Python 3 code in a sandbox (no network, 10 s) and return its stdout and stderr.",
    parameters=_schema(code="string"),
)
TOOLGEN_TOOLS = [
    ToolSpec(
        name="get_weather", description="Current weather for a city.", parameters=_schema(city="string", unit="string")
    ),
    ToolSpec(
        name="convert_currency",
        description="Convert an amount between currencies at today's rate.",
        parameters=_schema(amount="number", from_currency="string", to_currency="string"),
    ),
    ToolSpec(
        name="search_flights",
        description="Search direct flights between two cities on a date.",
        parameters=_schema(origin="string", destination="string", date="string"),
    ),
    ToolSpec(name="book_hotel", description="Book a hotel room.", parameters=_schema(city="string", nights="integer")),
    ToolSpec(name="get_stock_price", description="Latest price of a stock.", parameters=_schema(symbol="string")),
    ToolSpec(
        name="send_email",
        description="Send an email on the user's behalf.",
        parameters=_schema(to="string", subject="string", body="string"),
    ),
]


@dataclass(frozen=True)
class EnvShape:
    name: str
    version: str
    system: str
    tools: list[ToolSpec]
    subsets: list[str | None]
    step_weights: list[float]  # for 1..6 steps
    verifier: str


ENVS = {
    "arith": EnvShape(
        "arith",
        "1",
        'Use the calculator tool for the arithmetic, then reply "The answer is N."',
        [CALCULATOR],
        ["L1", "L2", "L3", "L4", "L5"],
        [0.15, 0.6, 0.15, 0.05, 0.03, 0.02],
        "exact_match",
    ),
    "gsm8k": EnvShape(
        "gsm8k",
        "2",
        'Solve the problem step by step, then finish with "The answer is N."',
        [],
        [None],
        [0.8, 0.15, 0.05, 0.0, 0.0, 0.0],
        "numeric_match",
    ),
    "toolgen": EnvShape(
        "toolgen",
        "3",
        "You are a helpful assistant with tools. Call them as needed, then answer the user in one or two sentences.",
        TOOLGEN_TOOLS,
        ["single", "choice", "parallel", "chain", "ask", "no_tool"],
        [0.1, 0.3, 0.25, 0.15, 0.1, 0.1],
        "tool_calls_match",
    ),
    "humaneval": EnvShape(
        "humaneval",
        "1",
        "Write the Python function. You may run code with run_python; reply with the final code in one block.",
        [RUN_PYTHON],
        [None],
        [0.1, 0.2, 0.25, 0.2, 0.15, 0.1],
        "unit_tests",
    ),
}


@dataclass
class RunPlan:
    index: int
    info: RunInfo
    env: EnvShape
    model: ModelShape
    k: int
    size: int = 0
    logprobs: bool = False
    strategy: str | None = None
    candidates: RunPlan | None = None  # an improve run's candidates run, which its bests point into
    accuracy: float = 0.5
    error_rate: float = 0.02
    dt_s: float = 0.5  # seconds between trajectories
    children: list[RunPlan] = field(default_factory=list)


def _hexid(a: int, b: int) -> str:
    """10 hex digits, a bijection of (a, b) for a < 2**10, b < 2**30 (an odd multiplier mod 2**40)."""
    return f"{(((a << 30) | b) * 0x9E3779B97F) % (1 << 40):010x}"


def _ms(when: datetime) -> str:
    return f"{int(when.timestamp() * 1000):011x}"


def plan_runs(n: int, seed: int, n_runs: int) -> list[RunPlan]:
    """The runs and how many trajectories each holds (summing to `n`), oldest first."""
    rng = random.Random(seed)
    plans: list[RunPlan] = []
    when = BASE_TIME

    def add(
        kind: str, run_id: str, parent: str | None, env: EnvShape, model: ModelShape, split: str, k: int
    ) -> RunPlan:
        nonlocal when
        when += timedelta(hours=rng.uniform(1, 12))
        config: dict[str, Any] = {"split": split, "k": k, "seed": rng.randrange(4), "limits": LIMITS}
        info = RunInfo(id=run_id, kind=kind, parent_id=parent, env=env.name, model=model.spec, split=split)
        info.created_at = when
        info.config = config
        plan = RunPlan(len(plans), info, env, model, k, accuracy=min(0.95, model.strength + rng.uniform(-0.15, 0.15)))
        plans.append(plan)
        return plan

    while len(plans) < n_runs:
        env = rng.choice(list(ENVS.values()))
        model = rng.choice(MODELS)
        roll = rng.random()
        if roll < 0.55:
            run = add(
                "eval",
                f"run-{_ms(when)}{_hexid(len(plans), 7_654_321)}",
                None,
                env,
                model,
                "test",
                rng.choice([1, 1, 2, 4]),
            )
            run.info.config |= {"n": None, "concurrency": 32, "budget": BUDGET}
        elif roll < 0.8:
            cmp_id = f"cmp-{env.name}-{_hexid(len(plans), 1)[:6]}"
            for strategy in rng.sample(STRATEGIES, rng.choice([1, 2])):
                best = add("improve", f"{cmp_id}-{strategy}", cmp_id, env, model, "test", 1)
                cands = add("improve-candidates", f"{best.info.id}-candidates", best.info.id, env, model, "test", 8)
                for run in (best, cands):
                    run.strategy = strategy
                    run.info.config |= {"strategy": {"name": strategy, "parallel": 4}, "budget": "calls=16"}
                best.candidates = cands
                best.accuracy = min(0.97, best.accuracy + 0.1)
        else:
            model = rng.choice([m for m in MODELS if m.local])  # loops train local models
            algo = rng.choice(["expert-iteration", "grpo", "rft"])
            loop = add("loop", f"loop-{env.name}-{algo}-{_hexid(len(plans), 2)[:8]}", None, env, model, "train", 1)
            loop.info.config |= {"algo": algo, "rounds": rng.choice([2, 3, 4])}
            for r in range(loop.info.config["rounds"]):
                child_model = ModelShape(f"{model.spec}@checkpoint-{r or 'base'}", True, model.vocab, model.strength)
                ev = add("loop-eval", f"{loop.info.id}-eval-{r}", loop.info.id, env, child_model, "test", 1)
                col = add("loop-collect", f"{loop.info.id}-collect-{r}", loop.info.id, env, child_model, "train", 4)
                col.logprobs = True
                col.dt_s = 0.05
                ev.accuracy = col.accuracy = min(0.95, model.strength + 0.05 * r)
                loop.children += [ev, col]
    _size_runs(plans, n, rng)
    for plan in plans:
        plan.error_rate = rng.choice([0.0, 0.01, 0.02, 0.03, 0.05, 0.3 if rng.random() < 0.1 else 0.02])
        status = "done"
        if plan.error_rate >= 0.3:
            status = "failed"
        elif rng.random() < 0.04:
            status = "interrupted"
        plan.info.status = status  # type: ignore[assignment]
    plans[-1].info.status = "running"
    return plans


def _size_runs(plans: list[RunPlan], n: int, rng: random.Random) -> None:
    """Share `n` trajectories out: the big eval run, two mid runs, the rest log-normally (loops hold none)."""
    holders = [p for p in plans if p.info.kind != "loop"]
    # The heaviest kind of eval run there is: toolgen on a local model (token ids in every row).
    big = max(
        (p for p in holders if p.info.kind == "eval"), key=lambda p: (p.env.name == "toolgen", p.model.local, -p.index)
    )
    big.k, big.dt_s = 4, 0.1
    big.info.config |= {"k": 4}
    fixed = {big.index: round(n * BIG_SHARE)}
    for kind, share in MID_SHARES.items():
        mid = next((p for p in holders if p.info.kind == kind and p.index not in fixed), None)
        if mid is not None:
            fixed[mid.index] = round(n * share)
    rest = [p for p in holders if p.index not in fixed]
    weights = [rng.lognormvariate(0, 1.0) * (3 if p.info.kind == "improve-candidates" else 1) for p in rest]
    left = n - sum(fixed.values())
    sizes = [math.floor(left * w / sum(weights)) for w in weights]
    for i in range(left - sum(sizes)):
        sizes[i % len(sizes)] += 1
    for p, size in zip(rest, sizes, strict=True):
        p.size = size
    for index, size in fixed.items():
        plans[index].size = size


def big_run(plans: list[RunPlan]) -> RunPlan:
    return max(plans, key=lambda p: p.size)


# -- trajectories ---------------------------------------------------------------------------


def _tokens(rng: random.Random, vocab: int, n: int) -> list[int]:
    return [rng.randrange(vocab) for _ in range(n)]


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _call(
    rng: random.Random, model: ModelShape, message: Message, prompt_tokens: int, logprobs: bool, finish: str
) -> ModelCall:
    completion = max(4, len(message.content or "") // 4 + 25 * len(message.tool_calls or []))
    return ModelCall(
        model=model.spec,
        request_digest=f"{rng.getrandbits(128):032x}",
        sampling=Sampling(temperature=0.7, seed=rng.randrange(1 << 31), logprobs=logprobs),
        message=message,
        finish_reason=finish,
        usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion),
        latency_s=rng.uniform(0.2, 3.0),
        cost_usd=None if model.local else round((prompt_tokens * 0.15 + completion * 0.6) / 1e6, 8),
        prompt_token_ids=_tokens(rng, model.vocab, prompt_tokens) if model.local else None,
        completion_token_ids=_tokens(rng, model.vocab, completion) if model.local else None,
        completion_logprobs=[-rng.expovariate(4.0) for _ in range(completion)] if logprobs else None,
        tool_format="hermes" if model.local else None,
    )


def _tool_turn(rng: random.Random, env: EnvShape, i: int) -> tuple[Message, list[Message]]:
    """An assistant message calling tools, and the tool messages answering it."""
    calls: list[tuple[ToolCall, str, str | None]] = []
    if env.name == "arith":
        expr = f"{rng.randrange(100)} {rng.choice('+-*')} {rng.randrange(100)}"
        calls.append((ToolCall(id=f"call_{i}", name="calculator", arguments={"expression": expr}), "42", None))
    elif env.name == "humaneval":
        code = "\n".join(
            [
                "def candidate(xs):",
                "    out = []",
                "    for x in xs:",
                "        if x % 2 == 0:",
                "            out.append(x)",
            ]
            + [f"    # {_sentence(rng, 8)}" for _ in range(rng.randrange(2, 10))]
            + ["    return out", "", f"print(candidate([{', '.join(str(rng.randrange(50)) for _ in range(8))}]))"]
        )
        failed = rng.random() < 0.3
        out = "Traceback (most recent call last):\n  File \"<main>\", line 3\nTypeError: 'int' object is not iterable"
        calls.append(
            (
                ToolCall(id=f"call_{i}", name="run_python", arguments={"code": code}),
                out if failed else "[2, 4, 18]",
                None,
            )
        )
        if failed:
            calls[-1] = (calls[-1][0], out, "exit status 1")
    else:
        for j in range(rng.choice([1, 1, 2])):
            city = rng.choice(CITIES)
            tool = rng.choice(TOOLGEN_TOOLS[:4])
            by_tool: dict[str, dict[str, Any]] = {
                "get_weather": {"city": city, "unit": "celsius"},
                "convert_currency": {"amount": rng.randrange(10, 500), "from_currency": "USD", "to_currency": "EUR"},
                "search_flights": {"origin": city, "destination": rng.choice(CITIES), "date": "2025-10-04"},
                "book_hotel": {"city": city, "nights": rng.randrange(1, 6)},
            }
            args = by_tool[tool.name]
            result = json.dumps({"ok": True, "result": {**args, "value": round(rng.uniform(1, 900), 2)}})
            call = ToolCall(id=f"call_{i}_{j}", name=tool.name, arguments=args, arguments_raw=json.dumps(args))
            calls.append((call, result, None))
    text = _sentence(rng, 12) if env.name != "arith" and rng.random() < 0.5 else None
    message = Message.assistant(text, [c for c, _, _ in calls])
    observations = [Message.tool(out, c.id, c.name, error=err) for c, out, err in calls]
    if env.name == "gsm8k":  # no tools: the environment asks again
        message = Message.assistant(" ".join(_sentence(rng, 14) for _ in range(5)))
        observations = [Message.user('Please finish with "The answer is N." where N is a number.')]
    return message, observations


def make_template(env: EnvShape, model: ModelShape, n_steps: int, ending: str, logprobs: bool, seed: int) -> Trajectory:
    """A trajectory with everything that costs to build (steps, token ids, usage); ids and grades come later."""
    rng = random.Random(seed)
    prompt_tokens = 120 + 40 * len(env.tools)
    steps: list[Step] = []
    for i in range(n_steps):
        last = i == n_steps - 1
        error = None
        if not last or ending == "truncated":
            message, observations = _tool_turn(rng, env, i)
            finish = "tool_calls" if message.tool_calls else "stop"
        elif ending == "error":
            raw = '{"name": "' + rng.choice(["calc", "", "run"]) + '", "arguments": {"nanswer is 2  72.'
            message, observations, finish = Message.assistant(raw), [], "stop"
            names = ", ".join(t.name for t in env.tools) or "none"
            kind = rng.choice(["ToolError", "ModelError"])
            why = f"unknown tool ''; available tools: {names}" if kind == "ToolError" else "HTTP 503 from backend"
            error = ErrorInfo(type=kind, message=why, step_index=i, raw=raw if kind == "ToolError" else None)
        else:
            if env.name == "humaneval":
                body = "\n".join(f"    # {_sentence(rng, 6)}" for _ in range(6))
                content = f"```python\ndef candidate(xs):\n{body}\n    return [x for x in xs if x % 2 == 0]\n```"
            else:
                reasoning = " ".join(_sentence(rng, 12) for _ in range(3 if env.name == "gsm8k" else 1))
                content = f"{reasoning} The answer is {rng.randrange(1000)}."
            message, observations, finish = Message.assistant(content), [], "stop"
        feedback = []
        if env.name == "humaneval" and message.tool_calls:
            ok = not any(o.error for o in observations)
            text = "public tests: 3 of 3 passed" if ok else "public tests: 1 of 3 passed"
            feedback = [Feedback(source="verifier", name="public_tests", passed=ok, text=text, step_index=i)]
        steps.append(
            Step(
                call=_call(rng, model, message, prompt_tokens, logprobs, finish),
                observations=observations,
                feedback=feedback,
                error=error,
            )
        )
        prompt_tokens += steps[-1].call.usage.completion_tokens + 30 * len(observations) + 10
    usage = Ledger(
        calls=n_steps,
        prompt_tokens=sum(s.call.usage.prompt_tokens for s in steps),
        completion_tokens=sum(s.call.usage.completion_tokens for s in steps),
        cost_usd=sum(s.call.cost_usd or 0.0 for s in steps),
        tool_calls=sum(len(s.call.message.tool_calls or []) for s in steps),
        env_steps=n_steps,
        seconds=sum(s.call.latency_s for s in steps) + rng.uniform(0, 1),
    )
    return Trajectory(
        task_id="template",
        env=env.name,
        env_version=env.version,
        model=model.spec,
        tools=env.tools,
        steps=steps,
        status={"answer": "ok", "truncated": "truncated", "error": "error"}[ending],
        stop_reason={"answer": "done", "truncated": "max_turns", "error": "error"}[ending],
        error=steps[-1].error if ending == "error" else None,
        usage=usage,
    )


class Templates:
    """Templates by shape, made on first use (seeded by their key, so the order of use does not matter)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.cache: dict[tuple[Any, ...], Trajectory] = {}

    def get(
        self, env: EnvShape, model: ModelShape, n_steps: int, ending: str, logprobs: bool, variant: int
    ) -> Trajectory:
        key = (env.name, model.spec, n_steps, ending, logprobs, variant)
        found = self.cache.get(key)
        if found is None:
            key_seed = zlib.crc32(repr((self.seed, *key)).encode())
            found = self.cache[key] = make_template(env, model, n_steps, ending, logprobs, key_seed)
        return found


def _task(env: EnvShape, rng: random.Random, index: int, split: str) -> tuple[str, str | None, str, str]:
    """(task_id, subset, user text, right answer) of task `index`."""
    subset = env.subsets[index % len(env.subsets)]
    if env.name == "arith":
        level = int(str(subset)[1:])
        nums = [rng.randrange(1, 10 ** min(level, 3)) for _ in range(level + 1)]
        signs = [rng.choice("+-") for _ in nums[1:]]
        text = " ".join([str(nums[0])] + [f"{s} {x}" for s, x in zip(signs, nums[1:], strict=True)])
        value = nums[0] + sum(x if s == "+" else -x for s, x in zip(signs, nums[1:], strict=True))
        return f"arith-{split}-{subset}-{index:05d}", subset, f"Compute: {text}", str(value)
    if env.name == "gsm8k":
        a, b, c = rng.randrange(2, 60), rng.randrange(2, 12), rng.randrange(2, 30)
        text = (
            f"A baker makes {a} loaves on Monday and {b} times as many on Tuesday. She sells all but {c} of them "
            f"at the market. {_sentence(rng, 10)} How many loaves did she sell?"
        )
        return f"gsm8k-{split}-{index:05d}", subset, text, str(a + a * b - c)
    if env.name == "toolgen":
        city, amount, cur = rng.choice(CITIES), rng.randrange(10, 500), rng.choice(CURRENCIES)
        text = f"What's the weather in {city} right now, and how much is {amount} USD in {cur}?"
        answer = f"It is {rng.randrange(-5, 35)}°C in {city}; {amount} USD is {amount * 0.92:.2f} {cur}."
        return f"toolgen-{split}-{subset}-{index:05d}", subset, text, answer
    name = f"filter_{rng.choice(WORDS)}_{index}"
    doc = f"{_sentence(rng, 20)}\n    >>> {name}([1, 2, 3, 4])\n    [2, 4]"
    text = f'def {name}(xs: list[int]) -> list[int]:\n    """{doc}\n    """\n'
    return f"HumanEval/{index}", subset, text, f"def {name}(xs):\n    return [x for x in xs if x % 2 == 0]\n"


def _tid(plan: RunPlan, j: int) -> tuple[str, datetime]:
    created = plan.info.created_at + timedelta(seconds=j * plan.dt_s)
    return f"t{_ms(created)}{_hexid(plan.index, j)}", created


def trajectories(plan: RunPlan, templates: Templates, seed: int) -> Iterator[Trajectory]:
    """Run `plan`'s trajectories: task `j // k`, sample `j % k`."""
    rng = random.Random(seed * 1_000_003 + plan.index)
    env, model, info = plan.env, plan.model, plan.info
    system = Message.system(env.system)
    split = info.split or "test"
    task: tuple[str, str | None, Message, str] | None = None
    weights = env.step_weights
    for j in range(plan.size):
        if j % plan.k == 0:
            task_id, subset, text, right = _task(env, rng, j // plan.k, split)
            task = (task_id, subset, Message.user(text), right)
        assert task is not None
        task_id, subset, user, right = task
        roll = rng.random()
        ending = "error" if roll < plan.error_rate else "truncated" if roll < plan.error_rate + 0.03 else "answer"
        n_steps = rng.choices(range(1, 7), weights)[0]
        tmpl = templates.get(env, model, n_steps, ending, plan.logprobs, rng.randrange(2))
        tid, created = _tid(plan, j)
        level = int(subset[1:]) if subset and subset[0] == "L" else 3
        passed = ending == "answer" and rng.random() < plan.accuracy * (1.1 - 0.08 * level)
        answer = right if passed else None if ending != "answer" else f"{rng.randrange(1000)}"
        feedback: list[Feedback] = []
        reward: float | None = None
        if ending != "error":
            if passed or env.name in ("arith", "gsm8k"):
                reward = 1.0 if passed else 0.0
            else:
                reward = rng.choice([0.0, 0.25, 0.5, 0.75])
            evidence = {"expected": right[:80], "got": (answer or "")[:80]}
            text = "all tests passed" if passed else f"expected {right[:40]!r}, got {(answer or '')[:40]!r}"
            feedback.append(
                Feedback(
                    source="verifier",
                    name=env.verifier,
                    score=reward,
                    passed=passed,
                    text=text,
                    evidence=evidence,
                    visibility="hidden",
                )
            )
            if env.name == "humaneval":
                feedback.append(Feedback(source="verifier", name="public_tests", passed=passed or rng.random() < 0.5))
        update: dict[str, Any] = {
            "id": tid,
            "run_id": info.id,
            "task_id": task_id,
            "sample": j % plan.k,
            "split": info.split,
            "subset": subset,
            "prompt": [system, user],
            "answer": answer,
            "feedback": feedback,
            "reward": reward,
            "created_at": created,
            "finished_at": created + timedelta(seconds=tmpl.usage.seconds),
        }
        if plan.strategy is not None and info.kind.endswith("candidates"):
            op = OPS[0] if j % plan.k == 0 else rng.choice(OPS[1:])
            update |= {
                "strategy": plan.strategy,
                "op": op,
                "parent_ids": [] if op == "root" else [_tid(plan, j - 1)[0]],
            }
            update["meta"] = {"depth": j % plan.k, "visits": rng.randrange(1, 9), "value": round(rng.random(), 4)}
            if op == "revision":
                critique = Feedback(
                    source="critic", name="critique", score=round(rng.random(), 2), text=_sentence(rng, 16)
                )
                update["feedback"] = [*feedback, critique]
        elif plan.strategy is not None:  # an improve run's bests point at a candidate
            cands = plan.candidates
            at = min(j * cands.k + rng.randrange(cands.k), cands.size - 1) if cands else -1
            picked = _tid(cands, at)[0] if cands and at >= 0 else None
            update |= {"strategy": plan.strategy, "op": "select", "parent_ids": [picked] if picked else []}
            update["meta"] = {"selected_from": picked, "candidates": cands.k if cands else 0}
        elif info.kind == "loop-collect":
            update["tags"] = ["train"]
        yield tmpl.model_copy(update=update)


def _iterations(loop: RunPlan, levels: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """A loop's `summary["iterations"]`: each round's held-out accuracy (by level) and its runs."""
    out = []
    evals = [c for c in loop.children if c.info.kind == "loop-eval"]
    collects = [c for c in loop.children if c.info.kind == "loop-collect"]
    for i, (ev, col) in enumerate(zip(evals, collects, strict=True)):
        by_level = levels.get(ev.info.id, {})
        heldout = round(statistics.fmean(by_level.values()), 4) if by_level else None
        monitors = {"pass_at_1": heldout, "zero_variance_fraction": round(0.7 - 0.05 * i, 4), "kl_to_start": 0.01 * i}
        out.append(
            {
                "iteration": i,
                "checkpoint": f"checkpoints/iter-{i}",
                "heldout_accuracy": heldout,
                "accuracy_by_level": by_level,
                "eval_run": ev.info.id,
                "collect_run": col.info.id,
                "tool_calls_per_task": round(1.0 + 0.1 * i, 3),
                "tool_calls_per_solved_task": round(1.1 + 0.1 * i, 3),
                "tokens": 1000 * (ev.size + col.size),
                "seconds": round(0.5 * (ev.size + col.size), 1),
                "tool_calls": ev.size,
                "invalid_calls": i,
                "invalid_call_share": round(i / max(1, ev.size), 4),
                "data": {"collected": col.size, "kept": col.size // 4},
                "train": {"method": loop.info.config["algo"], "steps": 50, "rows": col.size // 4},
                "monitors": monitors,
                "accuracy_by_group": {},
            }
        )
    return out


def store_files(path: Path) -> list[Path]:
    return [p for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")) if p.exists()]


def build(path: Path, n: int, seed: int, n_runs: int, rebuild: bool) -> dict[str, Any]:
    """Build the store at `path` unless it is there already; returns what the build took (kept beside it)."""
    plans = plan_runs(n, seed, n_runs)
    big = big_run(plans)
    notes = path.with_name(path.name + ".build.json")
    if path.exists() and not rebuild:
        store = open_store(path)  # not read-only: a store from an older hone is migrated, as a user's would be
        try:
            count, found = store.count(), store.get_run(big.info.id)
        finally:
            store.close()
        if count == n and found is not None:
            print(f"store {path} holds {count} trajectories: build skipped", flush=True)
            return json.loads(notes.read_text()) if notes.exists() else {"seconds": None}
        raise SystemExit(f"{path} exists but is not this store (n={n}, seed={seed}); pass --rebuild or another path")
    for stale in [*store_files(path), notes]:
        stale.unlink(missing_ok=True)
    templates = Templates(seed)
    start = time.perf_counter()
    store = open_store(path)
    done = 0
    levels: dict[str, dict[str, float]] = {}  # run id -> accuracy by subset
    try:
        for plan in plans:
            spent = Ledger()
            cells: dict[str, list[int]] = {}  # subset -> [passed, graded]
            batch: list[Trajectory] = []
            for traj in trajectories(plan, templates, seed):
                spent.add(traj.usage)
                if traj.reward is not None:
                    cell = cells.setdefault(traj.subset or "all", [0, 0])
                    cell[0] += traj.passed
                    cell[1] += 1
                batch.append(traj)
                if len(batch) >= BATCH:
                    done += store.put_many(batch)
                    batch = []
            done += store.put_many(batch)
            info = plan.info
            info.updated_at = info.created_at + timedelta(seconds=plan.size * plan.dt_s + 5)
            levels[info.id] = {subset: round(won / graded, 4) for subset, (won, graded) in sorted(cells.items())}
            graded = sum(c[1] for c in cells.values())
            accuracy = round(sum(c[0] for c in cells.values()) / graded, 4) if graded else None
            if info.kind != "loop":
                info.summary = {"accuracy": accuracy, "n": plan.size, "ledger": spent.model_dump()}
                info.summary |= {"discarded": Ledger().model_dump(), "remaining": 0, "cut_short": 0, "stopped_by": None}
            store.save_run(info)
            if plan.size >= 5000:
                print(f"  {info.id}: {plan.size} trajectories ({time.perf_counter() - start:.1f} s)", flush=True)
        for plan in plans:  # a loop's summary, now that its children are stored
            if plan.info.kind == "loop":
                plan.info.summary = {"iterations": _iterations(plan, levels)}
                store.save_run(plan.info)
    finally:
        store.close()
    seconds = time.perf_counter() - start
    if done != n:
        raise SystemExit(f"stored {done} trajectories, expected {n}")
    report = {
        "seconds": round(seconds, 1),
        "trajectories_per_s": round(n / seconds),
        "templates": len(templates.cache),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    notes.write_text(json.dumps(report, indent=2) + "\n")
    print(f"built {path}: {n} trajectories, {len(plans)} runs in {seconds:.1f} s", flush=True)
    return report


# -- measuring ------------------------------------------------------------------------------


def serve(path: Path) -> None:
    """Child process: serve the viewer on a free port and print its URL (then run until killed)."""
    import uvicorn

    from hone.web import create_app

    app = create_app(store_url(path))
    # IPPROTO_TCP, as the sockets `uvicorn.run(host=..., port=...)` makes (what `hone view` does): asyncio
    # turns Nagle off only on sockets that say TCP, and with it on, a kept-alive connection waits ~40 ms
    # for a delayed ACK on every response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue until uvicorn accepts them
    print(f"serving at http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def start_server(path: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("serving at "):
        proc.kill()
        raise SystemExit(f"the viewer did not start (exit {proc.wait()}): {line!r}")
    return proc, line.rsplit(" ", 1)[1]


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pick_transcripts(path: Path, big_id: str, count: int, seed: int) -> list[str]:
    """Trajectory ids to open: the big run's longest (6 steps, token ids), and others from anywhere."""
    rng = random.Random(seed)
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        longest = [
            r[0]
            for r in conn.execute("SELECT id FROM trajectories WHERE run_id = ? AND n_steps = 6 LIMIT 200", (big_id,))
        ]
        top = conn.execute("SELECT max(rowid) FROM trajectories").fetchone()[0]
        anywhere: list[str] = []
        while len(anywhere) < count:
            row = conn.execute("SELECT id FROM trajectories WHERE rowid >= ? LIMIT 1", (rng.randrange(1, top + 1),))
            anywhere += [r[0] for r in row]
    ids = rng.sample(longest, min(len(longest), count // 3)) + anywhere
    return ids[:count]


def schema_version(path: Path) -> int | None:
    """The store's schema version (its indexes come with it)."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation (q in 0..1)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def measure(client: Any, pid: int, urls: Callable[[int], str], reps: int, warmup: int) -> dict[str, Any]:
    """Time `reps` GETs of `urls(i)` after `warmup` untimed ones; the first (cold) one is reported too."""
    times: list[float] = []
    sizes: list[int] = []
    first_ms = None
    cpu = 0.0
    for i in range(warmup + reps):
        url = urls(i)
        cpu0 = server_cpu_s(pid)
        start = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            return {"error": f"GET {url}: HTTP {response.status_code}: {response.text[:300]}"}
        if first_ms is None:
            first_ms = elapsed
        if i >= warmup:
            cpu += server_cpu_s(pid) - cpu0
            times.append(elapsed)
            sizes.append(len(response.content))
    return {
        "p50_ms": round(percentile(times, 0.5), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "max_ms": round(max(times), 1),
        "mean_ms": round(statistics.fmean(times), 1),
        "first_ms": round(first_ms or 0.0, 1),
        "server_cpu_ms": round(cpu * 1000 / reps, 1),
        "n": reps,
        "bytes": round(statistics.fmean(sizes)),
    }


def _always(url: str) -> Callable[[int], str]:
    return lambda _i: url


def endpoints(plans: list[RunPlan], transcripts: list[str], q: str) -> list[tuple[str, str, Callable[[int], str]]]:
    """(name, target kind, url of request i) for each endpoint timed."""
    big = big_run(plans).info.id
    evals = sorted((p for p in plans if p.info.kind == "eval"), key=lambda p: p.size)
    typical = evals[len(evals) // 2].info.id  # the median eval run

    def run(**params: Any) -> str:
        return "/run?" + urllib.parse.urlencode({"id": big, **params})

    fixed = {
        "runs list": ("list", "/"),
        "runs list ?env=gsm8k": ("list", "/?env=gsm8k"),
        "big run page": ("run", run()),
        f"big run ?q={q}": ("run", run(q=q)),
        "big run sort=reward desc": ("run", run(sort="reward", dir="desc")),
        f"big run ?q={q} sort=reward desc": ("run", run(q=q, sort="reward", dir="desc")),
        "big run ?q=(no match)": ("run", run(q="no-such-text-anywhere")),  # a search that reads every row
        "big run page=50": ("run", run(page=50)),
        "big run page=50 sort=reward desc": ("run", run(page=50, sort="reward", dir="desc")),
        "typical run page": ("run", "/run?" + urllib.parse.urlencode({"id": typical})),
    }
    out = [(name, kind, _always(url)) for name, (kind, url) in fixed.items()]
    out.append(
        (
            "transcript",
            "transcript",
            lambda i: "/t?" + urllib.parse.urlencode({"id": transcripts[i % len(transcripts)]}),
        )
    )
    return out


def run_benchmark(args: argparse.Namespace, path: Path, build_report: dict[str, Any]) -> int:
    import httpx

    try:
        import hone.web  # noqa: F401
    except ImportError as exc:
        print(f"cannot measure: {exc} (hone.web.create_app is needed)", file=sys.stderr)
        return 2
    plans = plan_runs(args.n, args.seed, args.runs)
    big = big_run(plans)
    transcripts = pick_transcripts(path, big.info.id, args.reps + args.warmup, args.seed)
    proc, url = start_server(path)
    results: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            for name, kind, urls in endpoints(plans, transcripts, args.q):
                found = measure(client, proc.pid, urls, args.reps, args.warmup)
                found |= {"target": kind, "url": urls(0)}
                if "p95_ms" in found:
                    limit = TARGETS_MS[kind]
                    found |= {"target_ms": limit, "p50_ok": found["p50_ms"] < limit, "p95_ok": found["p95_ms"] < limit}
                results[name] = found
                print(f"  {name}: {found.get('p50_ms', found.get('error'))} ms p50", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    size = sum(p.stat().st_size for p in store_files(path))
    report = {
        "benchmark": "view_latency",
        "what": "hone view (hone.web.create_app under uvicorn, one worker) over a generated store: GET latency, httpx",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "targets_ms": TARGETS_MS,
        "target_rule": "met when p95 < target (p50 reported too)",
        "target_met": all(r.get("p95_ok", False) for r in results.values()),
        "endpoints": results,
        "store": {
            "path": str(path),
            "bytes": size,
            "bytes_per_trajectory": round(size / args.n),
            "schema_version": schema_version(path),
            "trajectories": args.n,
            "runs": len(plans),
            "seed": args.seed,
            "big_run": {"id": big.info.id, "trajectories": big.size, "env": big.env.name},
            "search": args.q,
        },
        "build": build_report,
        "reps": args.reps,
        "warmup": args.warmup,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "load": os.getloadavg(),
        },
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    return 0 if report["target_met"] else 1


def print_table(report: dict[str, Any]) -> None:
    store = report["store"]
    print(
        f"\nstore: {store['trajectories']} trajectories, {store['runs']} runs, {store['bytes'] / 1e6:.0f} MB;", end=" "
    )
    print(f"big run {store['big_run']['trajectories']}; build {report['build'].get('seconds')} s")
    head = f"{'endpoint':38} {'target':>7} {'p50':>7} {'p95':>7} {'max':>7} {'cpu':>6} {'n':>4} {'KB':>6}  ok"
    print(head)
    print("-" * len(head))
    for name, r in report["endpoints"].items():
        if "error" in r:
            print(f"{name:38} {r['error']}")
            continue
        cells = [r["target_ms"], r["p50_ms"], r["p95_ms"], r["max_ms"]]
        line = f"{name:38} " + " ".join(f"{c:7.1f}" for c in cells)
        print(
            f"{line} {r['server_cpu_ms']:6.1f} {r['n']:4d} {r['bytes'] / 1024:6.1f}  {'yes' if r['p95_ok'] else 'NO'}"
        )
    print(f"target met (p95): {report['target_met']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, metavar="PATH", help="build the store at PATH (if needed) and stop")
    parser.add_argument("--store", type=Path, metavar="PATH", help="the store to measure (built if needed)")
    parser.add_argument("--n", type=int, default=100_000, help="trajectories in the store")
    parser.add_argument("--runs", type=int, default=200, help="runs in the store (about)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rebuild", action="store_true", help="replace a store at PATH that does not match")
    parser.add_argument("--reps", type=int, default=30, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per endpoint first")
    parser.add_argument("--q", default="Lisbon", help="the search text for the run page")
    parser.add_argument("-o", "--output", default=str(ROOT / "benchmarks/results/view_latency.json"))
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the child process that serves
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    path = args.build or args.store or DEFAULT_STORE / f"hone-{args.n}.db"
    if ROOT in path.resolve().parents:
        raise SystemExit(f"{path}: keep the generated store out of the repository (use /tmp)")
    report = build(path, args.n, args.seed, args.runs, args.rebuild)
    if args.build:
        return 0
    return run_benchmark(args, path, report)


if __name__ == "__main__":
    raise SystemExit(main())
