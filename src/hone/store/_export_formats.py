"""Exports other tools read: OpenAI chat JSONL, Parquet with nested columns, an inspect_ai eval log.

- `export_openai`: one `{"messages", "tools", ...metadata}` object per line, OpenAI's chat
  shape (what `datasets.load_dataset("json")` and TRL's conversational formats read).
- `export_parquet`: hone's flat analysis columns, nested columns (messages, tool calls,
  tools, steps, feedback, usage) and the full trajectory JSON (`import_parquet` reads it).
- `export_inspect` (in `_export_inspect`): an inspect_ai eval log for `inspect view`.

Every writer goes through `_write_atomically`, so a failed export never leaves a truncated
file under the requested name, and an empty run gives a valid file with nothing in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hone.core import Feedback, Message, Step, ToolCall, ToolSpec, Trajectory

from ._base import TrajectoryStore
from ._export import _BATCH, _pyarrow, _stored_json, _write_atomically

EXPORT_FORMATS: dict[str, str] = {
    "jsonl": ".jsonl",
    "parquet": ".parquet",
    "openai": ".openai.jsonl",
    "inspect": ".eval",
}
"""`hone export` formats and the file suffix each gets when no output path is given."""


def _arguments_text(call: ToolCall) -> str:
    """A call's arguments as JSON text: the exact text the model wrote where known (as `Message.to_openai`)."""
    return call.arguments_raw if call.arguments_raw is not None else json.dumps(call.arguments, ensure_ascii=False)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


# -- OpenAI chat JSONL ----------------------------------------------------------------------


def openai_record(traj: Trajectory) -> dict[str, Any]:
    """A trajectory in OpenAI's chat shape plus a few identifying fields.

    `messages` is the whole conversation (`Trajectory.messages()`: the prompt, then each
    step's assistant message and its observations) as `Message.to_openai` writes it: an
    assistant tool call is `{"id", "type": "function", "function": {"name", "arguments"}}`
    with `arguments` as JSON text (the exact text the model wrote where known), a tool result
    `{"role": "tool", "tool_call_id", "content", "name"}`. `tools` is OpenAI's `tools` list
    (`parameters` a JSON Schema object). `reward` is `Trajectory.reward` and `passed` hidden
    grading's verdict (`Trajectory.passed`): filter on them to pick training rows.
    """
    return {
        "id": traj.id,
        "run_id": traj.run_id,
        "task_id": traj.task_id,
        "sample": traj.sample,
        "env": traj.env,
        "model": traj.model,
        "split": traj.split,
        "subset": traj.subset,
        "status": traj.status,
        "reward": traj.reward,
        "passed": traj.passed,
        "messages": [m.to_openai() for m in traj.messages()],
        "tools": [t.to_openai() for t in traj.tools],
    }


def export_openai(store: TrajectoryStore, run_id: str | None, path: str | Path) -> int:
    """Write one OpenAI-chat JSON object per trajectory per line (`openai_record`); returns the count.

    The file loads with `datasets.load_dataset("json", data_files=path)` and its rows go to
    TRL's conversational preparation as they are (pass `tools=row["tools"]`). Tool schemas
    and message keys differ between rows; `datasets` >= 4.7 stores such fields with its
    `Json` type and gives them back exactly, where older versions cannot infer one Arrow
    type for them. Every trajectory is written, failed and errored ones included.
    """

    def write(tmp: Path) -> int:
        n = 0
        with tmp.open("w", encoding="utf-8") as fh:
            for traj in store.query(run_id=run_id):
                fh.write(json.dumps(openai_record(traj), ensure_ascii=False))
                fh.write("\n")
                n += 1
        return n

    return _write_atomically(path, write)


# -- Parquet with nested columns ------------------------------------------------------------


def _parquet_schema(pa: Any) -> Any:
    s, i, f, b = pa.string(), pa.int64(), pa.float64(), pa.bool_()
    call = pa.struct([("id", s), ("name", s), ("arguments", s), ("parse_error", s)])
    message = pa.struct(
        [
            ("step", i),
            ("role", s),
            ("content", s),
            ("tool_calls", pa.list_(call)),
            ("tool_call_id", s),
            ("name", s),
            ("error", s),
        ]
    )
    tool = pa.struct([("name", s), ("description", s), ("parameters", s)])
    step = pa.struct(
        [
            ("model", s),
            ("finish_reason", s),
            ("prompt_tokens", i),
            ("completion_tokens", i),
            ("latency_s", f),
            ("cost_usd", f),
            ("cached", b),
            ("tool_format", s),
            ("error_type", s),
            ("error_message", s),
        ]
    )
    feedback = pa.struct(
        [
            ("scope", s),
            ("step_index", i),
            ("source", s),
            ("name", s),
            ("score", f),
            ("passed", b),
            ("visibility", s),
            ("text", s),
            ("evidence", s),
        ]
    )
    usage = pa.struct(
        [
            ("calls", i),
            ("prompt_tokens", i),
            ("completion_tokens", i),
            ("cost_usd", f),
            ("tool_calls", i),
            ("env_steps", i),
            ("seconds", f),
        ]
    )
    error = pa.struct([("type", s), ("message", s), ("step_index", i), ("raw", s)])
    ts = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            # flat columns for analysis (one value per trajectory)
            ("id", s),
            ("run_id", s),
            ("task_id", s),
            ("sample", i),
            ("env", s),
            ("env_version", s),
            ("split", s),
            ("subset", s),
            ("model", s),
            ("status", s),
            ("stop_reason", s),
            ("error_type", s),
            ("error_message", s),
            ("reward", f),
            ("passed", b),
            ("answer", s),
            ("n_steps", i),
            ("calls", i),
            ("prompt_tokens", i),
            ("completion_tokens", i),
            ("tool_calls", i),
            ("cost_usd", f),
            ("seconds", f),
            ("strategy", s),
            ("parent_ids", pa.list_(s)),
            ("created_at", ts),
            # nested columns
            ("messages", pa.list_(message)),
            ("tools", pa.list_(tool)),
            ("steps", pa.list_(step)),
            ("feedback", pa.list_(feedback)),
            ("usage", usage),
            ("error", error),
            ("tags", pa.list_(s)),
            ("op", s),
            ("oracle", b),
            ("meta", s),
            ("finished_at", ts),
            # the whole record, for lossless import
            ("trajectory", s),
        ]
    )


def _message_row(m: Message, step: int | None) -> dict[str, Any]:
    calls = None
    if m.tool_calls:
        calls = [
            {"id": c.id, "name": c.name, "arguments": _arguments_text(c), "parse_error": c.parse_error}
            for c in m.tool_calls
        ]
    return {
        "step": step,
        "role": m.role,
        "content": m.content,
        "tool_calls": calls,
        "tool_call_id": m.tool_call_id,
        "name": m.name,
        "error": m.error,
    }


def _tool_row(t: ToolSpec) -> dict[str, Any]:
    return {"name": t.name, "description": t.description, "parameters": json.dumps(t.parameters, ensure_ascii=False)}


def _step_row(s: Step) -> dict[str, Any]:
    c = s.call
    return {
        "model": c.model,
        "finish_reason": c.finish_reason,
        "prompt_tokens": c.usage.prompt_tokens,
        "completion_tokens": c.usage.completion_tokens,
        "latency_s": c.latency_s,
        "cost_usd": c.cost_usd,
        "cached": c.cached,
        "tool_format": c.tool_format,
        "error_type": s.error.type if s.error else None,
        "error_message": s.error.message if s.error else None,
    }


def _all_feedback(t: Trajectory) -> list[tuple[str, int | None, Feedback]]:
    """(scope, step index, feedback) for every item: the trajectory's own, then each step's
    (whose step index is its step's unless the item names one)."""
    found: list[tuple[str, int | None, Feedback]] = [("trajectory", f.step_index, f) for f in t.feedback]
    for i, step in enumerate(t.steps):
        found += [("step", i if f.step_index is None else f.step_index, f) for f in step.feedback]
    return found


def _feedback_row(scope: str, index: int | None, f: Feedback, evidence: Any) -> dict[str, Any]:
    return {
        "scope": scope,
        "step_index": index,
        "source": f.source,
        "name": f.name,
        "score": f.score,
        "passed": f.passed,
        "visibility": f.visibility,
        "text": f.text,
        "evidence": evidence,
    }


def _parquet_row(t: Trajectory, data: str) -> dict[str, Any]:
    """One trajectory as a row of `export_parquet`'s schema; `data` is its JSON (the `trajectory` column)."""
    messages = [_message_row(m, None) for m in t.prompt]
    for i, step in enumerate(t.steps):
        messages.append(_message_row(step.call.message, i))
        messages.extend(_message_row(o, i) for o in step.observations)
    e = t.error
    return {
        "id": t.id,
        "run_id": t.run_id,
        "task_id": t.task_id,
        "sample": t.sample,
        "env": t.env,
        "env_version": t.env_version,
        "split": t.split,
        "subset": t.subset,
        "model": t.model,
        "status": t.status,
        "stop_reason": t.stop_reason,
        "error_type": e.type if e else None,
        "error_message": e.message if e else None,
        "reward": t.reward,
        "passed": t.passed,
        "answer": t.answer,
        "n_steps": len(t.steps),
        "calls": t.usage.calls,
        "prompt_tokens": t.usage.prompt_tokens,
        "completion_tokens": t.usage.completion_tokens,
        "tool_calls": t.usage.tool_calls,
        "cost_usd": t.usage.cost_usd,
        "seconds": t.usage.seconds,
        "strategy": t.strategy,
        "parent_ids": t.parent_ids,
        "created_at": t.created_at,  # pyarrow reads a naive time as UTC, as hone stores them
        "messages": messages,
        "tools": [_tool_row(tool) for tool in t.tools],
        "steps": [_step_row(s) for s in t.steps],
        "feedback": [_feedback_row(*x, _json_or_none(x[2].evidence)) for x in _all_feedback(t)],
        "usage": t.usage.model_dump(),
        "error": e.model_dump() if e else None,
        "tags": t.tags,
        "op": t.op,
        "oracle": t.oracle,
        "meta": json.dumps(t.meta, ensure_ascii=False),
        "finished_at": t.finished_at,
        "trajectory": data,
    }


def export_parquet(store: TrajectoryStore, run_id: str | None, path: str | Path) -> int:
    """Write trajectories as Parquet: flat columns, nested columns and `trajectory` (the full JSON).

    Flat columns hold one value per trajectory (`reward`, `passed` = hidden grading's
    verdict, token counts, `created_at`...). Nested ones are real Arrow types: `messages`
    (list of structs: `step` = the step it belongs to, null for the prompt, `role`,
    `content`, `tool_calls` as a list of `{id, name, arguments, parse_error}`,
    `tool_call_id`, `name`, `error`), `tools`, `steps` (per model call), `feedback` (list of
    `{scope, step_index, source, name, score, passed, visibility, text, evidence}`; `scope`
    says whether it was given to the trajectory or to a step), `usage` and `error` (structs).
    Free-form values whose shape varies between rows stay JSON text: tool-call `arguments`,
    tool `parameters`, feedback `evidence` and `meta`. The `trajectory` column makes the
    file lossless (`import_parquet` reads it back). Written in row groups of 1000.
    """
    pa, pq = _pyarrow()
    schema = _parquet_schema(pa)

    def write(tmp: Path) -> int:
        n = 0
        rows: list[dict[str, Any]] = []
        with pq.ParquetWriter(str(tmp), schema) as writer:
            for data in _stored_json(store, run_id):
                rows.append(_parquet_row(Trajectory.model_validate_json(data), data))
                if len(rows) >= _BATCH:
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                    n += len(rows)
                    rows = []
            if rows:  # an empty export is still a valid file: the writer writes the schema on close
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                n += len(rows)
        return n

    return _write_atomically(path, write)
