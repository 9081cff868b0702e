"""SQLStore on real SQLite files, opened by path and by URL, and on a real PostgreSQL server."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from hone.core import ConfigError, StoreError, Trajectory
from hone.store import RunInfo, SQLStore, TrajectoryQuery, TrajectoryStore, open_store

Make = Callable[..., Trajectory]


def _sqlite_path(store: SQLStore) -> str:
    if store.path is None:
        pytest.skip("an SQLite file's own behaviour")
    return str(store.path)


class _Raw:
    """Plain SQL on the store's own database, whatever it is (`?` placeholders, as sqlite3's)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sa.CursorResult[Any]:
        names = iter(range(len(params)))
        text = re.sub(r"\?", lambda _: f":p{next(names)}", sql)
        return self.conn.execute(sa.text(text), {f"p{i}": v for i, v in enumerate(params)})


@contextmanager
def _db(store: SQLStore) -> Iterator[_Raw]:
    with store.engine.begin() as conn:
        yield _Raw(conn)


def test_is_a_trajectory_store(store: SQLStore) -> None:
    assert isinstance(store, TrajectoryStore)
    assert store.url.startswith(("sqlite:///", "postgresql+psycopg://"))


def test_put_get_round_trip(store: SQLStore, make: Make) -> None:
    traj = make("t1", parent_ids=["p1", "p2"], strategy="best_of_n", tags=["x"], meta={"k": [1, 2]})
    assert store.put(traj) is True
    got = store.get(traj.id)
    assert got == traj
    assert got is not None and got.model_dump() == traj.model_dump()
    assert store.get("no-such-id") is None


def test_duplicate_key_returns_false_and_keeps_the_first(store: SQLStore, make: Make) -> None:
    first = make("t1", sample=0, passed=True)
    assert store.put(first)
    rival = make("t1", sample=0, passed=False, reward=0.25)  # same key, new id and content
    assert rival.id != first.id
    assert store.put(rival) is False
    assert store.put(first) is False  # the very same trajectory again
    assert store.get(first.id) == first
    assert store.get(rival.id) is None
    assert store.count("run-a") == 1
    with _db(store) as db:  # the rival's feedback rows did not leak in
        assert db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 2


def test_same_task_other_sample_or_run_is_new(store: SQLStore, make: Make) -> None:
    assert store.put(make("t1", sample=0))
    assert store.put(make("t1", sample=1))
    assert store.put(make("t1", sample=0, run_id="run-b"))
    assert store.count() == 3
    assert store.count("run-a") == 2


def test_done_keys(store: SQLStore, make: Make) -> None:
    for task in ("a", "b"):
        for sample in (0, 1):
            store.put(make(task, sample))
    store.put(make("c", 0, run_id="other"))
    assert store.done_keys("run-a") == {("a", 0), ("a", 1), ("b", 0), ("b", 1)}
    assert store.done_keys("other") == {("c", 0)}
    assert store.done_keys("missing") == set()


def test_columns_and_feedback_rows(store: SQLStore, make: Make) -> None:
    traj = make("t1", passed=False, subset="L2", status="truncated")
    store.put(traj)
    with _db(store) as db:
        row = db.execute(
            "SELECT run_id, task_id, sample, env, split, subset, status, reward, passed, n_steps, calls, tokens"
            " FROM trajectories WHERE id = ?",
            (traj.id,),
        ).fetchone()
        assert row == ("run-a", "t1", 0, "arith", "test", "L2", "truncated", 0.0, 0, 1, 1, 48)
        fb = db.execute(
            "SELECT idx, source, name, score, passed, visibility, step_index, text FROM feedback"
            " WHERE trajectory_id = ? ORDER BY idx",
            (traj.id,),
        ).fetchall()
        assert fb == [
            (0, "verifier", "exact", 0.0, 0, "hidden", None, None),
            (1, "critic", "style", None, None, "public", 0, "fine"),
        ]


def test_ungraded_trajectory_has_null_passed(store: SQLStore, make: Make) -> None:
    traj = make("t1").model_copy(update={"feedback": []})
    store.put(traj)
    with _db(store) as db:
        assert db.execute("SELECT passed FROM trajectories").fetchone() == (None,)


def test_query_filters(store: SQLStore, make: Make) -> None:
    store.put(make("a", minute=3, reward=0.5))
    store.put(make("b", minute=1, reward=1.0))
    store.put(make("c", minute=2, status="error", passed=False))
    store.put(make("d", minute=0, env="gsm8k", split="train", run_id="run-b", reward=0.0))

    def ids(*args: TrajectoryQuery, **kw: object) -> list[str]:
        return [t.task_id for t in store.query(*args, **kw)]

    assert ids() == ["d", "b", "c", "a"]  # by created_at, whatever the insertion order
    assert ids(run_id="run-a") == ["b", "c", "a"]
    assert ids(env="gsm8k") == ["d"]
    assert ids(split="train") == ["d"]
    assert ids(task_id="c") == ["c"]
    assert ids(status="error") == ["c"]
    assert ids(min_reward=0.5) == ["b", "a"]
    assert ids(max_reward=0.0) == ["d", "c"]
    assert ids(min_reward=0.1, max_reward=0.9) == ["a"]
    assert ids(limit=2) == ["d", "b"]
    assert ids(TrajectoryQuery(run_id="run-a", limit=1)) == ["b"]
    assert ids(TrajectoryQuery(run_id="run-a"), run_id="run-b") == ["d"]  # keywords override
    with pytest.raises(ConfigError, match="unknown query filter"):
        store.query(colour="red")


def test_query_ties_and_paging(store: SQLStore, make: Make) -> None:
    # 1203 rows sharing 3 timestamps: pages of 500 must neither skip nor repeat across ties.
    trajs = [make(f"t{i:04d}", minute=i % 3) for i in range(1203)]
    assert store.put_many(trajs) == 1203
    expected = [t.id for t in sorted(trajs, key=lambda t: (t.created_at, t.id))]
    assert [t.id for t in store.query(run_id="run-a")] == expected
    assert [t.id for t in store.query(limit=777)] == expected[:777]
    assert list(store.query_json(limit=1)) == [store.get(expected[0]).model_dump_json()]  # type: ignore[union-attr]


def test_put_many_counts_only_new(store: SQLStore, make: Make) -> None:
    old = [make(f"t{i}") for i in range(3)]
    assert store.put_many(old) == 3
    rival = make("t0")  # stored key, new id
    twin_a, twin_b = make("t9"), make("t9")  # same key twice within one batch
    assert store.put_many([*old, rival, twin_a, twin_b, make("t10")]) == 2
    assert store.count() == 5
    assert store.get(twin_a.id) is not None and store.get(twin_b.id) is None
    assert store.put_many([]) == 0


def test_delete_by_status_and_run(store: SQLStore, make: Make) -> None:
    store.put_many([make("a"), make("b", status="error", passed=False), make("c", status="error", passed=False)])
    store.put(make("x", run_id="run-b", status="error", passed=False))
    assert store.delete("run-a", status="error") == 2
    assert {t.task_id for t in store.query(run_id="run-a")} == {"a"}
    assert store.count("run-b") == 1
    with _db(store) as db:
        assert db.execute("SELECT count(*) FROM feedback").fetchone()[0] == 4  # a's two and x's two
    assert store.delete("run-a") == 1
    assert store.delete("run-a") == 0
    assert store.done_keys("run-a") == set()


def test_runs(store: SQLStore) -> None:
    old = RunInfo(id="r-old", env="arith", model="m", created_at=datetime(2025, 1, 1, tzinfo=UTC), config={"n": 5})
    new = RunInfo(id="r-new", kind="loop-collect", parent_id="r-old", env="gsm8k", model="m2", split="test")
    other = RunInfo(id="r-other", kind="loop-eval", parent_id="r-new", env="gsm8k", model="m2")
    store.save_run(old)
    store.save_run(new)
    store.save_run(other)
    assert store.get_run("r-old") == old and store.get_run("r-new") == new
    assert store.child_runs("r-old") == [new] and store.child_runs("r-new") == [other]
    assert store.child_runs("r-other") == [] and store.child_runs("missing") == []
    assert store.get_run("r-old") == old
    assert store.get_run("missing") is None
    assert [r.id for r in store.list_runs()] == ["r-other", "r-new", "r-old"]
    done = old.model_copy(update={"status": "done", "summary": {"accuracy": 0.5, "by": {"L1": [1, 2]}}})
    store.save_run(done)
    assert store.get_run("r-old") == done
    assert len(store.list_runs()) == 3


def test_run_ids(store: SQLStore, make: Make) -> None:
    store.put_many([make("a", run_id="r2"), make("b", run_id="r1"), make("c", run_id="r2")])
    assert store.run_ids() == ["r1", "r2"]


def test_reopen_persists_and_uses_wal(store_location: str, make: Make) -> None:
    traj = make("t1")
    with open_store(store_location) as s:
        s.put(traj)
        path = _sqlite_path(s)
    with open_store(store_location) as s:
        assert s.get(traj.id) == traj
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)


def test_newer_schema_version_is_refused(tmp_path: object, store_location: str) -> None:
    with open_store(store_location) as s, _db(s) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(store_location)


def test_store_engine_is_reused(store: SQLStore, make: Make) -> None:
    # put() must not open an engine per call: count connections made by the pool.
    engine: sa.Engine = store._engine
    connects: list[object] = []
    sa.event.listen(engine, "connect", lambda *a: connects.append(a))
    for i in range(20):
        store.put(make(f"t{i}"))
    assert len(connects) <= 1


def test_put_many_falls_back_when_a_row_appears_after_its_check(
    store: SQLStore, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process may store a key between put_many's check and its insert: simulate it
    # by blinding the check, so the batch insert meets the unique constraint.
    taken = make("t0")
    assert store.put(taken)
    monkeypatch.setattr(store, "_select", lambda stmt: [])
    assert store.put_many([make("t0"), make("t1"), make("t2")]) == 2
    monkeypatch.undo()
    assert store.count() == 3
    assert [t.id for t in store.query(task_id="t0")] == [taken.id]
