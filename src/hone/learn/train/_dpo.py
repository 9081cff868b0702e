"""Preference optimisation through TRL's `DPOTrainer` on hone preference pairs."""

from __future__ import annotations

import copy
import tempfile
from typing import Any

from hone.core import ConfigError
from hone.learn.data import PairData, Records

from ._common import FitReport, TrainArgs, fit, quiet_datasets, trl_config


def train_dpo(
    model: Any,
    tokenizer: Any,
    pairs: PairData | Records,
    args: TrainArgs | None = None,
    *,
    beta: float = 0.1,
    ref_model: Any | None = None,
) -> FitReport:
    """Train `model` in place with DPO on `pairs` (`preference_pairs` or `step_pairs`).

    The reference is a frozen copy of `model` as it is now unless `ref_model` is given.
    Rows are TRL's conversational preference format (`prompt`, `chosen`, `rejected`,
    `tools`); TRL renders them with the tokenizer's chat template.
    """
    from trl import DPOConfig, DPOTrainer  # type: ignore[attr-defined]

    records = pairs.records if isinstance(pairs, PairData) else pairs
    if not len(records):
        raise ConfigError("DPO: no preference pairs to train on; collect several samples per task first")
    if beta <= 0:
        raise ConfigError(f"DPO: beta={beta} must be positive")
    args = args or TrainArgs()
    reference = ref_model if ref_model is not None else copy.deepcopy(model).eval()
    with tempfile.TemporaryDirectory(prefix="hone-dpo-") as scratch, quiet_datasets(args.progress):
        config = trl_config(DPOConfig, args, output_dir=scratch, beta=beta, max_length=args.max_length)
        trainer = DPOTrainer(
            model=model,
            ref_model=reference,
            args=config,
            train_dataset=records.to_dataset(),
            processing_class=tokenizer,
        )
        return fit(trainer, args, rows=len(records))
