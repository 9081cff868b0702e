"""Run leases: one process works on a run id at a time, across processes and hosts.

A lease is a row in the `leases` table (run id, a random owner token, pid, host, expiry),
taken in one transaction: no row, an expired row, or a row whose process is gone (same
machine, pid no longer alive) may be taken; anything else is refused with a `LeaseError`
naming the holder. The holder renews the expiry from a background thread, so a process
killed on another host blocks the run for at most one TTL; on the same machine a dead pid
frees it at once. Plain rows and transactions work on PostgreSQL as on SQLite. Expiry uses
the holders' clocks, so hosts sharing a server store need clocks within a TTL of each other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from hone.core import StoreError

from ._tables import leases

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 60.0
"""Seconds a lease lives without renewal; the holder renews it every quarter of that."""


class LeaseError(StoreError):
    """The run is leased by another live process (or this process lost its lease)."""

    kind = "LeaseError"


def _node() -> str:
    """Where a pid names one process: host, boot and pid namespace (containers share hostnames)."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return ":".join(parts)[:256]


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live (not zombie) process on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"  # killed but not yet reaped: gone
    return True


@dataclass
class Lease:
    """A held lease. `lost` is set when a renewal finds another owner (or time ran out)."""

    run_id: str
    owner: str
    ttl_s: float
    expires_at: float
    lost: threading.Event = field(default_factory=threading.Event)


def _describe(row: Any, now: float) -> str:
    since = datetime.fromtimestamp(row.acquired_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    left = max(0, round(row.expires_at - now))
    return f"pid {row.pid} on host {row.host} (since {since}; the lease expires {left} s after its last renewal)"


def acquire(engine: Engine, run_id: str, ttl_s: float = DEFAULT_TTL_S) -> Lease:
    """Take the lease on `run_id` or raise `LeaseError` naming the live holder."""
    if ttl_s <= 0:
        raise ValueError(f"lease ttl must be > 0, got {ttl_s}")
    owner = uuid.uuid4().hex
    me: dict[str, Any] = {"owner": owner, "pid": os.getpid(), "host": socket.gethostname()[:256], "node": _node()}
    for _ in range(3):
        now = time.time()
        values = {**me, "acquired_at": now, "expires_at": now + ttl_s}
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")  # read and take under one write lock
                found = conn.execute(sa.select(leases).where(leases.c.run_id == run_id).with_for_update()).first()
                if found is None:
                    conn.execute(leases.insert().values(run_id=run_id, **values))
                elif found.expires_at < now or (found.node == me["node"] and not pid_alive(found.pid)):
                    stmt = leases.update().where(leases.c.run_id == run_id, leases.c.owner == found.owner)
                    if conn.execute(stmt.values(**values)).rowcount != 1:
                        continue  # taken by someone else in between (a server database): look again
                    log.info("run %s: took over the lease of %s", run_id, _describe(found, now))
                else:
                    raise LeaseError(
                        f"run {run_id!r} is in use by {_describe(found, now)}; wait for it to finish, "
                        "stop that process, or pick another --run-id"
                    )
        except IntegrityError:  # another process inserted the row first: look again
            continue
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot take the lease on run {run_id!r}: {exc.__class__.__name__}: {exc}") from exc
        return Lease(run_id, owner, ttl_s, now + ttl_s)
    raise LeaseError(f"run {run_id!r}: could not take its lease (other processes keep taking it); try again")


def renew(engine: Engine, lease: Lease) -> bool:
    """Push the expiry forward; False (and `lease.lost` set) if another process holds it now."""
    now = time.time()
    stmt = (
        leases.update()
        .where(leases.c.run_id == lease.run_id, leases.c.owner == lease.owner)
        .values(expires_at=now + lease.ttl_s)
    )
    with engine.begin() as conn:
        held = conn.execute(stmt).rowcount == 1
    if held:
        lease.expires_at = now + lease.ttl_s
    else:
        lease.lost.set()
    return held


def release(engine: Engine, lease: Lease) -> None:
    """Give the lease up (only if still ours)."""
    with engine.begin() as conn:
        conn.execute(leases.delete().where(leases.c.run_id == lease.run_id, leases.c.owner == lease.owner))


class LeaseKeeper:
    """Holds a lease while a run works: renews it from a daemon thread, releases it on exit.

    A thread, not a coroutine, so a busy event loop (a local model generating) cannot starve
    the renewals. A renewal that fails for a database error is retried at the next tick; the
    lease counts as lost once its expiry passes without a successful renewal.
    """

    def __init__(self, engine: Engine, run_id: str, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._engine = engine
        self.lease = acquire(engine, run_id, ttl_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"hone-lease-{run_id}", daemon=True)
        self._thread.start()

    @property
    def lost(self) -> bool:
        return self.lease.lost.is_set()

    def _beat(self) -> None:
        lease = self.lease
        while not self._stop.wait(lease.ttl_s / 4):
            try:
                if not renew(self._engine, lease):
                    log.warning("run %s: lost its lease to another process", lease.run_id)
                    return
            except SQLAlchemyError as exc:
                log.warning("run %s: lease renewal failed: %s", lease.run_id, exc)
                if time.time() > lease.expires_at:
                    lease.lost.set()
                    return

    def close(self) -> None:
        """Stop renewing and release the lease (a failure to release only delays the next taker)."""
        self._stop.set()
        self._thread.join()
        try:
            release(self._engine, self.lease)
        except SQLAlchemyError as exc:
            log.warning("run %s: could not release its lease: %s", self.lease.run_id, exc)

    def __enter__(self) -> LeaseKeeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
