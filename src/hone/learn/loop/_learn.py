"""One learning step of the loop: collect with the current model, build data, train, save."""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from hone.core import ConfigError, Task, Trajectory
from hone.envs import Environment
from hone.learn.data import grpo_groups, preference_pairs, sft_data
from hone.learn.train import FitReport, TrainArgs, train_dpo, train_grpo, train_sft
from hone.store import RunInfo, TrajectoryStore

from ._config import LoopConfig
from ._monitor import monitors

FOCUS_POOL = 4  # candidate tasks per task collected, when focusing


class LoopView(Protocol):
    """What a learning step uses of the loop (`_loop.Loop`), declared here so this module need not import it."""

    config: LoopConfig
    loop_id: str
    env: Environment
    store: TrajectoryStore
    log: Callable[[str], None]

    def checkpoint(self, i: int) -> Path: ...

    def rollouts(
        self,
        ckpt: Path,
        run_id: str,
        split: str,
        n: int,
        k: int,
        temperature: float,
        seed: int,
        tasks: list[Task] | None = None,
    ) -> list[Trajectory]: ...


def check_vocabulary(path: Path) -> Any:
    """The tokenizer in `path`, after checking that the model there has an embedding for each of its ids.

    A tokenizer with more tokens than the model's vocabulary (a tokenizer from another model,
    or tokens added without resizing) would index past the embeddings in the middle of a run.
    """
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    vocab = AutoConfig.from_pretrained(path).vocab_size
    if vocab < len(tokenizer):
        raise ConfigError(
            f"loop: the tokenizer in {path} has {len(tokenizer)} tokens but the model only {vocab}; "
            "save the model's own tokenizer beside it (or resize its embeddings)"
        )
    return tokenizer


def _load(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    tokenizer = check_vocabulary(path)
    return AutoModelForCausalLM.from_pretrained(path), tokenizer


def _save(model: Any, tokenizer: Any, source: Path, target: Path) -> None:
    # Written beside the target and renamed, so a kill never leaves a checkpoint that looks whole.
    scratch = target.with_name(target.name + ".partial")
    if scratch.exists():
        shutil.rmtree(scratch)
    model.save_pretrained(scratch, safe_serialization=True)
    tokenizer.save_pretrained(scratch)
    generation = source / "generation_config.json"
    if generation.is_file():
        shutil.copy(generation, scratch / "generation_config.json")
    scratch.replace(target)


def learn_step(loop: LoopView, i: int, target: Path) -> tuple[dict[str, Any], int, list[Trajectory]]:
    """Train iteration `i`'s checkpoint into `target` with the loop's method.

    Returns the report fields (`collect_run`, `data`, `train`, `monitors`), the tokens the
    collection and training used, and the collected trajectories (for the KL monitor).
    """
    cfg = loop.config
    source = loop.checkpoint(i)
    args = TrainArgs(
        steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.learning_rate, seed=cfg.seed + i, progress=False
    )
    seed = cfg.seed + 1000 * (i + 1)  # new train tasks every iteration
    model, tokenizer = _load(source)
    data: dict[str, Any]
    report: FitReport
    if cfg.method == "grpo":
        run_id = f"{loop.loop_id}-grpo-{i}"
        loop.log(f"iteration {i + 1}: GRPO, {cfg.steps} steps of {cfg.batch_size} episodes from {source}")
        tasks = _collection_tasks(loop, i, seed)
        report, rollouts = train_grpo(
            model,
            tokenizer,
            loop.env,
            tasks,
            args,
            num_generations=cfg.k,
            temperature=cfg.temperature,
            limits=cfg.limits,
        )
        collected = _store_rollouts(loop, run_id, rollouts.trajectories)
        groups = grpo_groups(collected)
        data = {"episodes": len(collected), "zero_variance_fraction": round(groups.stats.zero_variance_fraction, 4)}
    else:
        run_id = f"{loop.loop_id}-collect-{i}"
        tasks = _collection_tasks(loop, i, seed)
        loop.log(f"iteration {i + 1}: collecting {len(tasks)} tasks x {cfg.k} samples at T={cfg.temperature}")
        collected = loop.rollouts(source, run_id, cfg.train_split, cfg.train_n, cfg.k, cfg.temperature, seed, tasks)
        data = {"collected": len(collected)}
        try:
            report = _offline(loop, i, model, tokenizer, collected, args, data)
        except ConfigError as exc:  # nothing to learn from: keep the model, say so, go on
            loop.log(f"[yellow]iteration {i + 1}: warning: {exc}; the model is carried over unchanged[/]")
            data["skipped"] = str(exc)
            report = FitReport(cfg.method, 0, 0)
    _save(model, tokenizer, source, target)
    train = {k: v for k, v in report.to_dict().items() if k != "metrics"}
    train["losses"] = [[s, round(v, 5)] for s, v in report.losses]
    tokens = int(report.tokens) + sum(t.usage.tokens for t in collected)
    fields = {"collect_run": run_id, "data": data, "train": train, "monitors": monitors(collected)}
    return fields, tokens, collected


def _collection_tasks(loop: LoopView, i: int, seed: int) -> list[Task]:
    """Iteration `i`'s train tasks: the first `train_n`, or with `focus` spread by the last collection's rates."""
    from ._focus import pick

    cfg = loop.config
    if not cfg.focus:
        return loop.env.tasks(cfg.train_split, n=cfg.train_n, seed=seed)
    previous: list[Trajectory] = []
    if i > 0:
        kind = "grpo" if cfg.method == "grpo" else "collect"
        previous = list(loop.store.query(run_id=f"{loop.loop_id}-{kind}-{i - 1}"))
    pool = loop.env.tasks(cfg.train_split, n=cfg.train_n * FOCUS_POOL, seed=seed)
    tasks, counts = pick(pool, cfg.train_n, previous)
    if previous:
        loop.log(f"iteration {i + 1}: focus on what can still be learned: {counts}")
    return tasks


def _offline(
    loop: LoopView,
    i: int,
    model: Any,
    tokenizer: Any,
    collected: list[Trajectory],
    args: TrainArgs,
    data: dict[str, Any],
) -> FitReport:
    """Expert iteration (SFT on verified successes) or DPO (best vs worst per task) on `collected`."""
    if loop.config.method == "expert-iteration":
        earlier = range(max(0, i - loop.config.replay), i)
        replayed = [t for j in earlier for t in loop.store.query(run_id=f"{loop.loop_id}-collect-{j}")]
        if replayed:
            data["replayed_collections"] = len(earlier)
        sft = sft_data([*collected, *replayed])  # de-duplicated: a success found again counts once
        data |= {"kept": len(sft.tokens) + len(sft.conversations), "token_exact": len(sft.tokens)}
        data["token_mismatches"] = len(sft.mismatches)
        args = _capped(loop, args, data["kept"], data)
        earlier_text = "1 earlier collection" if len(earlier) == 1 else f"{len(earlier)} earlier collections"
        source = f" from this and {earlier_text}" if replayed else ""
        loop.log(
            f"iteration {i + 1}: SFT on {data['kept']} successful trajectories{source} "
            f"({data['token_exact']} token-exact), {args.steps} steps"
        )
        return train_sft(model, tokenizer, sft, args)
    pairs = preference_pairs(collected, margin=loop.config.margin)
    data["pairs"] = len(pairs.records)
    args = _capped(loop, args, data["pairs"], data)
    loop.log(f"iteration {i + 1}: DPO on {data['pairs']} preference pairs, {args.steps} steps")
    return train_dpo(model, tokenizer, pairs, args, beta=loop.config.dpo_beta)


def _capped(loop: LoopView, args: TrainArgs, rows: int, data: dict[str, Any]) -> TrainArgs:
    """`args` with steps cut to `max_epochs` passes over `rows`: a few dozen kept samples seen 40 times
    overfit (benchmarks/RESULTS.md)."""
    cap = max(1, math.ceil(loop.config.max_epochs * rows / args.batch_size))
    data["steps"] = min(args.steps, cap)
    return dataclasses.replace(args, steps=data["steps"])


def _store_rollouts(loop: LoopView, run_id: str, trajectories: list[Trajectory]) -> list[Trajectory]:
    run = RunInfo(
        id=run_id, kind="grpo", parent_id=loop.loop_id, env=loop.config.env, model=loop.config.model, status="done"
    )
    loop.store.save_run(run)
    stored = [t.model_copy(update={"run_id": run_id, "sample": n}) for n, t in enumerate(trajectories)]
    loop.store.put_many(stored)
    return stored
