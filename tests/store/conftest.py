"""Fixtures for store tests: a trajectory factory and a store opened by path, by SQLite URL, or on
a real PostgreSQL server the session starts (`pg_url`, from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _store_factory import make_traj

from hone.core import Trajectory
from hone.store import SQLStore, open_store


@pytest.fixture
def make() -> Callable[..., Trajectory]:
    return make_traj


@pytest.fixture(params=["path", "url", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same store tests run on a plain path, an `sqlite:///` URL (with a missing directory) and
    a PostgreSQL database."""
    if request.param == "path":
        return str(tmp_path / "by-path" / "hone.db")
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path}/by-url/nested/hone.db"


@pytest.fixture
def store(store_location: str) -> Iterator[SQLStore]:
    with open_store(store_location) as s:
        yield s
