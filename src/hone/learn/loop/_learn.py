"""What the built-in learners share: loading and saving checkpoints, choosing train tasks, capping steps."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path
from typing import Any

from hone.core import ConfigError, Task
from hone.learn.train import TrainArgs

from ._learner import LearnContext

FOCUS_POOL = 4  # candidate tasks per task collected, when focusing


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


def load(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    tokenizer = check_vocabulary(path)
    return AutoModelForCausalLM.from_pretrained(path), tokenizer


def save(model: Any, tokenizer: Any, source: Path, target: Path) -> None:
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


def train_tasks(ctx: LearnContext, previous_run: str | None) -> list[Task]:
    """This step's `train_n` train tasks; with `focus`, spread over levels by the success rates of
    `previous_run` (the last collection), so tasks always or never solved stop taking the budget."""
    from ._focus import pick

    if not ctx.focus:
        return ctx.env.tasks(ctx.train_split, n=ctx.train_n, seed=ctx.task_seed)
    previous = list(ctx.store.query(run_id=previous_run)) if previous_run else []
    pool = ctx.env.tasks(ctx.train_split, n=ctx.train_n * FOCUS_POOL, seed=ctx.task_seed)
    tasks, counts = pick(pool, ctx.train_n, previous)
    if previous:
        ctx.log(f"iteration {ctx.iteration + 1}: focus on what can still be learned: {counts}")
    return tasks


def capped(args: TrainArgs, max_epochs: float, rows: int, data: dict[str, Any]) -> TrainArgs:
    """`args` with steps cut to `max_epochs` passes over `rows`: a few dozen kept samples seen 40 times
    overfit (benchmarks/RESULTS.md)."""
    cap = max(1, math.ceil(max_epochs * rows / args.batch_size))
    data["steps"] = min(args.steps, cap)
    return dataclasses.replace(args, steps=data["steps"])
