"""Exports in depth: Parquet's nested columns field by field, times in UTC, row groups, how each
format reads the store (stored JSON as is where the store has it, one run only), writes in batches,
write failures that leave nothing behind, and UTF-8 files whatever the locale (written against
mutation survivors of the export-import group)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _store_factory import make_traj, utf8_round_trip

from hone.core import ErrorInfo, Feedback, Ledger, StoreError, Trajectory
from hone.store import (
    SQLStore,
    _export,
    _export_formats,
    export_jsonl,
    export_parquet,
    import_jsonl,
    import_parquet,
    open_store,
)


def _one_row(traj: Trajectory, tmp_path: Path) -> dict[str, object]:
    with open_store(tmp_path / "one.db") as st:
        st.put(traj)
        out = tmp_path / "one.parquet"
        assert export_parquet(st, traj.run_id, out) == 1
    [row] = pq.read_table(out).to_pylist()
    return row


def test_parquet_feedback_usage_and_error_keep_every_field(tmp_path: Path) -> None:
    traj = make_traj("n", run_id="n", status="error")
    traj.error = ErrorInfo(type="ParseError", message="broken tool call", step_index=0, raw='{"x": ')
    traj.steps[0].feedback = [
        Feedback(source="peer", name="calc", score=0.25, passed=False, text="off by one", evidence={"got": 5}),
        Feedback(source="judge", name="late", score=0.75, text="see step 4", visibility="hidden", step_index=4),
    ]
    traj.usage = Ledger(calls=3, prompt_tokens=41, completion_tokens=9, cost_usd=0.125, tool_calls=2, env_steps=5)
    traj.usage.seconds = 2.5
    row = _one_row(traj, tmp_path)
    assert row["feedback"] == [
        # the trajectory's own (make_traj's): the hidden verdict, then a critique naming step 0
        {"scope": "trajectory", "step_index": None, "source": "verifier", "name": "exact", "score": 1.0,
         "passed": True, "visibility": "hidden", "text": None, "evidence": None},
        {"scope": "trajectory", "step_index": 0, "source": "critic", "name": "style", "score": None,
         "passed": None, "visibility": "public", "text": "fine", "evidence": None},
        # the step's: its own index unless the item names another
        {"scope": "step", "step_index": 0, "source": "peer", "name": "calc", "score": 0.25, "passed": False,
         "visibility": "public", "text": "off by one", "evidence": '{"got": 5}'},
        {"scope": "step", "step_index": 4, "source": "judge", "name": "late", "score": 0.75, "passed": None,
         "visibility": "hidden", "text": "see step 4", "evidence": None},
    ]  # fmt: skip
    assert row["usage"] == {
        "calls": 3, "prompt_tokens": 41, "completion_tokens": 9, "cost_usd": 0.125, "tool_calls": 2,
        "env_steps": 5, "seconds": 2.5,
    }  # fmt: skip
    assert row["error"] == {"type": "ParseError", "message": "broken tool call", "step_index": 0, "raw": '{"x": '}
    assert (row["error_type"], row["error_message"]) == ("ParseError", "broken tool call")


def test_parquet_times_are_utc_instants(tmp_path: Path) -> None:
    naive = datetime(2025, 3, 1, 12, 0)  # hone's stores read naive times as UTC
    plus_two = datetime(2025, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    row = _one_row(make_traj("z", run_id="z", created_at=naive, finished_at=plus_two), tmp_path)
    assert row["created_at"] == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert row["finished_at"] == datetime(2025, 3, 1, 12, 30, tzinfo=UTC)  # the same instant, not 14:30 UTC
    assert row["created_at"].tzinfo is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("n", "groups"), [(4, [2, 2]), (5, [2, 2, 1]), (0, [])])
def test_parquet_row_groups_hold_a_batch_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int, groups: list[int]
) -> None:
    monkeypatch.setattr(_export_formats, "_BATCH", 2)
    with open_store(tmp_path / "g.db") as st:
        st.put_many([make_traj(f"g{i}", run_id="g", minute=i) for i in range(n)])
        out = tmp_path / "g.parquet"
        assert export_parquet(st, "g", out) == n
    pf = pq.ParquetFile(out)
    assert [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)] == groups
    assert pf.schema_arrow == _export_formats._parquet_schema(pa)  # empty or not
    assert [t["task_id"] for t in pq.read_table(out).to_pylist()] == [f"g{i}" for i in range(n)]


class JsonOnly:
    """A SQL store whose `query` fails: exports that can stream its stored JSON must not parse it."""

    def __init__(self, inner: SQLStore) -> None:
        self.inner = inner

    def query_json(self, **kw: object) -> Iterator[str]:
        return self.inner.query_json(**kw)  # type: ignore[arg-type]

    def query(self, **kw: object) -> Iterator[Trajectory]:
        raise AssertionError("parsed the stored JSON instead of streaming it")


class QueryOnly:
    """A store without `query_json` (the protocol's `query` only)."""

    def __init__(self, inner: SQLStore) -> None:
        self.inner = inner

    def query(self, **kw: object) -> Iterator[Trajectory]:
        return self.inner.query(**kw)  # type: ignore[arg-type]


@pytest.fixture
def two_runs(tmp_path: Path) -> Iterator[SQLStore]:
    with open_store(tmp_path / "two.db") as st:
        st.put_many([make_traj("a", run_id="mine"), make_traj("b", run_id="mine", minute=1)])
        st.put(make_traj("c", run_id="other"))
        yield st


def test_a_sql_store_exports_its_stored_json_as_is(two_runs: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "mine.jsonl"
    assert export_jsonl(JsonOnly(two_runs), "mine", out) == 2  # type: ignore[arg-type]
    assert out.read_text(encoding="utf-8").splitlines() == list(two_runs.query_json(run_id="mine"))
    assert export_parquet(JsonOnly(two_runs), "mine", tmp_path / "mine.parquet") == 2  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_store_without_stored_json_exports_one_run_or_all(two_runs: SQLStore, tmp_path: Path, fmt: str) -> None:
    export = export_jsonl if fmt == "jsonl" else export_parquet
    load = import_jsonl if fmt == "jsonl" else import_parquet
    for run, ids in (("mine", {"a", "b"}), (None, {"a", "b", "c"})):
        out = tmp_path / f"{run}.{fmt}"
        assert export(QueryOnly(two_runs), run, out) == len(ids)  # type: ignore[arg-type]
        with open_store(tmp_path / f"{run}-{fmt}.db") as fresh:
            assert load(fresh, out) == len(ids)
            assert {t.task_id for t in fresh.query()} == ids
            assert [t.model_dump() for t in fresh.query(run_id="mine")] == [
                t.model_dump() for t in two_runs.query(run_id="mine")
            ]


class Batches:
    """A SQL store that records the size of each `put_many` and refuses one-by-one `put`."""

    def __init__(self, inner: SQLStore) -> None:
        self.inner, self.sizes = inner, list[int]()

    def put_many(self, trajs: list[Trajectory]) -> int:
        self.sizes.append(len(trajs))
        return self.inner.put_many(trajs)

    def put(self, traj: Trajectory) -> bool:
        raise AssertionError("stored one by one where put_many exists")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_an_import_stores_in_batches_with_put_many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_export, "_BATCH", 2)
    path = tmp_path / "five.jsonl"
    path.write_text("".join(make_traj(f"f{i}", run_id="five").model_dump_json() + "\n" for i in range(5)))
    with open_store(tmp_path / "b.db") as st:
        store = Batches(st)
        assert import_jsonl(store, path) == 5  # type: ignore[arg-type]
        assert store.sizes == [2, 2, 1]
        assert import_jsonl(store, path) == 0  # all stored already
        assert st.count("five") == 5


def test_an_export_makes_the_folders_it_needs(two_runs: SQLStore, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "c" / "mine.jsonl"
    assert export_jsonl(two_runs, "mine", out) == 2
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2


def test_a_failed_write_says_why_and_leaves_nothing(two_runs: SQLStore, tmp_path: Path) -> None:
    outputs = tmp_path / "out"
    folder = outputs / "taken"
    folder.mkdir(parents=True)
    with pytest.raises(StoreError) as info:
        export_jsonl(two_runs, "mine", folder)  # a folder where the file should go
    assert str(info.value) == f"cannot write {folder}: Is a directory"
    assert [p.name for p in outputs.iterdir()] == ["taken"]  # the temporary file is gone

    class Failing(JsonOnly):
        def query_json(self, **kw: object) -> Iterator[str]:
            yield from super().query_json(**kw)
            raise OSError("write failed: the device went away")  # no errno, as pyarrow's IO errors

    out = outputs / "never.jsonl"
    with pytest.raises(StoreError) as info:
        export_jsonl(Failing(two_runs), "mine", out)  # type: ignore[arg-type]
    assert str(info.value) == f"cannot write {out}: write failed: the device went away"
    assert [p.name for p in outputs.iterdir()] == ["taken"]


_ASCII_LOCALE = """
import locale, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from _store_factory import utf8_round_trip

assert locale.getpreferredencoding(False).lower() in ("ascii", "ansi_x3.4-1968"), locale.getpreferredencoding(False)
print(*utf8_round_trip(Path(sys.argv[1])))
"""


def test_files_are_utf8_whatever_the_locale(tmp_path: Path) -> None:
    assert utf8_round_trip(tmp_path / "here") == [1, 1, 1, True]
    # Python in the C locale without coercion or UTF-8 mode opens text files as ASCII by default
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run(
        [sys.executable, "-c", _ASCII_LOCALE, str(tmp_path / "ascii"), str(Path(__file__).parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "1", "1", "True"]
    for name in ("u.jsonl", "u.openai.jsonl"):  # the same records, in UTF-8, as under the test's own locale
        here, under_c = ((tmp_path / where / name).read_bytes() for where in ("here", "ascii"))
        assert "✓".encode() in here and "✓".encode() in under_c
        assert {**json.loads(under_c), "id": ""} == {**json.loads(here), "id": ""}  # ids are minted per put
