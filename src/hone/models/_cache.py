"""`Cached`: an opt-in on-disk response cache (SQLite) in front of any `ChatModel`."""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from hone.core import ConfigError, Message, ModelCall, Sampling, ToolSpec

from ._base import ChatModel, aclose_model, request_digest

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses_v1 (key TEXT PRIMARY KEY, call TEXT NOT NULL, created REAL NOT NULL)"


class Cached:
    """Answers repeated requests from a SQLite file instead of calling `inner` again.

    The key is `request_digest(inner.name, messages, tools, sampling)`: the sampling seed is
    part of it, so distinct samples of one prompt are distinct entries. A hit returns the
    stored `ModelCall` with `cached=True` (its `latency_s` is the original call's). Only
    successful calls are stored. The file is in WAL mode and shared safely by coroutines,
    threads and processes; lookups run inline on the event loop because a keyed SQLite
    read or write takes microseconds, far less than a thread hop.
    """

    def __init__(self, inner: ChatModel, path: str | Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.path = Path(path)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the response cache {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"Cached({self.inner!r}, {str(self.path)!r})"

    def key(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None, sampling: Sampling | None) -> str:
        """The cache key of a request."""
        return request_digest(self.inner.name, messages, tools, sampling)

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        sampling: Sampling | None = None,
    ) -> ModelCall:
        """The stored call for this request, or `inner`'s answer (then stored)."""
        key = self.key(messages, tools, sampling)
        stored = self._get(key)
        if stored is not None:
            self.hits += 1
            return stored
        self.misses += 1
        call = await self.inner.generate(messages, tools, sampling)
        self._put(key, call)
        return call

    def _get(self, key: str) -> ModelCall | None:
        with self._lock:
            row = self._db.execute("SELECT call FROM responses_v1 WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            call = ModelCall.model_validate_json(row[0])
        except ValidationError:
            return None  # written by an incompatible version: treat as a miss and overwrite
        call.cached = True
        return call

    def _put(self, key: str, call: ModelCall) -> None:
        text = call.model_dump_json()
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO responses_v1 (key, call, created) VALUES (?, ?, ?)",
                    (key, text, time.time()),
                )
        except sqlite3.Error as exc:  # a cache that cannot be written must not fail the run
            warnings.warn(f"response cache {self.path}: could not store a call: {exc}", stacklevel=2)

    def __len__(self) -> int:
        """Number of stored calls."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses_v1").fetchone()[0])

    def close(self) -> None:
        """Close the database (not the inner model); later calls fail. Safe to call twice."""
        with self._lock:
            self._db.close()

    def __del__(self) -> None:
        # A cache dropped without aclose() must not leave its connection to the garbage collector
        # (Python 3.13 warns about unclosed sqlite3 connections).
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()

    async def aclose(self) -> None:
        """Close the database and the inner model."""
        self.close()
        await aclose_model(self.inner)
