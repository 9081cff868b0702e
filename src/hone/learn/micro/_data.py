"""hone trajectories as TRL's conversational SFT format (`messages` + `tools`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hone.core import Message, ToolCall, Trajectory

if TYPE_CHECKING:
    from datasets import Dataset


def _tool_call(call: ToolCall, *, as_text: bool) -> dict[str, Any]:
    # The exact text the model wrote wins over the parsed object, so a history replays verbatim.
    arguments: str | dict[str, Any] = call.arguments_raw if call.arguments_raw is not None else dict(call.arguments)
    if as_text and not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)  # what the template's `tojson` writes
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def _message(message: Message, *, as_text: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        out["tool_calls"] = [_tool_call(c, as_text=as_text) for c in message.tool_calls]
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        out["name"] = message.name
    return out


def _record(traj: Trajectory, *, as_text: bool) -> dict[str, Any]:
    return {
        "messages": [_message(m, as_text=as_text) for m in traj.messages()],
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
