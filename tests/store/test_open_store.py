"""Where the store lives, and the errors when it cannot live there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hone.core import StoreError
from hone.store import open_store, store_url


def test_default_is_dot_hone_under_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HONE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    with open_store() as s:
        assert s.path == tmp_path / ".hone" / "hone.db"
    assert (tmp_path / ".hone" / "hone.db").is_file()


def test_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HONE_STORE", str(tmp_path / "env" / "x.db"))
    with open_store() as s:
        assert s.path == tmp_path / "env" / "x.db"


def test_argument_beats_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HONE_STORE", str(tmp_path / "env.db"))
    with open_store(tmp_path / "arg.db") as s:
        assert s.path == tmp_path / "arg.db"


def test_relative_path_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert store_url("rel/h.db") == f"sqlite:///{tmp_path}/rel/h.db"
    assert store_url("postgresql://u:p@db/hone") == "postgresql://u:p@db/hone"


def test_parent_is_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    target = blocker / "sub" / "hone.db"
    with pytest.raises(StoreError) as info:
        open_store(target)
    message = str(info.value)
    assert str(target) in message
    assert f"{blocker} is a file, not a directory" in message
    assert "HONE_STORE" in message and "\n" not in message


def test_store_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(StoreError, match=r"cannot write store at .*adir: .*; pass --store PATH or set HONE_STORE"):
        open_store(tmp_path / "adir")


@pytest.mark.parametrize("url", ["nosuchdialect://host/db", "sqlite+nodriver:///x.db"])
def test_unknown_dialect_or_driver(url: str) -> None:
    with pytest.raises(StoreError, match="cannot open store"):
        open_store(url)


def test_garbage_url() -> None:
    with pytest.raises(StoreError, match="not a path or SQLAlchemy URL"):
        open_store("::://garbage")


def test_a_postgresql_url_without_its_driver_says_what_to_install() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql+pg8000://hone@127.0.0.1:1/hone")  # a driver hone does not install
    msg = str(info.value)
    assert "\n" not in msg and "pip install 'hone[postgres]'" in msg and "postgresql+psycopg://" in msg


def test_bad_postgresql_credentials_are_one_line(pg_server: Any) -> None:
    url = f"postgresql+psycopg://nobody:secret@127.0.0.1:{pg_server.port}/postgres"
    with pytest.raises(StoreError) as info:
        open_store(url)
    msg = str(info.value)
    assert "\n" not in msg and 'role "nobody" does not exist' in msg and "secret" not in msg
