"""Several processes on one store (an SQLite file, a PostgreSQL database): idempotent concurrent
puts, one lease holder, and a writer killed mid-run."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _store_factory import make_traj

from hone.store import LeaseError, SQLStore

_CTX = mp.get_context("spawn")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for a new store; "sqlite" ones are files under tmp_path."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path}/shared.db"


def _scalar(url: str, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()
    finally:
        engine.dispose()


def _put_range(url: str, tag: str, start: int, stop: int, barrier: Any, results: Any) -> None:
    with SQLStore(url) as store:
        barrier.wait()  # both processes hold an open store before either writes
        added = sum(store.put(make_traj(f"t{i:03d}", run_id="shared", meta={"by": tag})) for i in range(start, stop))
        # A second pass over the whole range through put_many: every key is now taken by someone.
        again = store.put_many(make_traj(f"t{i:03d}", run_id="shared") for i in range(0, 90))
        results.put((tag, added, again))


def _put_forever(url: str) -> None:
    with SQLStore(url) as store:
        for i in range(1_000_000):
            store.put(make_traj(f"t{i}", run_id="killed"))


def _join(procs: list[Any]) -> None:
    # Results are tiny, so joining before reading the queue cannot block on a full pipe;
    # a worker that raised shows here at once as a non-zero exit code. Any worker still alive
    # afterwards (its peer died at the barrier) is killed, so a failure never hangs the session.
    try:
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0, f"worker exited with {p.exitcode}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)


def test_two_processes_put_overlapping_keys_once(backend: str) -> None:
    url = backend
    SQLStore(url).close()  # schema exists before the race; the race is on rows
    barrier, results = _CTX.Barrier(2), _CTX.Queue()
    procs = [
        _CTX.Process(daemon=True, target=_put_range, args=(url, "A", 0, 60, barrier, results)),
        _CTX.Process(daemon=True, target=_put_range, args=(url, "B", 30, 90, barrier, results)),
    ]
    for p in procs:
        p.start()
    _join(procs)
    got = {tag: (added, again) for tag, added, again in (results.get(timeout=5) for _ in procs)}
    # Each key was stored by exactly one call in one process; every other attempt said False.
    assert sum(added + again for added, again in got.values()) == 90
    with SQLStore(url) as store:
        assert store.count("shared") == 90
        assert store.done_keys("shared") == {(f"t{i:03d}", 0) for i in range(90)}
    assert _scalar(url, "SELECT count(*) FROM feedback") == 180


def test_fresh_store_opened_by_two_processes_at_once(backend: str) -> None:
    url = backend  # no schema yet: both race in create_all
    barrier, results = _CTX.Barrier(2), _CTX.Queue()
    procs = [_CTX.Process(daemon=True, target=_put_range, args=(url, tag, 0, 5, barrier, results)) for tag in "AB"]
    for p in procs:
        p.start()
    _join(procs)
    totals = [results.get(timeout=5)[1] for _ in procs]
    assert sum(totals) == 5


def test_killed_writer_leaves_a_consistent_store(backend: str) -> None:
    url = backend
    SQLStore(url).close()
    proc = _CTX.Process(daemon=True, target=_put_forever, args=(url,))
    proc.start()
    deadline = time.monotonic() + 60
    with SQLStore(url) as reader:
        while reader.count("killed") < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
    if url.startswith("sqlite"):
        assert _scalar(url, "PRAGMA integrity_check") == "ok"
    n = _scalar(url, "SELECT count(*) FROM trajectories")
    per_traj = "SELECT count(*) FROM feedback f WHERE f.trajectory_id = t.id"
    orphans = _scalar(url, f"SELECT count(*) FROM trajectories t WHERE ({per_traj}) != 2")
    assert n >= 200 and orphans == 0  # every trajectory committed whole, with its feedback
    with SQLStore(url) as store:  # and the store is writable again
        assert store.put(make_traj("after", run_id="killed"))


def _put_all(url: str, tag: str, barrier: Any, results: Any) -> None:
    with SQLStore(url) as store:
        barrier.wait()
        # Every writer offers every key, in its own order, one by one and in batches.
        keys = list(range(200))
        shift = int(tag) * 25
        order = keys[shift:] + keys[:shift]
        added = sum(store.put(make_traj(f"t{i:03d}", run_id="many", meta={"by": tag})) for i in order[:100])
        added += store.put_many(make_traj(f"t{i:03d}", run_id="many", meta={"by": tag}) for i in order[100:])
        results.put((tag, added))


def test_eight_writers_store_every_key_once(backend: str) -> None:
    url = backend
    SQLStore(url).close()
    barrier, results = _CTX.Barrier(8), _CTX.Queue()
    procs = [_CTX.Process(daemon=True, target=_put_all, args=(url, str(i), barrier, results)) for i in range(8)]
    for p in procs:
        p.start()
    _join(procs)
    added = dict(results.get(timeout=5) for _ in procs)
    assert sum(added.values()) == 200  # each key stored by exactly one writer's one call
    with SQLStore(url) as store:
        assert store.done_keys("many") == {(f"t{i:03d}", 0) for i in range(200)}
    assert _scalar(url, "SELECT count(*) FROM feedback") == 400
    assert _scalar(url, "SELECT count(DISTINCT run_id || task_id) FROM trajectories") == 200


def _try_lease(url: str, barrier: Any, results: Any) -> None:
    with SQLStore(url) as store:
        barrier.wait()
        try:
            keeper = store.lease("contested")
        except LeaseError:
            results.put("refused")
            return
        results.put("held")
        time.sleep(2)  # hold it while the others try
        keeper.close()


def test_one_of_six_processes_gets_a_lease(backend: str) -> None:
    url = backend
    SQLStore(url).close()
    barrier, results = _CTX.Barrier(6), _CTX.Queue()
    procs = [_CTX.Process(daemon=True, target=_try_lease, args=(url, barrier, results)) for _ in range(6)]
    for p in procs:
        p.start()
    _join(procs)
    assert sorted(results.get(timeout=5) for _ in procs) == ["held"] + ["refused"] * 5
