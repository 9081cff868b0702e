"""SQLite specifics: connection pragmas, the store's directory, and read-only opening."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hone.core import ConfigError, StoreError

HINT = "pass --store PATH or set HONE_STORE"
BUSY_TIMEOUT_MS = 30_000


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside one writer, and a killed writer leaves the database intact;
    # NORMAL sync is durable to the last checkpoint and is what makes a commit cost microseconds.
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def _enable_wal(cur: Any) -> None:
    # Switching a fresh file to WAL needs an exclusive lock, and SQLite answers "database is
    # locked" at once, without its busy handler, while another process is creating the schema;
    # so wait here, as the busy timeout would for any other statement.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def prepare_dir(path: Path) -> None:
    """Create `path`'s parent, with an error a user can act on."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (parent, *parent.parents) if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a directory" if blocker else (exc.strerror or str(exc))
        raise StoreError(f"cannot write store at {path}: {why}; {HINT}") from exc


def readonly_sqlite(path: Path) -> Engine:
    """An engine that never writes `path`: `mode=ro`, or `immutable=1` where even that cannot open.

    A WAL database needs its `-shm` file, which a read-only directory or file system cannot
    hold; `immutable=1` reads the main file alone, which is exact only when no write-ahead
    log is pending (a writer that exits cleanly leaves none).
    """
    if not path.is_file():
        raise ConfigError(f"no store at {path} (nothing has been stored there); {HINT}")
    quoted = urllib.parse.quote(str(path.resolve()))
    uri = f"file:{quoted}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as probe:
            probe.execute("SELECT 1 FROM sqlite_master LIMIT 1").close()
    except sqlite3.DatabaseError as exc:
        wal = path.with_name(path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            raise StoreError(
                f"cannot read store at {path}: it is read-only and {wal.name} holds changes not yet in it "
                f"({exc}); open it once where it is writable, or copy it with `sqlite3 {path} .backup COPY`"
            ) from exc
        uri = f"file:{quoted}?immutable=1"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute("PRAGMA query_only=ON")
        return conn

    # A queue pool: each connection is used by one thread at a time. "sqlite://" alone would get
    # SQLAlchemy's SingletonThreadPool, which past its size hands one connection to several
    # threads, and sqlite3 used from two threads at once crashes the process (`hone view`'s
    # request threads did, under load).
    return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.QueuePool)
