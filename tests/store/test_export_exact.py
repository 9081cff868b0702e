"""Exports and imports field by field: the identifying fields of OpenAI records, one run only, text that
is not ASCII, and import errors that name the line, the field and how many more there are (written
against mutation survivors of the export-import group)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _store_factory import make_traj

from hone.core import ConfigError, DataError, ErrorInfo, ToolSpec, Trajectory
from hone.store import (
    RunInfo,
    SQLStore,
    export_jsonl,
    export_openai,
    export_parquet,
    import_jsonl,
    import_parquet,
    open_store,
)

UNICODE_TOOL = ToolSpec(name="café", description="Kaffee für zwei", parameters={"type": "object", "title": "ñ"})


@pytest.fixture
def two_runs(tmp_path: Path) -> SQLStore:
    st = open_store(tmp_path / "hone.db")
    st.put(make_traj("t0", run_id="mine", subset="L2", tools=[UNICODE_TOOL], answer="déjà vu"))
    st.put(make_traj("t1", run_id="other"))
    return st


def test_openai_records_carry_their_identity(two_runs: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "mine.openai.jsonl"
    assert export_openai(two_runs, "mine", out) == 1
    [row] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    [traj] = two_runs.query(run_id="mine")
    assert {k: row[k] for k in ("id", "run_id", "task_id", "sample", "env", "model", "split", "subset", "status")} == {
        "id": traj.id, "run_id": "mine", "task_id": "t0", "sample": 0, "env": "arith", "model": traj.model,
        "split": "test", "subset": "L2", "status": "ok",
    }  # fmt: skip
    text = out.read_text(encoding="utf-8")
    assert "Kaffee für zwei" in text and "\\u00fc" not in text  # written as UTF-8, not escaped


def test_parquet_tools_keep_their_fields_and_unicode(two_runs: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "mine.parquet"
    assert export_parquet(two_runs, "mine", out) == 1
    [tools] = pq.read_table(out).column("tools").to_pylist()
    assert tools == [
        {"name": "café", "description": "Kaffee für zwei", "parameters": '{"type": "object", "title": "ñ"}'}
    ]


def test_jsonl_export_is_utf8_and_one_run(two_runs: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "mine.jsonl"
    assert export_jsonl(two_runs, "mine", out) == 1
    assert "déjà vu" in out.read_text(encoding="utf-8")


def _fresh(tmp_path: Path) -> SQLStore:
    return open_store(tmp_path / "fresh.db")


def test_an_invalid_record_names_the_line_the_field_and_how_many_more(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    one = json.dumps({"task_id": "x", "env": "e"})  # one field missing
    three = json.dumps({"task_id": 1, "env": []})  # model missing, two of the wrong type
    path.write_text(f"{one}\n", encoding="utf-8")
    with _fresh(tmp_path) as fresh, pytest.raises(DataError) as info:
        import_jsonl(fresh, path)
    assert str(info.value) == f"{path}:1: model: Field required"
    path.write_text(f"{three}\n", encoding="utf-8")
    with _fresh(tmp_path) as fresh, pytest.raises(DataError) as info:
        import_jsonl(fresh, path)
    assert str(info.value) == f"{path}:1: task_id: Input should be a valid string (and 2 more)"
    path.write_text("[1, 2]\n", encoding="utf-8")  # not an object: the error is about the whole record
    with _fresh(tmp_path) as fresh, pytest.raises(DataError, match=r"bad\.jsonl:1: record: "):
        import_jsonl(fresh, path)


def test_unreadable_files_say_why(tmp_path: Path) -> None:
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes("café\n".encode("latin-1"))
    with _fresh(tmp_path) as fresh, pytest.raises(DataError) as info:
        import_jsonl(fresh, latin)
    assert str(info.value) == f"{latin}: not UTF-8 text: invalid continuation byte"
    with _fresh(tmp_path) as fresh, pytest.raises(DataError) as info:
        import_jsonl(fresh, tmp_path)  # a directory
    assert str(info.value) == f"{tmp_path}: cannot read: Is a directory"
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with _fresh(tmp_path) as fresh, pytest.raises(DataError, match=r"broken\.parquet: cannot read Parquet: "):
        import_parquet(fresh, broken)


def _write(path: Path, *trajs: Trajectory) -> Path:
    path.write_text("".join(t.model_dump_json() + "\n" for t in trajs), encoding="utf-8")
    return path


def test_an_import_never_mixes_environments_in_a_run(two_runs: SQLStore, tmp_path: Path) -> None:
    gsm = _write(tmp_path / "gsm.jsonl", make_traj("g0", run_id="x", env="gsm8k"))
    with pytest.raises(ConfigError) as info:
        import_jsonl(two_runs, gsm, run_id="mine")  # "mine" holds arith trajectories
    assert str(info.value) == (
        f"run 'mine' in the store is of environment 'arith', but {gsm} holds 'gsm8k' trajectories; "
        "import with another --run-id"
    )
    assert import_jsonl(two_runs, gsm, run_id="fresh") == 1  # other runs of other envs do not matter
    two_runs.save_run(RunInfo(id="empty", kind="eval", env="arith", model="m", status="done"))
    with pytest.raises(ConfigError, match="run 'empty' in the store is of environment 'arith'"):
        import_jsonl(two_runs, gsm, run_id="empty")  # no trajectories yet: the record's env decides
    two_runs.save_run(RunInfo(id="plugin", kind="eval", env="pkg.mod:factory", model="m", status="done"))
    other = _write(tmp_path / "gsm2.jsonl", make_traj("g1", run_id="x", env="gsm8k"))
    assert import_jsonl(two_runs, other, run_id="plugin") == 1  # a plugin spec does not name the env
    mixed = _write(tmp_path / "mixed.jsonl", make_traj("a", run_id="r"), make_traj("b", run_id="r", env="gsm8k"))
    with pytest.raises(DataError) as info:
        import_jsonl(two_runs, mixed)
    assert str(info.value) == f"{mixed}: run 'r' would mix environments 'arith' and 'gsm8k'; import them apart"


def test_parquet_import_reassigns_the_run_and_records_where_it_came_from(two_runs: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "all.parquet"
    export_parquet(two_runs, None, out)
    with _fresh(tmp_path) as fresh:
        assert import_parquet(fresh, out, run_id="again") == 2
        run = fresh.get_run("again")
        assert run is not None and run.kind == "import" and run.config == {"imported_from": str(out)}
        assert {t.run_id for t in fresh.query()} == {"again"}


def test_a_parquet_row_without_a_trajectory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "holes.parquet"
    pq.write_table(pa.table({"trajectory": [make_traj("a").model_dump_json(), None]}), path)
    with _fresh(tmp_path) as fresh, pytest.raises(DataError) as info:
        import_parquet(fresh, path)
    assert str(info.value) == f"{path}:row 2: empty 'trajectory' value"


def test_two_errors_say_one_more_and_nested_fields_are_dotted(tmp_path: Path) -> None:
    good = json.loads(make_traj("a").model_dump_json())
    good["steps"][0]["call"]["usage"] = {"prompt_tokens": "many", "completion_tokens": "few"}
    path = tmp_path / "two.jsonl"
    path.write_text(json.dumps(good) + "\n", encoding="utf-8")
    with _fresh(tmp_path) as fresh, pytest.raises(DataError) as info:
        import_jsonl(fresh, path)
    assert str(info.value) == (
        f"{path}:1: steps.0.call.usage.prompt_tokens: Input should be a valid integer, "
        "unable to parse string as an integer (and 1 more)"
    )


def test_trajectories_of_no_run_import_without_a_run_record(two_runs: SQLStore, tmp_path: Path) -> None:
    two_runs.put(make_traj("loose-a", run_id=""))  # an arith trajectory of no run
    path = _write(tmp_path / "loose.jsonl", make_traj("loose-g", run_id="", env="gsm8k"))
    assert import_jsonl(two_runs, path) == 1  # no run, so no run whose environment it could mix
    assert "" not in {r.id for r in two_runs.list_runs()}


def test_parquet_rows_keep_nulls_and_unicode_in_their_json_columns(tmp_path: Path) -> None:
    with open_store(tmp_path / "u.db") as st:
        traj = make_traj("u", run_id="u", tools=[UNICODE_TOOL])
        traj.steps[0].call.message.tool_calls[0].arguments = {"x": "café"}  # type: ignore[index]
        traj.feedback[0].evidence = {"note": "déjà"}
        traj.feedback[-1].evidence = None
        st.put(traj)
        out = tmp_path / "u.parquet"
        export_parquet(st, "u", out)
    row = pq.read_table(out).to_pylist()[0]
    evidence = [f["evidence"] for f in row["feedback"]]
    assert evidence[0] == '{"note": "déjà"}' and evidence[-1] is None
    calls = [m["tool_calls"] for m in row["messages"]]
    assert calls[0] is None  # a message without tool calls has none, not an empty value
    assert [c["arguments"] for c in calls[2]] == ['{"x": "café"}']


class PutOnly:
    """A store with only the protocol's `put` for writing (no batched `put_many`)."""

    def __init__(self, inner: SQLStore) -> None:
        self.inner = inner

    def put(self, traj: Trajectory) -> bool:
        return self.inner.put(traj)

    def __getattr__(self, name: str) -> object:
        if name == "put_many":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_an_import_keeps_an_existing_run_record_and_writes_one_by_one_without_put_many(
    two_runs: SQLStore, tmp_path: Path
) -> None:
    path = _write(tmp_path / "more.jsonl", make_traj("t5", run_id="x"), make_traj("t6", run_id="x"))
    two_runs.save_run(RunInfo(id="mine", kind="eval", env="arith", model="m", status="done", config={"k": 2}))
    store = PutOnly(two_runs)
    assert import_jsonl(store, path, run_id="mine") == 2  # type: ignore[arg-type]
    run = two_runs.get_run("mine")
    assert run is not None and (run.kind, run.config) == ("eval", {"k": 2})  # not replaced by an import record
    assert two_runs.count("mine") == 3
    split = _write(tmp_path / "dev.jsonl", make_traj("d0", run_id="dev-run", split="dev"))
    import_jsonl(two_runs, split)
    created = two_runs.get_run("dev-run")
    assert created is not None and (created.kind, created.split, created.env) == ("import", "dev", "arith")


def test_parquet_columns_hold_the_trajectorys_own_values(tmp_path: Path) -> None:
    traj = make_traj("p", run_id="pq", sample=3, subset="L2", parent_ids=["root"], tags=["a"], strategy="refine")
    call = traj.steps[0].call
    call.latency_s, call.cost_usd, call.cached, call.tool_format, call.finish_reason = (
        0.25,
        0.001,
        True,
        "hermes",
        "tool_calls",
    )
    traj.steps[0].error = ErrorInfo(type="ToolError", message="calc failed", step_index=0)
    traj.op, traj.meta = "refine", {"note": "déjà"}
    traj.finished_at = traj.created_at + timedelta(seconds=90)
    traj.usage.tool_calls, traj.usage.cost_usd, traj.usage.seconds = 2, 0.5, 1.5
    with open_store(tmp_path / "p.db") as st:
        st.put(traj)
        out = tmp_path / "p.parquet"
        export_parquet(st, "pq", out)
    row = pq.read_table(out).to_pylist()[0]
    scalars = ("id", "run_id", "task_id", "sample", "env", "env_version", "split", "subset", "model", "status")
    scalars += ("stop_reason", "reward", "passed", "answer", "strategy", "op", "oracle", "tags", "parent_ids")
    assert {k: row[k] for k in scalars} == {k: getattr(traj, k) for k in scalars}
    assert row["steps"] == [
        {
            "model": call.model, "finish_reason": "tool_calls", "prompt_tokens": 40, "completion_tokens": 8,
            "latency_s": 0.25, "cost_usd": 0.001, "cached": True, "tool_format": "hermes",
            "error_type": "ToolError", "error_message": "calc failed",
        }
    ]  # fmt: skip
    assert [m["name"] for m in row["messages"] if m["role"] == "tool"] == ["calc"]
    assert (row["tool_calls"], row["cost_usd"], row["seconds"], row["meta"]) == (2, 0.5, 1.5, '{"note": "déjà"}')
    assert (row["created_at"], row["finished_at"]) == (traj.created_at, traj.finished_at)
    assert (row["n_steps"], row["calls"], row["prompt_tokens"], row["completion_tokens"]) == (
        1, traj.usage.calls, traj.usage.prompt_tokens, traj.usage.completion_tokens,
    )  # fmt: skip


def test_an_errored_trajectory_keeps_its_error_in_parquet(tmp_path: Path) -> None:
    with open_store(tmp_path / "e.db") as st:
        st.put(make_traj("e", run_id="e", status="error"))
        out = tmp_path / "e.parquet"
        export_parquet(st, "e", out)
    row = pq.read_table(out).to_pylist()[0]
    assert (row["error_type"], row["error_message"]) == ("ModelError", "HTTP 500 after retries")


def test_full_batches_are_written_one_by_one_without_put_many(
    two_runs: SQLStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hone.store import _export

    monkeypatch.setattr(_export, "_BATCH", 2)  # 5 trajectories: two full batches and a last one
    path = _write(tmp_path / "five.jsonl", *(make_traj(f"f{i}", run_id="five") for i in range(5)))
    assert import_jsonl(PutOnly(two_runs), path) == 5  # type: ignore[arg-type]
    assert two_runs.count("five") == 5
