"""JSONL and Parquet export/import: lossless round trips and all-or-nothing imports."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hone.core import ConfigError, DataError, StoreError, Trajectory
from hone.store import SQLStore, export_jsonl, export_parquet, import_jsonl, import_parquet, open_store

Make = Callable[..., Trajectory]

PARQUET_COLUMNS = [
    "id",
    "run_id",
    "task_id",
    "sample",
    "env",
    "env_version",
    "split",
    "subset",
    "model",
    "status",
    "stop_reason",
    "error_type",
    "error_message",
    "reward",
    "passed",
    "answer",
    "n_steps",
    "calls",
    "prompt_tokens",
    "completion_tokens",
    "tool_calls",
    "cost_usd",
    "seconds",
    "strategy",
    "parent_ids",
    "created_at",
    "messages",
    "tools",
    "steps",
    "feedback",
    "usage",
    "error",
    "tags",
    "op",
    "oracle",
    "meta",
    "finished_at",
    "trajectory",
]


def _varied(make: Make) -> list[Trajectory]:
    return [
        make("a", subset="L1", parent_ids=["p0"], strategy="refine", tags=["t"], meta={"nested": {"x": [1.5, None]}}),
        make("a", sample=1, subset="L1", passed=False, reward=0.125),
        make("b", subset="L10", status="error", passed=False, minute=5),
        make("c", status="truncated", split=None, created_at=datetime(2025, 3, 1, 12, 0, 0)),  # naive time
        make("d", run_id="run-b", answer='multi\nline "quoted" \u2028 text'),
    ]


def _fresh(tmp_path: Path, name: str = "fresh") -> SQLStore:
    return open_store(tmp_path / name / "hone.db")


def _dumps(store: SQLStore, run_id: str | None = None) -> dict[str, dict[str, object]]:
    return {t.id: t.model_dump() for t in store.query(run_id=run_id)}


def test_jsonl_round_trip_is_lossless(store: SQLStore, make: Make, tmp_path: Path) -> None:
    originals = _varied(make)
    store.put_many(originals)
    out = tmp_path / "out" / "run.jsonl"
    assert export_jsonl(store, "run-a", out) == 4
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and all(json.loads(line)["run_id"] == "run-a" for line in lines)
    with _fresh(tmp_path) as fresh:
        assert import_jsonl(fresh, out) == 4
        assert _dumps(fresh) == {t.id: t.model_dump() for t in originals if t.run_id == "run-a"}
        run = fresh.get_run("run-a")
        assert run is not None and (run.kind, run.env, run.model, run.status) == ("import", "arith", "scripted", "done")
        assert import_jsonl(fresh, out) == 0  # already there: nothing new


def test_jsonl_export_all_runs_and_reassign_run(store: SQLStore, make: Make, tmp_path: Path) -> None:
    store.put_many(_varied(make))
    out = tmp_path / "all.jsonl"
    assert export_jsonl(store, None, out) == 5
    with _fresh(tmp_path) as fresh:
        assert import_jsonl(fresh, out, run_id="merged") == 5
        assert fresh.run_ids() == ["merged"]
        assert fresh.get_run("merged") is not None
        assert {t.run_id for t in fresh.query()} == {"merged"}


@pytest.mark.parametrize(
    ("bad_line", "what"),
    [
        ('{"task_id": "x", "env": "e", "model": ', "Invalid JSON"),
        ('{"task_id": "x", "env": "e"}', "model: Field required"),
        ('{"task_id": "x", "env": "e", "model": "m", "status": "exploded"}', "status:"),
    ],
)
def test_malformed_jsonl_line_imports_nothing(make: Make, tmp_path: Path, bad_line: str, what: str) -> None:
    path = tmp_path / "bad.jsonl"
    good = [make(f"t{i}").model_dump_json() for i in range(3)]
    path.write_text("\n".join([good[0], "", good[1], bad_line, good[2]]) + "\n", encoding="utf-8")
    with _fresh(tmp_path) as fresh:
        with pytest.raises(DataError) as info:
            import_jsonl(fresh, path)
        assert str(info.value).startswith(f"{path}:4: ")
        assert what in str(info.value)
        assert fresh.count() == 0
        assert fresh.list_runs() == []


def test_import_missing_file(tmp_path: Path) -> None:
    with _fresh(tmp_path) as fresh, pytest.raises(DataError, match="cannot read"):
        import_jsonl(fresh, tmp_path / "nope.jsonl")


def test_export_to_unwritable_place(store: SQLStore, make: Make, tmp_path: Path) -> None:
    store.put(make("a"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match=r"cannot write .*out\.jsonl: .*file is a file, not a directory"):
        export_jsonl(store, None, tmp_path / "file" / "out.jsonl")


def test_parquet_export_reads_back(store: SQLStore, make: Make, tmp_path: Path) -> None:
    originals = _varied(make)
    store.put_many(originals)
    out = tmp_path / "run.parquet"
    assert export_parquet(store, None, out) == 5

    df = pd.read_parquet(out)
    assert list(df.columns) == PARQUET_COLUMNS
    assert len(df) == 5
    assert str(df["created_at"].dtype).startswith("datetime64") and str(df["created_at"].dt.tz) == "UTC"
    by_id = df.set_index("id")
    first = originals[0]
    assert list(by_id.loc[first.id, "parent_ids"]) == ["p0"]
    assert by_id.loc[first.id, "prompt_tokens"] == 40 and bool(by_id.loc[first.id, "passed"]) is True
    assert by_id.loc[originals[2].id, "error_type"] == "ModelError"
    assert by_id.loc[originals[1].id, "reward"] == 0.125

    table = pq.read_table(out)
    assert table.num_rows == 5
    assert table.schema.field("parent_ids").type == pa.list_(pa.string())
    assert table.schema.field("sample").type == pa.int64()
    parsed = [Trajectory.model_validate_json(text) for text in table.column("trajectory").to_pylist()]
    assert {t.id: t for t in parsed} == {t.id: t for t in originals}


def test_parquet_writes_in_batches_and_imports_back(store: SQLStore, make: Make, tmp_path: Path) -> None:
    originals = [make(f"t{i:04d}", minute=i) for i in range(2500)]
    store.put_many(originals)
    out = tmp_path / "big.parquet"
    assert export_parquet(store, "run-a", out) == 2500
    assert pq.ParquetFile(out).num_row_groups == 3
    with _fresh(tmp_path) as fresh:
        assert import_parquet(fresh, out) == 2500
        assert _dumps(fresh) == {t.id: t.model_dump() for t in originals}


def test_empty_parquet_export_is_a_valid_file(store: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "empty.parquet"
    assert export_parquet(store, "nothing", out) == 0
    assert list(pd.read_parquet(out).columns) == PARQUET_COLUMNS


def test_bad_parquet_imports_nothing(make: Make, tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    texts = [make("a").model_dump_json(), "{not json", make("b").model_dump_json()]
    pq.write_table(pa.table({"trajectory": texts}), path)
    with _fresh(tmp_path) as fresh:
        with pytest.raises(DataError, match=r"bad\.parquet:row 2: "):
            import_parquet(fresh, path)
        assert fresh.count() == 0
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1]}), other)
    with _fresh(tmp_path, "f2") as fresh, pytest.raises(DataError, match="no 'trajectory' column"):
        import_parquet(fresh, other)


def test_parquet_without_pyarrow_says_how_to_install(
    store: SQLStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` raise ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ConfigError, match=r"pip install 'hone\[parquet\]'"):
        export_parquet(store, None, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_importing_a_file_without_trajectories_is_an_error(tmp_path: Path, text: str) -> None:
    # "imported 0 trajectories" with exit 0 hid a wrong path or a failed export.
    path = tmp_path / "empty.jsonl"
    path.write_text(text, encoding="utf-8")
    with _fresh(tmp_path) as fresh, pytest.raises(DataError, match=r"empty\.jsonl: holds no trajectories"):
        import_jsonl(fresh, path)
