"""`Records`: rows in one of TRL's dataset formats, exported as a `datasets.Dataset` or Parquet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hone.core import ConfigError, StoreError

if TYPE_CHECKING:
    from datasets import Dataset

RecordFormat = Literal["conversational", "tokens", "preference", "unpaired_preference", "grpo", "prompt_only"]

# Columns that hold a list of chat messages in TRL's conversational formats.
MESSAGE_COLUMNS = ("messages", "prompt", "completion", "chosen", "rejected")


def _arrow_message(message: dict[str, Any]) -> dict[str, Any]:
    calls = message.get("tool_calls")
    if not calls:
        return message
    fixed = []
    for call in calls:
        fn = call["function"]
        args = fn["arguments"]
        text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        fixed.append({**call, "function": {**fn, "arguments": text}})
    return {**message, "tool_calls": fixed}


def arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    """One record made safe for Arrow: tool arguments as JSON text, `tools` as one JSON string.

    Arrow stores a column of dicts as one struct type and fills the keys a row lacks with
    nulls, which a chat template would then render (`{"x": 1, "y": null}`); JSON text is
    rendered verbatim (exactly as `tojson` writes the object). TRL's SFT, DPO and KTO
    trainers decode a string `tools` column per row (`json.loads`).
    """
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in MESSAGE_COLUMNS and isinstance(value, list):
            out[key] = [_arrow_message(m) if isinstance(m, dict) else m for m in value]
        elif key == "tools":
            out[key] = json.dumps(value, ensure_ascii=False)
        else:
            out[key] = value
    return out


@dataclass
class Records:
    """Rows in one TRL dataset format, with the trajectories each row came from.

    `format` names the layout: `conversational` (`messages`, `tools`: SFT),
    `tokens` (`input_ids`, `assistant_masks`: pre-tokenized SFT), `preference`
    (`prompt`, `chosen`, `rejected`, `tools`: DPO), `unpaired_preference` (`prompt`,
    `completion`, `label`, `tools`: KTO), `grpo` (`prompt`, `completion`, `tools`,
    `reward`, `advantage`, `group`: offline group-relative data) and `prompt_only`
    (`prompt`, `tools`: GRPOTrainer's input). In memory, tool arguments are dicts (or the
    raw text the model wrote) and `tools` a list; `to_dataset`/`to_parquet` store them as
    JSON text (see `arrow_row`). `sources[i]` holds the trajectory ids behind `rows[i]`.
    """

    format: RecordFormat
    rows: list[dict[str, Any]] = field(default_factory=list)
    sources: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, row: dict[str, Any], *sources: str) -> None:
        """Append a row and the ids of the trajectories it came from."""
        self.rows.append(row)
        self.sources.append(tuple(sources))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def arrow_rows(self) -> list[dict[str, Any]]:
        """The rows as stored in Arrow (tool arguments and `tools` as JSON text)."""
        return [arrow_row(r) for r in self.rows]

    def to_dataset(self) -> Dataset:
        """A `datasets.Dataset` in TRL's format for `format` (needs the `train` extra)."""
        try:
            from datasets import Dataset
        except ImportError as exc:
            raise ConfigError("datasets are built with the train extra: pip install 'hone[train]'") from exc
        return Dataset.from_list(self.arrow_rows())

    def to_parquet(self, path: str | Path) -> int:
        """Write the rows (as `to_dataset` stores them) to a Parquet file; returns how many (needs pyarrow)."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ConfigError("Parquet export needs pyarrow: pip install 'hone[parquet]'") from exc
        target = Path(path)
        table = pa.Table.from_pylist(self.arrow_rows())
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, target)
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return len(self.rows)
