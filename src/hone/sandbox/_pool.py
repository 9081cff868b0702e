"""`Sandbox`: a pre-started fork server for throughput, usable from threads and asyncio."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import Any, ClassVar

from ._client import Client
from ._layers import IsolationReport
from ._limits import (
    MAX_CODE_BYTES,
    MAX_FILE_NAME_BYTES,
    MAX_FILES,
    MAX_FILES_BYTES,
    MAX_STDIN_BYTES,
    MAX_WORKERS,
    Limits,
    check_size,
    to_bytes,
    utf8_size,
)
from ._result import ExecResult, SandboxError
from ._session import PythonSession

Files = Mapping[str, str | bytes]


def encode_files(files: Files | None) -> dict[str, str]:
    """Check names (relative, no `..`), count and sizes, and encode contents for the wire."""
    items = list((files or {}).items())
    if len(items) > MAX_FILES:
        raise SandboxError(f"{len(items)} files, over the sandbox's limit of {MAX_FILES} files")
    out: dict[str, str] = {}
    total = 0
    for name, content in items:
        parts = name.split("/") if isinstance(name, str) else []
        if not parts or name.startswith("/") or "\0" in name or any(p in ("", ".", "..") for p in parts):
            raise SandboxError(f"bad file name {name!r}: use a relative path without '.', '..' or empty parts")
        if utf8_size(name) > MAX_FILE_NAME_BYTES or any(utf8_size(p) > 255 for p in parts):
            raise SandboxError(
                f"file name {name[:80]!r}... is too long: at most {MAX_FILE_NAME_BYTES} bytes, 255 per part"
            )
        if isinstance(content, str):
            data = to_bytes(content)
        elif isinstance(content, bytes | bytearray | memoryview):
            data = bytes(content)
        else:
            raise SandboxError(f"file {name!r}: content must be str or bytes, got {type(content).__name__}")
        total += len(data)
        if total > MAX_FILES_BYTES:
            raise SandboxError(f"files hold over {MAX_FILES_BYTES} bytes in all, the sandbox's limit")
        # Base64 for text too: the server parses it fast, whatever the characters.
        out[name] = base64.b64encode(data).decode("ascii")
    return out


class _Holder:
    """The current server of a Sandbox; kept apart so the exit-time finalizer does not keep the Sandbox alive."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.client.close()


class Sandbox:
    """A pool for throughput: a pre-started fork server; thread-safe and usable from asyncio.

    Every run gets a fresh sandbox (see `layers`); `workers` bounds how many run at once, further
    runs queue. Closing (or leaving the `with` block, or interpreter exit) kills whatever still runs.
    """

    # For tests: take the unprivileged (user-namespace) path as root; leave out some layers.
    _force_userns: ClassVar[bool] = False
    _layers_off: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        workers: int | None = None,
        timeout_s: float = 10,
        memory_mb: int = 512,
        max_output_bytes: int = 1_000_000,
        network: bool = False,
    ) -> None:
        if workers is None:
            workers = max(2, os.cpu_count() or 1)
        if not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
            raise SandboxError(f"workers must be an int in 1..{MAX_WORKERS}, got {workers!r}")
        self._limits = Limits(timeout_s, memory_mb, max_output_bytes).validate()
        self._workers = workers
        self._network = bool(network)
        self._lock = threading.Lock()
        self._holder = _Holder(self._new_client())
        self._finalizer = weakref.finalize(self, self._holder.close)

    def _new_client(self) -> Client:
        return Client(
            network=self._network, workers=self._workers, force_userns=self._force_userns, layers_off=self._layers_off
        )

    def _live_client(self) -> Client:
        with self._lock:
            if self._holder.closed:
                raise SandboxError("this Sandbox is closed")
            if not self._holder.client.alive:
                # The server died (e.g. killed from outside), or we are a fork of the process that
                # started it: start a fresh one rather than fail forever.
                self._holder.client.close()
                self._holder.client = self._new_client()
            return self._holder.client

    @property
    def layers(self) -> IsolationReport:
        """The isolation layers this pool's server set up (probed when it started)."""
        return self._holder.client.report

    def _limits_for(self, timeout_s: float | None, memory_mb: int | None, max_output_bytes: int | None) -> Limits:
        """The pool's limits with a call's overrides (None keeps the pool's), checked."""
        base = self._limits
        return Limits(
            base.timeout_s if timeout_s is None else timeout_s,
            base.memory_mb if memory_mb is None else memory_mb,
            base.max_output_bytes if max_output_bytes is None else max_output_bytes,
        ).validate()

    def _submit(
        self,
        code: str,
        *,
        stdin: str | None = None,
        files: Files | None = None,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        max_output_bytes: int | None = None,
    ) -> tuple[Client, int, Future[dict[str, Any]]]:
        if not isinstance(code, str):
            raise SandboxError(f"code must be a str, got {type(code).__name__}")
        if stdin is not None and not isinstance(stdin, str):
            raise SandboxError(f"stdin must be a str or None, got {type(stdin).__name__}")
        check_size("code", code, MAX_CODE_BYTES)
        if stdin is not None:
            check_size("stdin", stdin, MAX_STDIN_BYTES)
        limits = self._limits_for(timeout_s, memory_mb, max_output_bytes)
        msg = {
            "op": "run",
            "code": code,
            "stdin": base64.b64encode(to_bytes(stdin)).decode("ascii") if stdin else "",
            "files": encode_files(files),
            "limits": limits.to_wire(),
        }
        client = self._live_client()
        rid, fut = client.submit(msg)
        return client, rid, fut

    async def run(
        self,
        code: str,
        *,
        stdin: str | None = None,
        files: Files | None = None,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
    ) -> ExecResult:
        """Run `code` as a script in a fresh sandbox; cancelling the task kills the run."""
        client, rid, fut = self._submit(code, stdin=stdin, files=files, timeout_s=timeout_s, memory_mb=memory_mb)
        try:
            msg = await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            client.cancel(rid)
            raise
        return ExecResult.from_wire(msg["result"])

    def run_sync(
        self,
        code: str,
        *,
        stdin: str | None = None,
        files: Files | None = None,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        max_output_bytes: int | None = None,
    ) -> ExecResult:
        """Run `code` as a script in a fresh sandbox and wait for the result."""
        _, _, fut = self._submit(
            code, stdin=stdin, files=files, timeout_s=timeout_s, memory_mb=memory_mb, max_output_bytes=max_output_bytes
        )
        return ExecResult.from_wire(fut.result()["result"])

    def map(
        self,
        codes: Iterable[str],
        *,
        stdin: str | None = None,
        files: Files | None = None,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
    ) -> list[ExecResult]:
        """Run many programs concurrently (up to `workers` at once); results in input order."""
        futs = [
            self._submit(code, stdin=stdin, files=files, timeout_s=timeout_s, memory_mb=memory_mb)[2] for code in codes
        ]
        return [ExecResult.from_wire(f.result()["result"]) for f in futs]

    def session(self, *, timeout_s: float | None = None, memory_mb: int | None = None) -> PythonSession:
        """Start a persistent interpreter in its own sandbox; `timeout_s` is the default per call."""
        return PythonSession(self._live_client(), self._limits_for(timeout_s, memory_mb, None))

    def close(self) -> None:
        """Stop the server; running programs and sessions are killed. Idempotent."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._holder.closed

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
