"""Run leases on a real SQLite file and a real PostgreSQL database: one holder at a time, dead
holders never block for good."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from hone.store import LeaseError, SQLStore, open_store
from hone.store._lease import _node, pid_alive
from hone.store._tables import leases


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SQLStore:
    if request.param == "postgresql":
        return open_store(request.getfixturevalue("pg_url"))
    return open_store(tmp_path / "hone.db")


def _plant(store: SQLStore, run_id: str, *, pid: int, node: str, expires_in: float, host: str = "elsewhere") -> None:
    """A lease row as another process would have left it."""
    now = time.time()
    with store._engine.begin() as conn:
        conn.execute(
            leases.insert().values(
                run_id=run_id,
                owner="other",
                pid=pid,
                host=host,
                node=node,
                acquired_at=now - 5,
                expires_at=now + expires_in,
            )
        )


def test_a_held_run_is_refused_naming_the_holder(store: SQLStore) -> None:
    with store.lease("r1"):
        with pytest.raises(LeaseError) as info:
            store.lease("r1")
        msg = str(info.value)
        assert "'r1'" in msg and f"pid {os.getpid()}" in msg and socket.gethostname() in msg
        assert "\n" not in msg and "--run-id" in msg
        with store.lease("r2"):  # other runs are free
            pass
    with store.lease("r1"):  # released on exit
        pass
    assert store.lease_holder("r1") is None


def test_a_live_lease_elsewhere_is_refused_until_it_expires(store: SQLStore) -> None:
    _plant(store, "far", pid=1, node="other-host:boot:ns", expires_in=30)
    with pytest.raises(LeaseError, match="host elsewhere"):
        store.lease("far")
    with store._engine.begin() as conn:  # its holder stopped renewing a while ago
        conn.execute(leases.update().where(leases.c.run_id == "far").values(expires_at=time.time() - 1))
    with store.lease("far") as keeper:
        held = store.lease_holder("far")
        assert held is not None and held["owner"] == keeper.lease.owner and held["pid"] == os.getpid()


def test_a_dead_holder_on_this_machine_frees_the_run_at_once(store: SQLStore) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(proc.stdout)
    assert not pid_alive(dead)
    _plant(store, "killed", pid=dead, node=_node(), expires_in=3600, host=socket.gethostname())
    with store.lease("killed"):
        pass
    # the same pid on another machine means another process: only expiry frees it
    _plant(store, "killed-far", pid=dead, node="other-host:boot:ns", expires_in=3600)
    with pytest.raises(LeaseError):
        store.lease("killed-far")


def test_a_live_pid_on_this_machine_is_not_taken(store: SQLStore) -> None:
    _plant(store, "alive", pid=os.getppid(), node=_node(), expires_in=3600, host=socket.gethostname())
    with pytest.raises(LeaseError, match=f"pid {os.getppid()}"):
        store.lease("alive")


def test_renewal_extends_and_notices_a_takeover(store: SQLStore) -> None:
    keeper = store.lease("hb", ttl_s=0.4)  # renewed every 0.1 s
    try:
        first = keeper.lease.expires_at
        deadline = time.monotonic() + 20
        while keeper.lease.expires_at == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert keeper.lease.expires_at > first and not keeper.lost
        with store._engine.begin() as conn:  # another process took it over after an expiry
            conn.execute(leases.update().where(leases.c.run_id == "hb").values(owner="thief"))
        while not keeper.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert keeper.lost
    finally:
        keeper.close()
    held = store.lease_holder("hb")
    assert held is not None and held["owner"] == "thief"  # closing never releases someone else's lease


def test_the_lease_table_is_added_to_an_older_store(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    open_store(path).close()
    with sa.create_engine(f"sqlite:///{path}").begin() as conn:
        conn.exec_driver_sql("DROP TABLE leases")
    with open_store(path) as st, st.lease("x"):
        assert st.lease_holder("x") is not None


def test_a_readonly_store_cannot_lease(store: SQLStore) -> None:
    with open_store(store.url, readonly=True) as ro, pytest.raises(Exception, match="read-only"):
        ro.lease("x")
