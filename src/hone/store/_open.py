"""`open_store`: resolve where the store lives (argument, `HONE_STORE`, or `.hone/hone.db`)."""

from __future__ import annotations

import os
from pathlib import Path

from ._sql import SQLStore

ENV_VAR = "HONE_STORE"
DEFAULT_PATH = Path(".hone") / "hone.db"


def store_url(location: str | Path | None = None) -> str:
    """The SQLAlchemy URL for `location` (see `open_store`), without opening anything."""
    if location is None:
        location = os.environ.get(ENV_VAR) or DEFAULT_PATH
    text = str(location)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def open_store(location: str | Path | None = None, *, readonly: bool = False) -> SQLStore:
    """Open (creating if needed) the trajectory store.

    `location` is an SQLAlchemy URL when it contains `://` (e.g. `postgresql://...`),
    otherwise a filesystem path to an SQLite file (its directory is created). None means
    the `HONE_STORE` environment variable, or `.hone/hone.db` under the current directory.
    `readonly=True` opens an existing store without writing anything, so a store on a
    read-only file or file system can be listed, shown and exported.
    Raises `StoreError` with an actionable message when the store cannot be opened or written.
    """
    return SQLStore(store_url(location), readonly=readonly)
