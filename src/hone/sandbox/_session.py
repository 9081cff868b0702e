"""A persistent sandboxed interpreter: globals survive between calls, like a notebook kernel."""

from __future__ import annotations

import math
import threading
import weakref
from types import TracebackType

from ._client import Client
from ._limits import MAX_CODE_BYTES, Limits, check_size
from ._result import ExecResult, SandboxError


class PythonSession:
    """One sandboxed interpreter kept alive across calls (a Jupyter-like code tool for one episode).

    Each `run` executes a cell in the same globals; a final expression's value is printed like a
    REPL. A cell that times out, overruns the output cap or kills the interpreter ends the session:
    the next `run` raises SandboxError (a session never restarts silently, since its state would be
    lost). An exception or MemoryError caught in a cell does not end it. `sys.exit(n)` in a cell is
    reported as that cell's return code and the session continues.
    """

    def __init__(self, client: Client, limits: Limits) -> None:
        self._client = client
        self._limits = limits
        self._lock = threading.Lock()
        _, fut = client.submit({"op": "open", "limits": limits.to_wire()})
        self._sid = int(fut.result()["opened"])
        self._dead: str | None = None
        self._finalizer = weakref.finalize(self, client.notify, {"op": "close", "sid": self._sid})

    @property
    def alive(self) -> bool:
        """False once the session ended (closed, timed out, or its interpreter died)."""
        return self._dead is None

    def run(self, code: str, *, timeout_s: float | None = None) -> ExecResult:
        """Run one cell; globals persist. Raises SandboxError if the session is dead."""
        if not isinstance(code, str):
            raise SandboxError(f"code must be a str, got {type(code).__name__}")
        check_size("code", code, MAX_CODE_BYTES)
        timeout = self._limits.timeout_s if timeout_s is None else timeout_s
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise SandboxError(f"timeout_s must be a positive number of seconds, got {timeout!r}")
        with self._lock:
            if self._dead is not None:
                raise SandboxError(f"this session is dead ({self._dead}); start a new one with Sandbox.session()")
            try:
                _, fut = self._client.submit({"op": "exec", "sid": self._sid, "code": code, "timeout_s": timeout})
                msg = fut.result()
            except SandboxError as exc:
                self._dead = str(exc)
                raise
            result = ExecResult.from_wire(msg["result"])
            if dead := msg.get("dead"):
                why = f": {dead}" if isinstance(dead, str) else ""
                self._dead = f"a call ended with status {result.status!r} and took the interpreter with it{why}"
            return result

    def close(self) -> None:
        """End the session and its sandbox; idempotent."""
        with self._lock:
            if self._dead is None:
                self._dead = "closed"
            self._finalizer()

    def __enter__(self) -> PythonSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
