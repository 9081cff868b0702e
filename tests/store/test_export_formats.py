"""Exports other tools read: OpenAI chat JSONL (datasets + TRL), nested Parquet, inspect_ai eval logs."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from hone.cli import app
from hone.core import (
    ConfigError,
    ErrorInfo,
    Feedback,
    Ledger,
    Message,
    ModelCall,
    Step,
    ToolCall,
    ToolSpec,
    Trajectory,
    Usage,
)
from hone.store import (
    RunInfo,
    SQLStore,
    export_inspect,
    export_openai,
    export_parquet,
    import_parquet,
    open_store,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
CALC = ToolSpec(
    name="calc",
    description="Evaluate an arithmetic expression.",
    parameters={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)
SEARCH = ToolSpec(
    name="search",
    description="Search the notes.",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "default": 5}},
        "required": ["query"],
    },
)
WEATHER = ToolSpec(  # another schema shape: enum, nullable type list, no `required`
    name="weather",
    description="The weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": ["string", "null"]}, "units": {"enum": ["c", "f", 0]}},
    },
)


def _call(message: Message, model: str = "gpt-x", prompt: int = 30, completion: int = 7, **kw: Any) -> ModelCall:
    return ModelCall(
        model=model,
        request_digest="d",
        message=message,
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion),
        finish_reason=kw.pop("finish_reason", "tool_calls" if message.tool_calls else "stop"),
        latency_s=0.25,
        **kw,
    )


def _traj(task_id: str, sample: int = 0, **fields: Any) -> Trajectory:
    base: dict[str, Any] = dict(
        run_id="r1",
        task_id=task_id,
        sample=sample,
        env="notes",
        env_version="3",
        split="test",
        model="gpt-x",
        prompt=[Message.system("Use the tools."), Message.user(f"Task {task_id}: what is 12*7? é")],
        created_at=T0 + timedelta(minutes=len(task_id) + sample),
    )
    return Trajectory(**{**base, **fields})


def solved() -> Trajectory:
    """Two steps: two tool calls (one fails), then the answer; hidden and public feedback at both levels."""
    calls = [
        ToolCall(id="c1", name="calc", arguments={"expression": "12*7"}),
        ToolCall(id="c2", name="search", arguments={"query": "times table", "limit": 3}),
    ]
    step0 = Step(
        call=_call(Message.assistant("Let me compute.", calls)),
        observations=[
            Message.tool("84", "c1", name="calc"),
            Message.tool("error: index offline", "c2", name="search", error="index offline"),
        ],
        feedback=[Feedback(source="critic", name="tool-use", text="two calls at once", visibility="public")],
    )
    step1 = Step(call=_call(Message.assistant("The answer is 84."), prompt=60, completion=5))
    return _traj(
        "solved",
        subset="L2",
        tools=[CALC, SEARCH],
        steps=[step0, step1],
        answer="84",
        feedback=[
            Feedback(
                source="verifier",
                name="exact",
                score=1.0,
                passed=True,
                text="84 == 84",
                evidence={"expected": 84, "got": [8, 4]},
                visibility="hidden",
            ),
            Feedback(source="judge", name="clarity", score=0.5, text="terse", visibility="public"),
        ],
        reward=1.0,
        stop_reason="done",
        usage=Ledger(calls=2, prompt_tokens=90, completion_tokens=12, cost_usd=0.002, tool_calls=2, seconds=1.5),
        finished_at=T0 + timedelta(minutes=9),
        meta={"level": 2, "nested": {"x": [1.5, None]}},
        tags=["demo"],
    )


def failed() -> Trajectory:
    """Another tool schema, a call whose arguments did not parse, and a wrong answer."""
    bad = ToolCall(id="w1", name="weather", arguments_raw='{"city": Paris', parse_error="Expecting value")
    step0 = Step(
        call=_call(Message.assistant(None, [bad])),
        observations=[Message.tool("error: bad arguments", "w1", name="weather", error="bad arguments")],
    )
    step1 = Step(call=_call(Message.assistant("It is sunny.")))
    return _traj(
        "failed",
        sample=1,
        tools=[WEATHER],
        steps=[step0, step1],
        answer="It is sunny.",
        feedback=[Feedback(source="verifier", name="exact", score=0.0, passed=False, visibility="hidden")],
        reward=0.0,
        usage=Ledger(calls=2, prompt_tokens=60, completion_tokens=14, tool_calls=1),
    )


def errored() -> Trajectory:
    """The model call failed: no steps, no grading, no reward."""
    return _traj(
        "errored",
        status="error",
        stop_reason="error",
        error=ErrorInfo(type="ModelError", message="HTTP 500 after retries", raw="Traceback ..."),
        tools=[CALC],
    )


def trajectories() -> list[Trajectory]:
    return [solved(), failed(), errored()]


@pytest.fixture
def filled(store: SQLStore) -> SQLStore:
    store.save_run(RunInfo(id="r1", env="notes", model="gpt-x", split="test", status="done", created_at=T0))
    store.put_many(trajectories())
    return store


def _by_task(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["task_id"]: r for r in rows}


# -- OpenAI chat JSONL ----------------------------------------------------------------------


def test_openai_records_are_openai_chat_shape(filled: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "r1.openai.jsonl"
    assert export_openai(filled, "r1", out) == 3
    rows = _by_task([json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()])
    row = rows["solved"]
    assert {k: row[k] for k in ("run_id", "sample", "reward", "passed", "subset")} == {
        "run_id": "r1",
        "sample": 0,
        "reward": 1.0,
        "passed": True,
        "subset": "L2",
    }
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    call = row["messages"][2]["tool_calls"][1]
    assert call == {
        "id": "c2",
        "type": "function",
        "function": {"name": "search", "arguments": '{"query": "times table", "limit": 3}'},
    }
    assert row["messages"][3] == {"role": "tool", "content": "84", "tool_call_id": "c1", "name": "calc"}
    assert row["messages"][4]["tool_call_id"] == "c2"
    assert row["tools"][1] == {
        "type": "function",
        "function": {"name": "search", "description": "Search the notes.", "parameters": SEARCH.parameters},
    }
    # the exact text the model wrote, unparsable JSON included
    assert rows["failed"]["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"city": Paris'
    assert rows["failed"]["passed"] is False
    assert rows["errored"]["messages"] == [m.to_openai() for m in errored().prompt]
    assert rows["errored"]["reward"] is None and rows["errored"]["status"] == "error"


# Renders what the test checks: tools with their schemas, every call's id, name and
# arguments, and each tool result with the id of the call it answers.
TEMPLATE = (
    "{%- for t in tools or [] -%}{{ 'TOOL ' + t.function.name + ' ' }}{{ t.function.parameters | tojson }}"
    "{{ '\\n' }}{%- endfor -%}"
    "{%- for m in messages -%}"
    "{%- if m.role == 'tool' -%}{{ '<tool ' + m.tool_call_id + '>' + m.content + '\\n' }}"
    "{%- else -%}{{ '<' + m.role + '>' + (m.content or '') }}"
    "{%- for tc in m.tool_calls or [] -%}"
    "{{ '[call ' + tc.id + ': ' + tc.function.name + ' ' + tc.function.arguments + ']' }}"
    "{%- endfor -%}{{ '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab={"<unk>": 0}, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", chat_template=TEMPLATE)  # type: ignore[no-untyped-call]


def test_openai_file_loads_with_datasets_and_renders_with_trl(filled: SQLStore, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("transformers")
    trl_data = pytest.importorskip("trl.data_utils")

    out = tmp_path / "r1.openai.jsonl"
    export_openai(filled, "r1", out)
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    ds = datasets.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    # three different tool schemas and message key sets: read back exactly, no keys filled with nulls
    assert [dict(row) for row in ds] == written

    tok = _tokenizer()
    rendered = {row["task_id"]: trl_data.maybe_apply_chat_template(row, tok, tools=row["tools"])["text"] for row in ds}
    raw = {
        row["task_id"]: tok.apply_chat_template(row["messages"], tools=row["tools"] or None, tokenize=False)
        for row in written
    }
    assert rendered == raw
    text = rendered["solved"]
    search = '{"query": {"type": "string"}, "limit": {"type": "integer", "default": 5}}'
    assert f'TOOL search {{"type": "object", "properties": {search}, "required": ["query"]}}\n' in text
    calls = '[call c1: calc {"expression": "12*7"}][call c2: search {"query": "times table", "limit": 3}]'
    assert f"<assistant>Let me compute.{calls}\n" in text
    assert "<tool c1>84\n<tool c2>error: index offline\n<assistant>The answer is 84.\n" in text
    weather = '{"city": {"type": ["string", "null"]}, "units": {"enum": ["c", "f", 0]}}'
    assert f'TOOL weather {{"type": "object", "properties": {weather}}}\n' in rendered["failed"]
    assert '[call w1: weather {"city": Paris]' in rendered["failed"]


# -- Parquet with nested columns ------------------------------------------------------------


def test_parquet_has_nested_columns(filled: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "r1.parquet"
    assert export_parquet(filled, "r1", out) == 3
    table = pq.read_table(out)
    schema = table.schema
    message = schema.field("messages").type
    assert pa.types.is_list(message) and pa.types.is_struct(message.value_type)
    call = message.value_type.field("tool_calls").type
    assert pa.types.is_list(call) and pa.types.is_struct(call.value_type)
    assert [call.value_type.field(i).name for i in range(call.value_type.num_fields)] == [
        "id",
        "name",
        "arguments",
        "parse_error",
    ]
    feedback = schema.field("feedback").type
    assert pa.types.is_list(feedback) and pa.types.is_struct(feedback.value_type)
    assert pa.types.is_boolean(feedback.value_type.field("passed").type)
    assert pa.types.is_struct(schema.field("usage").type) and pa.types.is_struct(schema.field("error").type)
    assert pa.types.is_list(schema.field("tools").type) and pa.types.is_list(schema.field("steps").type)
    assert pa.types.is_integer(schema.field("tool_calls").type)  # the flat count stays

    rows = _by_task(table.to_pylist())
    row = rows["solved"]
    assert [(m["step"], m["role"]) for m in row["messages"]] == [
        (None, "system"),
        (None, "user"),
        (0, "assistant"),
        (0, "tool"),
        (0, "tool"),
        (1, "assistant"),
    ]
    assert row["messages"][2]["tool_calls"][0] == {
        "id": "c1",
        "name": "calc",
        "arguments": '{"expression": "12*7"}',
        "parse_error": None,
    }
    assert [(m["tool_call_id"], m["content"], m["error"]) for m in row["messages"][3:5]] == [
        ("c1", "84", None),
        ("c2", "error: index offline", "index offline"),
    ]
    assert [(f["scope"], f["step_index"], f["name"], f["visibility"], f["passed"]) for f in row["feedback"]] == [
        ("trajectory", None, "exact", "hidden", True),
        ("trajectory", None, "clarity", "public", None),
        ("step", 0, "tool-use", "public", None),
    ]
    assert json.loads(row["feedback"][0]["evidence"]) == {"expected": 84, "got": [8, 4]}
    assert json.loads(row["tools"][1]["parameters"]) == SEARCH.parameters
    assert [s["finish_reason"] for s in row["steps"]] == ["tool_calls", "stop"]
    assert row["usage"]["prompt_tokens"] == 90 and row["usage"]["cost_usd"] == 0.002
    assert json.loads(row["meta"]) == {"level": 2, "nested": {"x": [1.5, None]}}
    assert row["error"] is None and rows["errored"]["error"]["type"] == "ModelError"
    assert rows["errored"]["messages"][-1]["role"] == "user" and rows["errored"]["steps"] == []
    bad = rows["failed"]["messages"][2]["tool_calls"][0]
    assert (bad["arguments"], bad["parse_error"]) == ('{"city": Paris', "Expecting value")


def test_parquet_loads_with_datasets_and_imports_back_losslessly(filled: SQLStore, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "r1.parquet"
    export_parquet(filled, "r1", out)
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    row = _by_task(list(ds))["solved"]
    assert row["messages"][2]["tool_calls"][1]["name"] == "search"
    assert row["feedback"][0]["visibility"] == "hidden" and row["usage"]["calls"] == 2

    with open_store(tmp_path / "fresh" / "hone.db") as fresh:
        assert import_parquet(fresh, out) == 3
        assert {t.id: t.model_dump() for t in fresh.query()} == {t.id: t.model_dump() for t in filled.query()}


# -- inspect_ai eval log --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["r1.eval", "r1.json"])
def test_inspect_log_reads_back(filled: SQLStore, tmp_path: Path, name: str) -> None:
    from inspect_ai.log import read_eval_log
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser

    out = tmp_path / name
    assert export_inspect(filled, "r1", out) == 3
    log = read_eval_log(str(out))
    assert log.status == "success"
    assert (log.eval.task, log.eval.model, log.eval.run_id, log.eval.dataset.name) == (
        "notes",
        "gpt-x",
        "r1",
        "notes:test",
    )
    assert log.eval.created.startswith("2025-01-01T00:00:00")
    assert log.results is not None and log.results.total_samples == 3
    metrics = {s.name: {k: m.value for k, m in s.metrics.items()} for s in log.results.scores}
    assert metrics["passed"]["accuracy"] == pytest.approx(1 / 3)
    assert metrics["reward"]["mean"] == pytest.approx(0.5)
    assert log.samples is not None
    samples = {s.id: s for s in log.samples}
    assert set(samples) == {"solved", "failed", "errored"} and samples["failed"].epoch == 2

    s = samples["solved"]
    assert [type(m) for m in s.messages] == [
        ChatMessageSystem,
        ChatMessageUser,
        ChatMessageAssistant,
        ChatMessageTool,
        ChatMessageTool,
        ChatMessageAssistant,
    ]
    assert isinstance(s.input, list) and [m.text for m in s.input] == ["Use the tools.", "Task solved: what is 12*7? é"]
    call = s.messages[2]
    assert isinstance(call, ChatMessageAssistant) and call.tool_calls is not None
    assert [(c.id, c.function, c.arguments) for c in call.tool_calls] == [
        ("c1", "calc", {"expression": "12*7"}),
        ("c2", "search", {"query": "times table", "limit": 3}),
    ]
    results = [m for m in s.messages if isinstance(m, ChatMessageTool)]
    assert [(m.tool_call_id, m.function, m.text) for m in results] == [
        ("c1", "calc", "84"),
        ("c2", "search", "error: index offline"),
    ]
    assert results[0].error is None and results[1].error is not None
    assert results[1].error.message == "index offline"
    assert s.output.completion == "The answer is 84." and s.output.choices[0].stop_reason == "stop"

    assert s.scores is not None
    assert s.scores["passed"].value == "C" and s.scores["reward"].value == 1.0
    assert s.scores["passed"].answer == "84" and s.scores["passed"].explanation == "84 == 84"
    fb = (s.scores["passed"].metadata or {})["feedback"]
    assert [(f["name"], f["visibility"], f["scope"]) for f in fb] == [
        ("exact", "hidden", "trajectory"),
        ("clarity", "public", "trajectory"),
        ("tool-use", "public", "step"),
    ]
    assert fb[0]["evidence"] == {"expected": 84, "got": [8, 4]}
    assert s.metadata["subset"] == "L2" and s.metadata["task_id"] == "solved" and s.metadata["usage"]["calls"] == 2
    assert [t["function"]["name"] for t in s.metadata["tools"]] == ["calc", "search"]
    usage = s.model_usage["gpt-x"]
    assert (usage.input_tokens, usage.output_tokens, usage.total_cost) == (90, 12, 0.002)
    stored = next(t for t in filled.query(run_id="r1") if t.task_id == "solved")
    assert s.uuid == stored.id == s.metadata["trajectory_id"] and s.error is None

    f = samples["failed"]
    assert f.scores is not None and f.scores["passed"].value == "I" and f.scores["reward"].value == 0.0
    bad = f.messages[2]
    assert isinstance(bad, ChatMessageAssistant) and bad.tool_calls is not None
    assert bad.tool_calls[0].parse_error == "Expecting value"
    assert bad.metadata == {"arguments_raw": {"w1": '{"city": Paris'}}

    e = samples["errored"]
    assert e.error is not None and e.error.message == "ModelError: HTTP 500 after retries"
    assert e.scores is not None and e.scores["passed"].value == "I" and "reward" not in e.scores
    assert len(e.messages) == 2


def test_inspect_without_inspect_ai_says_how_to_install(
    filled: SQLStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "inspect_ai", None)  # makes `import inspect_ai...` raise ImportError
    monkeypatch.setitem(sys.modules, "inspect_ai.log", None)
    with pytest.raises(ConfigError, match=r"^inspect export needs inspect_ai: pip install inspect_ai$"):
        export_inspect(filled, "r1", tmp_path / "out" / "r1.eval")
    assert not (tmp_path / "out").exists()  # refused before anything was written


# -- through `hone export` ------------------------------------------------------------------

runner = CliRunner()


def _hone(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stderr


def test_cli_exports_every_format_with_default_names(
    filled: SQLStore, store_location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inspect_ai.log import read_eval_log

    monkeypatch.chdir(tmp_path)
    for fmt, name in [
        ("jsonl", "r1.jsonl"),
        ("parquet", "r1.parquet"),
        ("openai", "r1.openai.jsonl"),
        ("inspect", "r1.eval"),
    ]:
        code, err = _hone("export", "r1", "--format", fmt, "--store", store_location)
        assert code == 0, err
        assert f"wrote 3 trajectories to {name}" in err
    assert len((tmp_path / "r1.openai.jsonl").read_text().splitlines()) == 3
    assert pq.read_table(tmp_path / "r1.parquet").num_rows == 3
    assert len(read_eval_log(str(tmp_path / "r1.eval")).samples or []) == 3


def test_cli_refuses_an_unknown_format_in_one_line(filled: SQLStore, store_location: str, tmp_path: Path) -> None:
    code, err = _hone("export", "r1", "--format", "csv", "-o", str(tmp_path / "x.csv"), "--store", store_location)
    assert code != 0
    assert err.strip() == "error: unknown format 'csv': use jsonl, parquet, openai, inspect"
    assert not (tmp_path / "x.csv").exists()


def test_empty_run_exports_valid_empty_files(store: SQLStore, store_location: str, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log

    store.save_run(RunInfo(id="empty", env="notes", model="gpt-x", status="done", created_at=T0))
    for fmt, name in [("openai", "e.openai.jsonl"), ("inspect", "e.eval")]:
        code, err = _hone("export", "empty", "--format", fmt, "-o", str(tmp_path / name), "--store", store_location)
        assert code == 0, err
        assert "wrote 0 trajectories" in err
    assert (tmp_path / "e.openai.jsonl").read_text() == ""
    log = read_eval_log(str(tmp_path / "e.eval"))
    assert (log.eval.task, log.samples, log.results and log.results.total_samples) == ("notes", [], 0)
