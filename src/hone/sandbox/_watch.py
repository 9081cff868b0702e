"""The server's view of one running program: its pipes, the output cap, and the final verdict.

Everything here is non-blocking and driven by the server's poll loop, so one untrusted program
can never stall the server (or the other runs) by not reading or by writing too much.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from . import _proto
from ._limits import Limits, cpu_limit_s
from ._result import decode_output


class Writer:
    """Bytes still to be written to a non-blocking pipe (stdin, or a session's cells)."""

    def __init__(self, fd: int, data: bytes = b"") -> None:
        self.fd = fd
        self.pending = bytearray(data)
        os.set_blocking(fd, False)

    def write_some(self) -> bool:
        """Write what the pipe takes now; False when the reader has gone away."""
        try:
            n = os.write(self.fd, self.pending[: 1 << 16])
        except BlockingIOError:
            return True
        except OSError:
            return False
        del self.pending[:n]
        return True


class Watch:
    """Collects one program's stdout, stderr and status frames, with the output cap."""

    def __init__(self, out_r: int, err_r: int, status_r: int, cap: int) -> None:
        self.cap = cap
        self.out, self.err = bytearray(), bytearray()
        self.streams = {out_r: self.out, err_r: self.err}
        self.status_r = status_r
        self.fds = (out_r, err_r, status_r)
        self.live = set(self.fds)  # not at EOF yet
        self.frames = _proto.FrameBuffer()
        self.memory = False
        self.event: dict[str, Any] | None = None  # the last ready/done/setup_error frame
        for fd in self.fds:
            os.set_blocking(fd, False)

    def reset(self) -> None:
        """Forget the previous cell's output and status."""
        self.out.clear()
        self.err.clear()
        self.memory = False
        self.event = None

    def read(self, fd: int) -> tuple[bool, bool]:
        """Read what is available; returns (within the cap, reached EOF)."""
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True, False
            if not data:
                self.live.discard(fd)
                return True, True
            if fd == self.status_r:
                self._on_status(data)
                continue
            buf = self.streams[fd]
            buf += data
            if len(buf) > self.cap:
                return False, False

    def _on_status(self, data: bytes) -> None:
        try:
            frames = self.frames.feed(data)
        except ValueError:  # the program scribbled on its status fd: that only spoils its own report
            self.frames = _proto.FrameBuffer()
            return
        for msg in frames:
            if msg.get("memory"):
                self.memory = True
            if msg.keys() & {"done", "ready", "setup_error"}:
                self.event = msg

    def drain(self) -> bool:
        """Read everything already in the pipes; False if that passes the cap."""
        return all(self.read(fd)[0] for fd in list(self.live))

    def setup_error(self) -> dict[str, Any] | None:
        if self.event is not None and "setup_error" in self.event:
            err = self.event["setup_error"]
            return err if isinstance(err, dict) else {"layer": "sandbox", "error": str(err)}
        return None

    def result(
        self, verdict: str, limits: Limits, duration: float, *, wait: tuple[int, Any] | None, cell: bool
    ) -> dict[str, Any]:
        """The wire form of an ExecResult. `verdict` is "timeout", "output_limit", "exited" or "done"."""
        rc: int | None = None
        if verdict in ("timeout", "output_limit"):
            status = verdict
        else:
            if verdict == "done" and self.event is not None:
                rc = int(self.event.get("rc", 1))
            elif wait is not None:
                rc = os.waitstatus_to_exitcode(wait[0])
            else:
                rc = -signal.SIGKILL
            status = self._status(rc, limits, wait, cell=cell)
            if status == "timeout":
                rc = None
        return {
            "status": status,
            "returncode": rc,
            "stdout": decode_output(self.out, self.cap),
            "stderr": decode_output(self.err, self.cap),
            "duration_s": round(duration, 6),
        }

    def _status(self, rc: int, limits: Limits, wait: tuple[int, Any] | None, *, cell: bool) -> str:
        if rc < 0:
            cpu = wait[1].ru_utime + wait[1].ru_stime if wait is not None else 0.0
            # RLIMIT_CPU ends a run with SIGKILL (soft = hard); its CPU time tells it from other kills.
            if not cell and -rc in (signal.SIGKILL, signal.SIGXCPU) and cpu >= cpu_limit_s(limits.timeout_s) - 0.1:
                return "timeout"
            return "memory" if self.memory else "killed"
        if rc == 0:
            return "ok"
        last_line = bytes(self.err.rstrip().rsplit(b"\n", 1)[-1])
        if self.memory or b"MemoryError" in last_line:
            return "memory"
        return "error"
