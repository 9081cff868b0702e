"""Fixtures for the viewer's tests: the store of `_web_store`, built once, and a server over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="hone view needs the hone[web] extra")
pytest.importorskip("jinja2", reason="hone view needs the hone[web] extra")

from _web_store import Served, build_store, serve


@pytest.fixture(scope="session")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fixture store, built once; tests must not write to it (see `fresh_store` for that)."""
    return build_store(tmp_path_factory.mktemp("web") / "hone.db")


@pytest.fixture(scope="session")
def pg_web_store(pg_server: Any) -> str:
    """The fixture store on the session's PostgreSQL server (tests/conftest.py)."""
    return build_store(pg_server.create_database("web"))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, web_store: str) -> str:
    """The fixture store on SQLite, then on PostgreSQL."""
    return web_store if request.param == "sqlite" else str(request.getfixturevalue("pg_web_store"))


@pytest.fixture
def fresh_store(tmp_path: Path) -> str:
    """A private copy of the fixture store, for tests that change it."""
    return build_store(tmp_path / "hone.db")


@pytest.fixture(scope="session")
def served(web_store: str) -> Iterator[Served]:
    yield from serve(web_store)
