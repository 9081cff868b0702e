"""Data written by hone's first schema (trajectory v1, store v1) opens, migrates and loses nothing.

The fixtures were written by the v1 code: `trajectories-v1.jsonl` by `export_jsonl`'s format
(one trajectory JSON per line) and `store-v1.sql` as `sqlite3 STORE .dump` of a v1 store.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from hone.core import SCHEMA_VERSION, Trajectory
from hone.store import RunInfo, SQLStore, export_jsonl, import_jsonl

DATA = Path(__file__).resolve().parents[1] / "data"
V1_JSONL = DATA / "trajectories-v1.jsonl"
UPGRADED = {"schema_version", "meta", "steps", "op", "oracle", "stop_reason"}


def _v1_store(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript((DATA / "store-v1.sql").read_text())
    conn.close()
    return path


def _check_upgraded(by_id: dict[str, Trajectory]) -> None:
    root, partial, done = by_id["t-root"], by_id["t-partial"], by_id["t-done"]
    assert all(t.schema_version == SCHEMA_VERSION == "hone.trajectory/2" for t in by_id.values())
    assert (root.op, root.oracle, root.partial, root.meta) == ("root", True, False, {"depth": 0})
    assert (partial.op, partial.oracle, partial.partial, partial.stop_reason) == ("expand", True, True, "max_steps")
    assert partial.meta == {"visits": 2, "value": 0.5}  # op and partial moved out; the rest kept
    failed, printed = partial.steps[0].observations
    assert failed.error == "calculator: division by zero" and failed.text == "error: calculator: division by zero"
    assert printed.text == "Error rate: 3" and printed.error is None  # reads like an error; was not one
    assert (done.op, done.oracle, done.partial, done.stop_reason, done.passed) == (None, False, False, "done", True)
    assert done.steps[0].observations[0].error is not None and done.steps[1].observations == []


def test_a_v1_jsonl_export_imports_into_the_typed_fields(tmp_path: Path) -> None:
    raw = {d["id"]: d for d in map(json.loads, V1_JSONL.read_text().splitlines())}
    assert {d["schema_version"] for d in raw.values()} == {"hone.trajectory/1"}
    with SQLStore(f"sqlite:///{tmp_path / 'hone.db'}") as store:
        assert import_jsonl(store, V1_JSONL) == 3
        by_id = {t.id: t for t in store.query()}
        _check_upgraded(by_id)
        for tid, old in raw.items():  # every other field as written
            new = by_id[tid].model_dump(mode="json")
            new["prompt"] = [{k: v for k, v in m.items() if k != "error"} for m in new["prompt"]]  # v2: error=None
            assert {k: v for k, v in new.items() if k not in UPGRADED} == {
                k: v for k, v in old.items() if k not in UPGRADED
            }
            assert [len(s["observations"]) for s in new["steps"]] == [len(s["observations"]) for s in old["steps"]]
        out = tmp_path / "again.jsonl"
        export_jsonl(store, None, out)  # exported again: v2, and reads back the same
        again = {t.id: t for t in map(Trajectory.model_validate_json, out.read_text().splitlines())}
        assert again == by_id and all(json.loads(line)["schema_version"] == SCHEMA_VERSION for line in out.open())


def test_a_v1_sqlite_store_opens_and_migrates(tmp_path: Path) -> None:
    path = _v1_store(tmp_path / "v1.db")
    with SQLStore(f"sqlite:///{path}") as store:
        runs = {r.id: r for r in store.list_runs()}
        assert len(runs) == 8 and store.count() == 3
        children = store.child_runs("L")  # lineage read off v1's id suffixes, once, on migration
        assert [(r.id, r.kind) for r in children] == [
            ("L-collect-0", "loop-collect"),
            ("L-eval-0", "loop-eval"),
            ("L-grpo-1", "grpo"),
        ]
        assert runs["L-eval-x"].parent_id is None and runs["L-eval-x"].kind == "eval"  # not a loop iteration
        assert [r.id for r in store.child_runs("imp-mcts")] == ["imp-mcts-candidates"]
        assert runs["nightly-1"].kind == "other" and runs["nightly-1"].summary == {"kind": "nightly"}
        assert runs["imp-mcts-candidates"].config == {"best_run": "imp-mcts"}
        _check_upgraded({t.id: t for t in store.query()})
        store.save_run(RunInfo(id="L-eval-1", kind="loop-eval", parent_id="L", env="arith", model="micro"))
        assert [r.id for r in store.child_runs("L")][-1] == "L-eval-1"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("3",)
    conn.close()
    with SQLStore(f"sqlite:///{path}") as store:  # opening a migrated store again changes nothing
        assert len(store.child_runs("L")) == 4 and len(store.list_runs()) == 9


def test_a_v1_store_opened_read_only_is_read_as_v1(tmp_path: Path) -> None:
    path = _v1_store(tmp_path / "v1.db")
    before = path.read_bytes()
    with SQLStore(f"sqlite:///{path}", readonly=True) as store:
        runs = {r.id: r for r in store.list_runs()}  # lineage read off the ids, as migration would store it
        assert (runs["L-eval-0"].kind, runs["L-eval-0"].parent_id) == ("loop-eval", "L")
        assert store.get_run("L-grpo-1") == runs["L-grpo-1"] and runs["L-grpo-1"].parent_id == "L"
        assert [r.id for r in store.child_runs("L")] == ["L-collect-0", "L-eval-0", "L-grpo-1"]
        assert [r.id for r in store.child_runs("imp-mcts")] == ["imp-mcts-candidates"]
        assert runs["L-eval-x"].parent_id is None and runs["nightly-1"].kind == "other"
        _check_upgraded({t.id: t for t in store.query()})
    assert path.read_bytes() == before


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    path = _v1_store(tmp_path / "v1.db")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.close()
    with pytest.raises(Exception, match="newer than this hone's 3"):
        SQLStore(f"sqlite:///{path}")


def test_hone_runs_lists_a_runs_children(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hone.cli import app
    from hone.cli._common import console

    monkeypatch.setattr(console, "width", 250)  # tables fold to the terminal; read them whole

    path = _v1_store(tmp_path / "v1.db")
    runner = CliRunner()
    for _ in range(2):  # read-only on v1 (lineage read off ids), then on the migrated store
        out = runner.invoke(app, ["runs", "--parent", "L", "--store", str(path)])
        assert out.exit_code == 0, out.stderr
        assert all(f"L-{c}" in out.stdout for c in ("eval-0", "collect-0", "grpo-1")) and "loop-eval" in out.stdout
        assert "nightly-1" not in out.stdout and "L-eval-x" not in out.stdout
        SQLStore(f"sqlite:///{path}").close()
    bad = runner.invoke(app, ["runs", "--parent", "nope", "--store", str(path)])
    assert bad.exit_code != 0 and "no runs with parent 'nope'" in bad.stderr
