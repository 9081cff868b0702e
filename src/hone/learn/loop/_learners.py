"""The built-in learners: expert iteration, DPO and GRPO, each with its own options model.

Their fields named like `LoopConfig`'s take the loop's values (`hone loop --steps`, `--lr`,
...); `--set KEY=VALUE` sets any field, `--set trl.NAME=VALUE` a field of TRL's config
(`trl.loss_type=dr_grpo`), checked against it when training starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from hone.core import ConfigError
from hone.learn.data import grpo_groups, preference_pairs, sft_data
from hone.learn.train import (
    FitReport,
    GenerationPool,
    TrainArgs,
    check_trl_fields,
    train_dpo,
    train_grpo,
    train_sft,
)
from hone.rollout import parse_executor

from ._config import DEFAULT_LR
from ._focus import balanced
from ._learn import capped, load, train_tasks
from ._learner import LearnContext, LearnRecord


class LearnerConfig(BaseModel):
    """What every built-in learner takes: sampling, optimisation and TRL pass-through."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=4, ge=1, description="Samples per train task (the group size for GRPO and pairs).")
    temperature: float = Field(default=0.5, ge=0, description="Sampling temperature while collecting.")
    steps: int = Field(default=120, ge=1, description="Optimizer steps per iteration.")
    batch_size: int = Field(default=8, ge=1, description="Sequences per step (GRPO: episodes per step).")
    lr: float = Field(default=DEFAULT_LR["expert-iteration"], gt=0, description="Learning rate.")
    trl: dict[str, Any] = Field(
        default_factory=dict, description="Further fields of TRL's config (`loss_type`, `scale_rewards`, ...)."
    )

    def train_args(self, ctx: LearnContext) -> TrainArgs:
        return TrainArgs(
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, seed=ctx.seed, progress=False, trl=self.trl
        )


class ExpertIterationConfig(LearnerConfig):
    max_epochs: float = Field(default=4.0, gt=0, description="At most this many passes over the kept data.")
    replay: int = Field(default=6, ge=0, description="Also train on the successes of this many earlier collections.")
    balance: bool = Field(
        default=False,
        description="Keep at most the median count of successes per subset (level), so the easiest level "
        "cannot flood the kept data.",
    )


class DPOConfig(LearnerConfig):
    lr: float = Field(default=DEFAULT_LR["dpo"], gt=0, description="Learning rate.")
    max_epochs: float = Field(default=4.0, gt=0, description="At most this many passes over the pairs.")
    dpo_beta: float = Field(default=0.1, gt=0, description="DPO's beta (strength of the pull to the reference).")
    margin: float = Field(default=0.5, ge=0, description="Minimum reward gap of a DPO pair.")


class GRPOConfig(LearnerConfig):
    lr: float = Field(default=DEFAULT_LR["grpo"], gt=0, description="Learning rate.")
    max_lag: int = Field(
        default=1,
        ge=0,
        description="With a Ray executor: optimizer steps generation may run ahead of training (0: none; "
        "a batch older than this when wanted is generated again).",
    )


def _check_trl(name: str, config: LearnerConfig) -> None:
    """A TRL field that does not exist is refused when the loop starts, not after its first evaluation."""
    if config.trl:
        try:
            import trl
        except ImportError:
            raise ConfigError("trl.* options need trl: pip install 'hone[train]'") from None
        check_trl_fields(getattr(trl, name), config.trl)


def _offline_record(ctx: LearnContext, model: Any, tokenizer: Any, k: int, temperature: float) -> LearnRecord:
    """Collect `k` samples of this step's train tasks at `temperature` (the start of expert iteration and DPO)."""
    tasks = train_tasks(ctx, ctx.run_id("collect", ctx.iteration - 1) if ctx.iteration > 0 else None)
    ctx.log(f"iteration {ctx.iteration + 1}: collecting {len(tasks)} tasks x {k} samples at T={temperature}")
    collected = ctx.collect(tasks, k, temperature)
    return LearnRecord(
        model, tokenizer, FitReport("", 0, 0), ctx.collect_run, data={"collected": len(collected)}, collected=collected
    )


class ExpertIteration:
    """SFT on the verified successes of this step's collection and of up to `replay` earlier ones."""

    Config: ClassVar[type[ExpertIterationConfig]] = ExpertIterationConfig

    def __init__(self, config: ExpertIterationConfig) -> None:
        self.config = config
        _check_trl("SFTConfig", config)

    def learn(self, ctx: LearnContext) -> LearnRecord:
        cfg, i = self.config, ctx.iteration
        model, tokenizer = load(ctx.checkpoint)
        record = _offline_record(ctx, model, tokenizer, cfg.k, cfg.temperature)
        data = record.data

        def train() -> FitReport:
            earlier = range(max(0, i - cfg.replay), i)
            replayed = [t for j in earlier for t in ctx.store.query(run_id=ctx.run_id("collect", j))]
            if replayed:
                data["replayed_collections"] = len(earlier)
            pool = [*record.collected, *replayed]
            if cfg.balance:
                pool, dropped = balanced(pool, ctx.seed + i)
                data["balance_dropped"] = dropped
            sft = sft_data(pool)  # de-duplicated: a success found again counts once
            data.update(kept=len(sft.tokens) + len(sft.conversations), token_exact=len(sft.tokens))
            data["token_mismatches"] = len(sft.mismatches)
            args = capped(cfg.train_args(ctx), cfg.max_epochs, data["kept"], data)
            earlier_text = "1 earlier collection" if len(earlier) == 1 else f"{len(earlier)} earlier collections"
            source = f" from this and {earlier_text}" if replayed else ""
            ctx.log(
                f"iteration {i + 1}: SFT on {data['kept']} successful trajectories{source} "
                f"({data['token_exact']} token-exact), {args.steps} steps"
            )
            return train_sft(model, tokenizer, sft, args)

        record.fit = _or_skip(ctx, data, "expert-iteration", train)
        return record


class DPO:
    """DPO on best-versus-worst pairs (reward gap at least `margin`) of this step's collection."""

    Config: ClassVar[type[DPOConfig]] = DPOConfig

    def __init__(self, config: DPOConfig) -> None:
        self.config = config
        _check_trl("DPOConfig", config)

    def learn(self, ctx: LearnContext) -> LearnRecord:
        cfg = self.config
        model, tokenizer = load(ctx.checkpoint)
        record = _offline_record(ctx, model, tokenizer, cfg.k, cfg.temperature)

        def train() -> FitReport:
            pairs = preference_pairs(record.collected, margin=cfg.margin)
            record.data["pairs"] = len(pairs.records)
            args = capped(cfg.train_args(ctx), cfg.max_epochs, record.data["pairs"], record.data)
            pairs_n, step_n = record.data["pairs"], args.steps
            ctx.log(f"iteration {ctx.iteration + 1}: DPO on {pairs_n} preference pairs, {step_n} steps")
            return train_dpo(model, tokenizer, pairs, args, beta=cfg.dpo_beta)

        record.fit = _or_skip(ctx, record.data, "dpo", train)
        return record


def _or_skip(ctx: LearnContext, data: dict[str, Any], method: str, train: Callable[[], FitReport]) -> FitReport:
    """`train()`, or with nothing to learn from (a `ConfigError`) a warning and the model carried over."""
    try:
        report = train()
    except ConfigError as exc:
        ctx.log(f"[yellow]iteration {ctx.iteration + 1}: warning: {exc}; the model is carried over unchanged[/]")
        data["skipped"] = str(exc)
        return FitReport(method, 0, 0)
    return report


class GRPO:
    """GRPO online: hone episodes as TRL's rollouts, stored as the loop's child run of kind `grpo`."""

    Config: ClassVar[type[GRPOConfig]] = GRPOConfig

    def __init__(self, config: GRPOConfig) -> None:
        self.config = config
        _check_trl("GRPOConfig", config)

    def learn(self, ctx: LearnContext) -> LearnRecord:
        cfg = self.config
        model, tokenizer = load(ctx.checkpoint)
        run_id = ctx.run_id("grpo")
        ctx.log(
            f"iteration {ctx.iteration + 1}: GRPO, {cfg.steps} steps of {cfg.batch_size} episodes from {ctx.checkpoint}"
        )
        tasks = train_tasks(ctx, ctx.run_id("grpo", ctx.iteration - 1) if ctx.iteration > 0 else None)
        pool = None
        kind, address = parse_executor(ctx.executor)
        if kind == "ray":  # generation on Ray workers, training here
            pool = GenerationPool(
                ctx.env_spec, ctx.checkpoint, workers=ctx.workers, max_lag=cfg.max_lag, address=address
            )
            ctx.log(f"iteration {ctx.iteration + 1}: generating on {ctx.workers} Ray workers, lag <= {cfg.max_lag}")
        report, rollouts = train_grpo(
            model,
            tokenizer,
            ctx.env,
            tasks,
            cfg.train_args(ctx),
            num_generations=cfg.k,
            temperature=cfg.temperature,
            limits=ctx.limits,
            reward=ctx.reward,
            pool=pool,
        )
        collected = ctx.rewarded(ctx.store_run(run_id, "grpo", rollouts.trajectories))
        groups = grpo_groups(collected)
        data: dict[str, Any] = {
            "episodes": len(collected),
            "zero_variance_fraction": round(groups.stats.zero_variance_fraction, 4),
            "episodes_cut": rollouts.cut,  # trained only up to a turn that did not extend the ones before
        }
        if pool is not None:
            data["policy_lag"] = {
                "bound": cfg.max_lag,
                "per_step": rollouts.lags,
                "max": max(rollouts.lags, default=0),
                "regenerated": rollouts.regenerated,
            }
        return LearnRecord(model, tokenizer, report, run_id, data=data, collected=collected)
