"""Supervised fine-tuning through TRL's `SFTTrainer` on hone records (token-exact or conversational)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from typing import Any

from hone.core import ConfigError
from hone.learn.data import MASK_COLUMN, Records, SFTData

from ._common import FitReport, TrainArgs, fit, quiet_datasets, trl_config, within_length


def token_rows(data: SFTData | Records | Iterable[dict[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
    """Every record as `{"input_ids", "assistant_masks"}`.

    Token records pass through (they are exactly what the model generated). Conversational
    records are rendered with the tokenizer's chat template, whose `{% generation %}` spans
    give the assistant mask; a template without them cannot say which tokens are the
    model's, and is refused rather than trained on every token.
    """
    records = [*data.tokens, *data.conversations] if isinstance(data, SFTData) else list(data)
    rows: list[dict[str, Any]] = []
    for record in records:
        if "input_ids" in record:
            rows.append({"input_ids": list(record["input_ids"]), MASK_COLUMN: list(record[MASK_COLUMN])})
            continue
        tools = record.get("tools")
        tools = json.loads(tools) if isinstance(tools, str) else tools  # Arrow rows keep tools as JSON text
        out = tokenizer.apply_chat_template(
            record["messages"],
            tools=tools or None,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        mask = list(out["assistant_masks"])
        if not any(mask):
            raise ConfigError(
                "SFT: the chat template marks no assistant tokens ({% generation %} spans missing); "
                "use token-exact trajectories (collected with token ids) or a template with generation markers"
            )
        rows.append({"input_ids": list(out["input_ids"]), MASK_COLUMN: mask})
    return rows


def train_sft(
    model: Any,
    tokenizer: Any,
    data: SFTData | Records | Iterable[dict[str, Any]],
    args: TrainArgs | None = None,
) -> FitReport:
    """Fine-tune `model` in place on `data` with TRL's `SFTTrainer`, loss on the model's tokens only.

    `data` is an `SFTData` (from `hone.learn.data.sft_data`), `Records`, or plain records;
    everything is trained as `input_ids` + `assistant_masks`, so token-exact trajectories
    are trained on exactly the tokens that were sampled. A record whose assistant tokens pass
    `args.max_length` is left out and counted in `FitReport.dropped` (`within_length`).
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    args = args or TrainArgs()
    rows = token_rows(data, tokenizer)
    if not rows:
        raise ConfigError("SFT: no records to train on; collect successful trajectories first")
    rows, dropped = within_length(rows, args.max_length)
    dataset = Dataset.from_list(rows)
    with tempfile.TemporaryDirectory(prefix="hone-sft-") as scratch, quiet_datasets(args.progress):
        config = trl_config(
            SFTConfig,
            args,
            output_dir=scratch,
            assistant_only_loss=False,  # the mask column already selects the model's tokens
            packing=False,
            max_length=args.max_length,
            train_sampling_strategy="group_by_length",
        )
        trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
        report = fit(trainer, args, rows=len(rows))
    report.dropped = dropped
    return report
