"""`Replay`: record a model's calls to a JSONL cassette and play them back offline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Literal

from pydantic import ValidationError

from hone.core import ConfigError, DataError, Message, ModelCall, ModelError, Sampling, ToolSpec

from ._base import ChatModel, aclose_model, request_digest

ReplayMode = Literal["replay", "record", "auto"]


def replay_key(messages: Sequence[Message], tools: Sequence[ToolSpec] | None, sampling: Sampling | None) -> str:
    """The cassette key of a request: `request_digest` with the model name left out.

    The wrapped model's name may differ between recording and replaying (a replayed model
    has none), so the key covers only what was asked: messages, tools and sampling
    (seed included). One cassette therefore holds the calls of one logical model.
    """
    return request_digest("", messages, tools, sampling)


class Replay:
    """A `ChatModel` that records another model's calls to a JSONL cassette and replays them.

    Modes: `"replay"` answers only from the cassette and raises `ModelError` on a request
    it has not seen; `"record"` calls `inner` and appends every call; `"auto"` replays what
    it has and records the rest. Each line is `{"key", "model", "call"}`, written and
    flushed per call so a killed process keeps what it recorded; a truncated last line is
    ignored on load (and cut off before appending). A replayed `ModelCall` is exactly the
    recorded one (message, usage, latency, token ids). A key recorded more than once is
    replayed in recorded order, and once its recordings are used up the last one repeats.
    Keys: see `replay_key`.
    """

    def __init__(self, path: str | Path, inner: ChatModel | None = None, *, mode: ReplayMode = "replay") -> None:
        if mode not in ("replay", "record", "auto"):
            raise ConfigError(f"Replay mode must be 'replay', 'record' or 'auto', got {mode!r}")
        if mode == "record" and inner is None:
            raise ConfigError("Replay(mode='record') needs the model to record (inner)")
        self.path = Path(path)
        self.inner = inner
        self.mode: ReplayMode = mode
        self._calls: dict[str, list[ModelCall]] = {}
        self._cursor: dict[str, int] = {}
        self._file: IO[str] | None = None
        self._cut_at: int | None = None  # where a truncated last line starts
        self._needs_newline = False  # the last line is complete but lacks its newline
        self.hits = 0
        self.recorded = 0
        recorded_name = self._load()
        if inner is not None and mode != "replay":
            self.name: str = inner.name
        else:
            self.name = recorded_name or (inner.name if inner is not None else "replay")

    def __len__(self) -> int:
        """Number of recorded calls in the cassette."""
        return sum(len(calls) for calls in self._calls.values())

    def _load(self) -> str | None:
        if not self.path.exists():
            if self.mode == "replay":
                raise ConfigError(
                    f"cassette {self.path} does not exist; record one with Replay(path, model, mode='record')"
                )
            return None
        name: str | None = None
        data = self.path.read_bytes()
        lines = data.split(b"\n")  # the last item is b"" or an unterminated tail
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key, call = str(entry["key"]), ModelCall.model_validate(entry["call"])
            except (ValueError, KeyError, TypeError, ValidationError) as exc:
                if number == len(lines):  # a write cut short: keep everything before it
                    self._cut_at = len(data) - len(line)
                    break
                raise DataError(f"{self.path}:{number}: malformed cassette line: {_short(exc)}") from None
            self._calls.setdefault(key, []).append(call)
            name = name or entry.get("model") or call.model
        else:
            self._needs_newline = bool(data) and not data.endswith(b"\n")
        return name

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        sampling: Sampling | None = None,
    ) -> ModelCall:
        """Replay the recorded call for this request, or record a new one (by mode)."""
        key = replay_key(messages, tools, sampling)
        recorded = self._calls.get(key)
        if recorded and self.mode != "record":
            index = self._cursor.get(key, 0)
            self._cursor[key] = index + 1
            self.hits += 1
            return recorded[min(index, len(recorded) - 1)].model_copy(deep=True)
        if self.inner is None or self.mode == "replay":
            raise ModelError(
                f"replay miss: no recorded response for request {key} in {self.path}; "
                "re-record with Replay(path, model, mode='record') (or mode='auto' to record only misses)"
            )
        call = await self.inner.generate(messages, tools, sampling)
        self._append(key, call)
        return call

    def _append(self, key: str, call: ModelCall) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._cut_at is not None:
                with self.path.open("r+b") as f:
                    f.truncate(self._cut_at)
            self._file = self.path.open("a", encoding="utf-8")
            if self._needs_newline:
                self._file.write("\n")
        line = json.dumps({"key": key, "model": self.name, "call": call.model_dump(mode="json")}, ensure_ascii=False)
        self._file.write(line + "\n")
        self._file.flush()
        self._calls.setdefault(key, []).append(call)
        self._cursor[key] = len(self._calls[key])  # in auto mode the next identical request replays this one
        self.recorded += 1

    async def aclose(self) -> None:
        """Close the cassette and the inner model."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.inner is not None:
            await aclose_model(self.inner)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
