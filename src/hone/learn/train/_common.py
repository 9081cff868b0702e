"""Arguments and results shared by hone's TRL trainers (SFT, DPO, GRPO)."""

from __future__ import annotations

import dataclasses
import logging
import time
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from hone.core import ConfigError
from hone.learn.data import MASK_COLUMN

log = logging.getLogger(__name__)


@dataclass
class TrainArgs:
    """Optimisation settings shared by `train_sft`, `train_dpo` and `train_grpo`.

    Defaults suit hone's micro model on CPU; for a real model on CUDA set `bf16=True` and a
    smaller `lr`.
    """

    steps: int = 100  # optimizer steps
    batch_size: int = 8  # sequences per step (GRPO: completions per step)
    lr: float = 5e-4
    warmup_ratio: float = 0.05
    schedule: str = "constant_with_warmup"  # an iteration of a loop is one slice of a longer run
    beta2: float = 0.95  # AdamW; small models learn to copy with 0.95 and not with 0.999
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 1024
    seed: int = 0
    bf16: bool = False
    use_cpu: bool | None = None  # None: CUDA when available
    logging_steps: int = 10
    progress: bool = True
    trl: dict[str, Any] = field(default_factory=dict)  # further fields of TRL's config (`loss_type`, ...)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"train: steps={self.steps} must be at least 1")
        if self.batch_size < 1:
            raise ConfigError(f"train: batch_size={self.batch_size} must be at least 1")
        if self.lr <= 0:
            raise ConfigError(f"train: lr={self.lr} must be positive")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"train: warmup_ratio={self.warmup_ratio} must be in [0, 1)")

    def trainer_kwargs(self) -> dict[str, Any]:
        """The `transformers.TrainingArguments` fields every hone trainer sets the same way."""
        import torch

        use_cpu = self.use_cpu if self.use_cpu is not None else not torch.cuda.is_available()
        return {
            "max_steps": self.steps,
            "per_device_train_batch_size": self.batch_size,
            "learning_rate": self.lr,
            "lr_scheduler_type": self.schedule,
            "warmup_steps": int(self.warmup_ratio * self.steps),  # 0 for short calls: a warmup step trains nothing
            "adam_beta2": self.beta2,
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "use_cpu": use_cpu,
            "bf16": self.bf16,
            "activation_checkpointing": False,  # only costs time at hone's sizes
            "save_strategy": "no",
            "report_to": [],
            "logging_steps": self.logging_steps,
            "logging_first_step": True,
            "disable_tqdm": not self.progress,
            "dataloader_num_workers": 0,
            "seed": self.seed,
            "data_seed": self.seed,
        }


def trl_config(config_class: Any, args: TrainArgs, **fields: Any) -> Any:
    """`config_class` (TRL's `SFTConfig`, `DPOConfig`, `GRPOConfig`) from `args`, hone's `fields` and
    `args.trl`, the pass-through of TRL's further fields (`loss_type="dr_grpo"`, `scale_rewards="none"`).

    A name TRL's config lacks, or one hone sets from its own arguments, is a one-line `ConfigError`;
    text values (from the command line) become the field's type where it is a bool or a number.
    """
    known = check_trl_fields(config_class, args.trl)
    base = {**args.trainer_kwargs(), **fields}
    what = config_class.__name__
    extra: dict[str, Any] = {}
    for name, value in args.trl.items():
        if name in base:
            raise ConfigError(f"train: {what}.{name} is set by hone from its own options; set it there")
        extra[name] = _typed(value, known[name].type, f"{what}.{name}")
    return config_class(**base, **extra)


def check_trl_fields(config_class: Any, names: Iterable[str]) -> dict[str, dataclasses.Field[Any]]:
    """`config_class`'s fields by name, after checking each of `names` is one (a one-line `ConfigError`)."""
    known = {f.name: f for f in dataclasses.fields(config_class)}
    for name in names:
        if name not in known:
            what = config_class.__name__
            raise ConfigError(f"train: {what} has no field {name!r} (see TRL's documentation of {what})")
    return known


def _typed(value: Any, hint: Any, what: str) -> Any:
    """A command-line text as the bool, int or float the TRL field declares; anything else unchanged."""
    kinds = typing.get_args(hint) or (hint,)
    if not isinstance(value, str) or str in kinds:
        return value
    try:
        if bool in kinds:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if int in kinds:
            return int(value)
        if float in kinds:
            return float(value)
    except ValueError:
        raise ConfigError(f"train: {what}={value!r} is not a {' or '.join(k.__name__ for k in kinds)}") from None
    return value


def within_length(rows: list[dict[str, Any]], max_length: int, what: str = "SFT") -> tuple[list[dict[str, Any]], int]:
    """The token rows (`input_ids`, `assistant_masks`) whose every trained token fits in `max_length`,
    and how many were dropped.

    TRL cuts a longer sequence at `max_length` without a word, so a conversation's assistant tokens
    past the cut would be lost; such a conversation is dropped whole and counted, with one log line.
    A row longer than `max_length` whose tokens past it are all masked (a trailing newline) is kept.
    Every row dropped is a one-line `ConfigError` naming the longest and the limit.
    """
    kept = [row for row in rows if _last_trained(row) < max_length]
    dropped = len(rows) - len(kept)
    if rows and not kept:
        longest = max(len(row["input_ids"]) for row in rows)
        raise ConfigError(
            f"{what}: all {len(rows)} conversations have assistant tokens past max_length={max_length} "
            f"(the longest is {longest} tokens); raise max_length or shorten the conversations"
        )
    if dropped:
        log.warning(
            "%s: dropped %d of %d conversations whose assistant tokens pass max_length=%d (TRL would cut them)",
            what,
            dropped,
            len(rows),
            max_length,
        )
    return kept, dropped


def _last_trained(row: dict[str, Any]) -> int:
    """The position of the row's last token in the loss (its last token when it has no mask)."""
    mask = row.get(MASK_COLUMN)
    if mask is None:
        return len(row["input_ids"]) - 1
    return max((i for i, bit in enumerate(mask) if bit), default=-1)


@dataclass
class FitReport:
    """What one training call did: steps, the loss curve, tokens and time; `dropped` counts the
    conversations left out because their assistant tokens passed `max_length` (`within_length`)."""

    method: str
    steps: int
    rows: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    tokens: float = 0.0
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)  # last logged value of each trainer metric
    dropped: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tokens_per_second": round(self.tokens_per_second, 1)}


@contextmanager
def quiet_datasets(show: bool) -> Iterator[None]:
    """Hide `datasets`' progress bars (TRL's tokenizing, labelling) unless `show`; restores the setting."""
    import datasets

    were_off = datasets.are_progress_bars_disabled()
    if not show:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not show and not were_off:
            datasets.enable_progress_bars()


def fit(trainer: Any, args: TrainArgs, *, rows: int) -> FitReport:
    """Run `trainer.train()` quietly unless `args.progress`, and collect a `FitReport`.

    Build the trainer inside `quiet_datasets(args.progress)` too: TRL prepares the dataset
    in its constructor.
    """
    from transformers import PrinterCallback

    if not args.progress:
        trainer.remove_callback(PrinterCallback)  # it prints every log line when tqdm is off
    started = time.perf_counter()
    with quiet_datasets(args.progress):
        trainer.train()
    seconds = time.perf_counter() - started
    history = trainer.state.log_history
    losses = [(int(h["step"]), float(h["loss"])) for h in history if "loss" in h and "step" in h]
    tokens = max((float(h["num_tokens"]) for h in history if "num_tokens" in h), default=0.0)
    metrics: dict[str, float] = {}
    for h in history:
        metrics.update({k: float(v) for k, v in h.items() if isinstance(v, int | float) and k != "step"})
    method = type(trainer).__name__.removesuffix("Trainer").lower()
    return FitReport(method, trainer.state.global_step, rows, losses, tokens, seconds, metrics)
