"""Fixtures every test directory may use: a real PostgreSQL server for the session (`pg_server`,
started by `hone.testing.postgres.LocalPostgres` on 127.0.0.1 and removed afterwards), a fresh
database on it per test (`pg_url`), and a local Ray cluster per test module (`ray_cluster`).
Where the server binaries or psycopg are missing, tests using them skip with the reason, unless
HONE_REQUIRE_POSTGRES=1 (set by .ci/run), where they fail. A test that hangs past its timeout and
swallows the timeout's signal ends the run, named (`timeout_backstop`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from hone.testing import postgres

PG_MISSING = postgres.missing()
if PG_MISSING and os.environ.get("HONE_REQUIRE_POSTGRES") == "1":
    raise RuntimeError(f"PostgreSQL tests are required here (HONE_REQUIRE_POSTGRES=1) but {PG_MISSING}")
_DATABASES = itertools.count()
pytest_plugins = ["timeout_backstop"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.LocalPostgres]:
    """One PostgreSQL server for the session, on 127.0.0.1; each test takes a fresh database."""
    if PG_MISSING:
        pytest.skip(f"PostgreSQL store tests skipped: {PG_MISSING}")
    with postgres.LocalPostgres() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: postgres.LocalPostgres) -> str:
    """A fresh, empty database on the session's server."""
    return pg_server.create_database(f"t{next(_DATABASES)}")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray cluster for the module (2 CPUs, no dashboard); executors in it reuse it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
