"""hone trajectories as TRL's conversational SFT format (`messages` + `tools`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hone.core import Trajectory

if TYPE_CHECKING:
    from datasets import Dataset


def _record(traj: Trajectory, *, as_text: bool) -> dict[str, Any]:
    return {
        "messages": [m.to_openai(object_arguments=not as_text) for m in traj.messages()],
        "tools": [tool.to_openai() for tool in traj.tools],
    }


def sft_records(trajectories: Iterable[Trajectory], *, only_passed: bool = False) -> list[dict[str, Any]]:
    """Trajectories as TRL conversational records: `{"messages": [...], "tools": [...]}`.

    Messages are OpenAI-style dicts (system/user/assistant/tool); an assistant tool call is
    `{"id", "type": "function", "function": {"name", "arguments"}}` where `arguments` is the
    exact text the model wrote (`arguments_raw`) when known, else the parsed object. Tools
    are in OpenAI `tools` format. `only_passed` keeps trajectories that hidden grading
    passed; trajectories without an assistant turn are skipped (nothing to learn from).
    """
    out: list[dict[str, Any]] = []
    for traj in trajectories:
        if only_passed and not traj.passed:
            continue
        if not traj.steps:
            continue
        out.append(_record(traj, as_text=False))
    return out


def sft_dataset(trajectories: Iterable[Trajectory], *, only_passed: bool = False) -> Dataset:
    """`sft_records` as a `datasets.Dataset` ready for TRL's `SFTTrainer` (needs `hone[train]`).

    Arrow stores a column of dicts as one struct type, filling keys a row lacks with nulls,
    which a chat template would then render (`{"expression": ..., "query": null}`). So tool
    arguments are stored as JSON text (rendered verbatim by the micro template, exactly as
    `tojson` would write the object) and `tools` as a JSON string, which TRL decodes per row.
    """
    from datasets import Dataset

    kept = [t for t in trajectories if t.steps and (t.passed or not only_passed)]
    rows = []
    for traj in kept:
        record = _record(traj, as_text=True)
        rows.append({"messages": record["messages"], "tools": json.dumps(record["tools"], ensure_ascii=False)})
    return Dataset.from_list(rows)
