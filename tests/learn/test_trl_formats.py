"""TRL 1.16's trainers take hone.learn.data's datasets as they are (dataset preparation only, no training)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")

from _learn_factory import make, tool_turn, with_token_ids

from hone.core import Message, Trajectory
from hone.learn.data import MASK_COLUMN, kto_data, preference_pairs, sft_data
from hone.learn.micro import build_tokenizer, new_micro_model

TINY = {"num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64}


@pytest.fixture(scope="module")
def tok() -> Any:
    return build_tokenizer()


@pytest.fixture(scope="module")
def model(tok: Any) -> Any:
    return new_micro_model(tok, **TINY)


def _answer(text: str) -> list[tuple[Message, list[Message]]]:
    return [(tool_turn(), [Message.tool("4", "c0", name="calc")]), (Message.assistant(text), [])]


def _groups() -> list[Trajectory]:
    return [make("t0", 0), make("t0", 1, passed=False, turns=_answer("5"))]


def test_sft_trainer_turns_assistant_masks_into_labels(tok: Any, model: Any, tmp_path: Path) -> None:
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    record = sft_data([with_token_ids(tok, make())]).tokens
    args = SFTConfig(output_dir=str(tmp_path), report_to=[], max_length=None, use_cpu=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=record.to_dataset(), processing_class=tok)
    prepared: Any = trainer.train_dataset
    row = prepared[0]
    assert row["input_ids"] == record[0]["input_ids"]
    assert [int(label != -100) for label in row["labels"]] == record[0][MASK_COLUMN]


def test_dpo_and_kto_trainers_tokenize_the_records(tok: Any, model: Any, tmp_path: Path) -> None:
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer  # type: ignore[attr-defined]

    pairs = preference_pairs(_groups()).records.to_dataset()
    dpo_args = DPOConfig(output_dir=str(tmp_path / "dpo"), report_to=[], max_length=None, use_cpu=True)
    dpo = DPOTrainer(
        model=model, ref_model=copy.deepcopy(model), args=dpo_args, train_dataset=pairs, processing_class=tok
    )
    dpo_data: Any = dpo.train_dataset
    row = dpo_data[0]
    assert tok.decode(row["prompt_ids"]).endswith("t0: what is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert "<tools>calc(x)</tools>" in tok.decode(row["prompt_ids"])  # the JSON `tools` column was decoded
    assert tok.decode(row["chosen_ids"]).endswith("<|im_start|>assistant\nThe answer is 4.<|im_end|>\n")
    assert tok.decode(row["rejected_ids"]).endswith("<|im_start|>assistant\n5<|im_end|>\n")

    unpaired = kto_data(_groups()).to_dataset()
    kto_args = KTOConfig(
        output_dir=str(tmp_path / "kto"), report_to=[], max_length=None, use_cpu=True, per_device_train_batch_size=2
    )
    kto = KTOTrainer(
        model=model, ref_model=copy.deepcopy(model), args=kto_args, train_dataset=unpaired, processing_class=tok
    )
    prepared_kto: Any = kto.train_dataset
    assert prepared_kto["label"] == [True, False]
    assert tok.decode(prepared_kto[1]["completion_ids"]).endswith("assistant\n5<|im_end|>\n")
