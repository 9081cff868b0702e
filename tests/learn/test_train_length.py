"""Conversations longer than `max_length`: counted and left out before TRL would cut them unseen,
in `train_sft` (the loop's learners) and in the micro trainers' `_sft` (micro, micro-tools)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

pytest.importorskip("trl")

from hone.core import ConfigError
from hone.learn.data import MASK_COLUMN
from hone.learn.micro import _train as micro
from hone.learn.micro_tools import build_tokenizer, new_micro_tools_model, render
from hone.learn.train import TrainArgs, token_rows, train_sft, within_length

TINY = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
}
LOOKUP = {
    "type": "function",
    "function": {
        "name": "order_lookup",
        "description": "Find an order by its id.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "The order id, like A-12."}},
            "required": ["order_id"],
        },
    },
}


def conversation(i: int, padding: int = 0) -> dict[str, Any]:
    """A solved tool conversation (TRL's format, tools as JSON text as `sft_dataset` stores them);
    `padding` words of request make it long, so its assistant turns come late."""
    call = {
        "id": "c0",
        "type": "function",
        "function": {"name": "order_lookup", "arguments": f'{{"order_id": "A-{i}"}}'},
    }
    request = f"Where is my order A-{i}? " + "please " * padding
    messages = [
        {"role": "system", "content": "Use the tools."},
        {"role": "user", "content": request},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "c0"},
        {"role": "assistant", "content": f"Answer: order A-{i} has shipped."},
    ]
    return {"messages": messages, "tools": json.dumps([LOOKUP])}


@pytest.fixture(scope="module")
def tok() -> Any:
    corpus = [render(conversation(i)["messages"], [LOOKUP]) for i in range(40)]
    return build_tokenizer(corpus, 320)


def test_within_length_keeps_rows_whose_trained_tokens_fit(caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        {"input_ids": [1] * 8, MASK_COLUMN: [0, 0, 1, 1, 0, 0, 0, 0]},  # long, but its loss ends at 3: kept
        {"input_ids": [1] * 6, MASK_COLUMN: [0, 0, 0, 0, 0, 1]},  # its last trained token is at 5: cut at 5
        {"input_ids": [1] * 5, MASK_COLUMN: [0, 1, 1, 1, 1]},  # exactly fits
    ]
    with caplog.at_level(logging.WARNING):
        kept, dropped = within_length(rows, 5, "test SFT")
    assert kept == [rows[0], rows[2]] and dropped == 1
    assert "test SFT: dropped 1 of 3 conversations whose assistant tokens pass max_length=5" in caplog.text
    with pytest.raises(ConfigError, match=r"^test SFT: all 3 conversations have assistant tokens past max_length=2 "):
        within_length(rows, 2, "test SFT")


def test_token_rows_tokenize_as_trl_does(tok: Any) -> None:
    """`_sft` hands TRL rows it tokenized itself (to see what a cut would lose): they must be the
    tokens and labels TRL makes from the same conversations."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    dataset = Dataset.from_list([conversation(i, padding=i) for i in range(4)])
    config = SFTConfig(output_dir="unused", assistant_only_loss=True, max_length=None, report_to=[], use_cpu=True)
    trainer = SFTTrainer(
        model=new_micro_tools_model(tok, **TINY), args=config, train_dataset=dataset, processing_class=tok
    )
    theirs = trainer.train_dataset
    ours = token_rows(dataset, tok)
    assert [r["input_ids"] for r in ours] == theirs["input_ids"]
    labels = [[t if m else -100 for t, m in zip(r["input_ids"], r[MASK_COLUMN], strict=True)] for r in ours]
    assert labels == theirs["labels"]


def test_micro_sft_drops_and_counts_conversations_cut_by_max_length(tok: Any, caplog: pytest.LogCaptureFixture) -> None:
    from datasets import Dataset

    short = [conversation(i) for i in range(3)]
    long = [conversation(9, padding=120), conversation(8, padding=150)]
    lengths = [len(r["input_ids"]) for r in token_rows(Dataset.from_list(short + long), tok)]
    limit = max(lengths[:3]) + 2
    assert min(lengths[3:]) > limit + 40  # the long ones' replies lie past the cut
    stats: dict[str, Any] = {}
    model = new_micro_tools_model(tok, **TINY)
    options = {"max_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "max_length": limit}
    with caplog.at_level(logging.WARNING):
        losses, _ = micro._sft(model, tok, Dataset.from_list(short + long), False, stats=stats, **options)
    assert stats == {"dropped_too_long": 2} and losses
    assert f"micro SFT: dropped 2 of 5 conversations whose assistant tokens pass max_length={limit}" in caplog.text
    with pytest.raises(ConfigError, match=r"micro SFT: all 2 conversations have assistant tokens past max_length"):
        micro._sft(model, tok, Dataset.from_list(long), False, **options)


def test_train_sft_reports_the_dropped_count(tok: Any) -> None:
    model = new_micro_tools_model(tok, **TINY)
    records = [conversation(i) for i in range(3)] + [conversation(7, padding=200)]
    records = [{**r, "tools": json.loads(r["tools"])} for r in records]  # Records keep tools as lists
    limit = max(len(r["input_ids"]) for r in token_rows(records[:3], tok)) + 2
    args = TrainArgs(steps=1, batch_size=2, progress=False, max_length=limit)
    report = train_sft(model, tok, records, args)
    assert report.dropped == 1 and report.rows == 3
    assert report.to_dict()["dropped"] == 1
    with pytest.raises(ConfigError, match=f"all 1 conversations have assistant tokens past max_length={limit}"):
        train_sft(model, tok, records[3:], args)
