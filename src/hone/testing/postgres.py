"""A throwaway PostgreSQL server on 127.0.0.1, for tests and benchmarks of the PostgreSQL store.

`LocalPostgres` runs the machine's own PostgreSQL binaries (Debian's `postgresql` package puts
them in `/usr/lib/postgresql/VERSION/bin`): `initdb` into a temporary directory, `pg_ctl start`
on a free port listening on 127.0.0.1 only (its socket in that directory too), trust
authentication for one user, and `stop` removes everything. PostgreSQL refuses to run as root,
so as root the server runs as the `postgres` system user, which the package creates.

    with LocalPostgres() as pg:
        url = pg.create_database("t1")   # postgresql+psycopg://hone@127.0.0.1:PORT/t1

Needs the `postgres` extra (psycopg) to create databases; the server itself needs only the binaries.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

USER = "hone"


def find_bin_dir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl` (the newest Debian version, else PATH), or None."""
    override = os.environ.get("HONE_PG_BIN")
    if override:
        return Path(override) if (Path(override) / "pg_ctl").is_file() else None
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def missing() -> str | None:
    """Why a local server cannot start here (for a test's skip reason), or None."""
    bin_dir = find_bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").is_file():
        return "no PostgreSQL server binaries (apt-get install postgresql, or set HONE_PG_BIN)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'hone[postgres]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """A PostgreSQL server of its own, started by `start()` (or `with`) and removed by `stop()`."""

    def __init__(self) -> None:
        why = missing()
        if why:
            raise RuntimeError(f"cannot start a local PostgreSQL server: {why}")
        self.bin_dir = find_bin_dir()
        self.port = 0
        self.root: Path | None = None
        self._as_postgres = os.geteuid() == 0

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` on this server."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        assert self.bin_dir is not None and self.root is not None
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")

    def start(self) -> LocalPostgres:
        self.root = Path(tempfile.mkdtemp(prefix="hone-pg-"))
        data = self.root / "data"
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync")
        self.port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.root / "log"), "-w", "-t", "60", "start")
        return self

    def create_database(self, name: str) -> str:
        """Create an empty database `name`; returns its URL."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # names come from tests, never from users
        return self.url(name)

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if (self.root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            deadline = time.monotonic() + 10
            while True:
                try:
                    shutil.rmtree(self.root)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
            self.root = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
