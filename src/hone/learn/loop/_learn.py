"""One learning step of the loop: collect with the current model, build data, train, save."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hone.core import ConfigError, Trajectory
from hone.learn.data import grpo_groups, preference_pairs, sft_data
from hone.learn.train import FitReport, TrainArgs, train_dpo, train_grpo, train_sft

from ._monitor import monitors

if TYPE_CHECKING:
    from ._loop import Loop


def _load(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if model.config.vocab_size < len(tokenizer):
        raise ConfigError(
            f"loop: the tokenizer in {path} has {len(tokenizer)} tokens, the model {model.config.vocab_size}"
        )
    return model, tokenizer


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


def learn_step(loop: Loop, i: int, target: Path) -> tuple[dict[str, Any], int, list[Trajectory]]:
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
        tasks = loop.env.tasks(cfg.train_split, n=cfg.train_n, seed=seed)
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
        loop.log(f"iteration {i + 1}: collecting {cfg.train_n} tasks x {cfg.k} samples at T={cfg.temperature}")
        collected = loop.rollouts(source, run_id, cfg.train_split, cfg.train_n, cfg.k, cfg.temperature, seed)
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


def _offline(
    loop: Loop, i: int, model: Any, tokenizer: Any, collected: list[Trajectory], args: TrainArgs, data: dict[str, Any]
) -> FitReport:
    """Expert iteration (SFT on verified successes) or DPO (best vs worst per task) on `collected`."""
    if loop.config.method == "expert-iteration":
        sft = sft_data(collected)
        data |= {"kept": len(sft.tokens) + len(sft.conversations), "token_exact": len(sft.tokens)}
        data["token_mismatches"] = len(sft.mismatches)
        loop.log(
            f"iteration {i + 1}: SFT on {data['kept']} successful trajectories ({data['token_exact']} token-exact)"
        )
        return train_sft(model, tokenizer, sft, args)
    pairs = preference_pairs(collected, margin=loop.config.margin)
    data["pairs"] = len(pairs.records)
    loop.log(f"iteration {i + 1}: DPO on {data['pairs']} preference pairs")
    return train_dpo(model, tokenizer, pairs, args, beta=loop.config.dpo_beta)


def _store_rollouts(loop: Loop, run_id: str, trajectories: list[Trajectory]) -> list[Trajectory]:
    from hone.store import RunInfo

    loop.store.save_run(RunInfo(id=run_id, kind="grpo", env=loop.config.env, model=loop.config.model, status="done"))
    stored = [t.model_copy(update={"run_id": run_id, "sample": n}) for n, t in enumerate(trajectories)]
    loop.store.put_many(stored)
    return stored
