"""The server's view of one running program: its pipes, the output cap, and the final verdict.

Everything here is non-blocking and driven by the server's poll loop. Each event reads one chunk
at most, so no program can hold the loop (and the other runs' deadlines) by writing fast. Nothing
the program can write is parsed as a message: stdout and stderr are opaque bytes under a cap; the
setup pipe is closed before the program's code starts; a session's result records have a fixed size
and must carry the running cell's nonce. The status itself comes from the kernel (wait4).
"""

from __future__ import annotations

import base64
import json
import os
import signal
from typing import Any

from ._limits import Limits, cpu_limit_s
from ._proto import CELL_RECORD as RECORD

CHUNK = 1 << 16
# A pipe holds at most 1 MiB once its writers are gone (pipe-max-size); a draining read stops there.
MAX_DRAIN_CHUNKS = 64
MAX_SETUP_REPORT = 1 << 16


class Tampered(Exception):
    """A session wrote to its result channel out of turn: the session can no longer be trusted."""


class Writer:
    """Bytes still to be written to a non-blocking pipe (stdin, a session's cells, the replies to the host)."""

    def __init__(self, fd: int, data: bytes = b"") -> None:
        self.fd = fd
        self._buf = bytearray(data)
        self._pos = 0  # written so far; dropped from the front now and then, so a large buffer costs O(n)
        os.set_blocking(fd, False)

    @property
    def pending(self) -> int:
        return len(self._buf) - self._pos

    def add(self, data: bytes) -> None:
        self._buf += data

    def write_some(self) -> bool:
        """Write what the pipe takes now; False when the reader has gone away."""
        try:
            n = os.write(self.fd, memoryview(self._buf)[self._pos : self._pos + CHUNK])
        except BlockingIOError:
            return True
        except OSError:
            return False
        self._pos += n
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > CHUNK * 16 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        return True


class Watch:
    """Collects one program's stdout and stderr (with the output cap), its setup report and result records."""

    def __init__(self, out_r: int, err_r: int, setup_r: int, cap: int, results_r: int = -1) -> None:
        self.cap = cap
        self.out, self.err = bytearray(), bytearray()
        self.streams = {out_r: self.out, err_r: self.err}
        self.setup_r, self.results_r = setup_r, results_r
        self.setup = bytearray()
        self.setup_done = False  # the setup pipe reached EOF: the sandbox's own code in the child is over
        self.records = bytearray()
        self.fds = tuple(fd for fd in (out_r, err_r, setup_r, results_r) if fd >= 0)
        self.live = set(self.fds)  # not at EOF yet
        for fd in self.fds:
            os.set_blocking(fd, False)

    def reset(self) -> None:
        """Forget the previous cell's output."""
        self.out.clear()
        self.err.clear()

    @property
    def over_cap(self) -> bool:
        return len(self.out) > self.cap or len(self.err) > self.cap

    def read(self, fd: int) -> int:
        """Read one chunk at most: its size, 0 when nothing is waiting, -1 at EOF."""
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return 0
        except OSError:
            data = b""
        if not data:
            self.live.discard(fd)
            if fd == self.setup_r:
                self.setup_done = True
            return -1
        if fd == self.setup_r:
            self.setup += data[: MAX_SETUP_REPORT - len(self.setup)]
        elif fd == self.results_r:
            # One record is all a cell may send; keeping a little more is enough to see the excess.
            self.records += data[: 2 * RECORD.size - len(self.records)]
        else:
            self.streams[fd] += data
        return len(data)

    def drain(self) -> None:
        """Read what is already in the pipes, up to a bound per pipe and the output cap."""
        for fd in list(self.live):
            for _ in range(MAX_DRAIN_CHUNKS):
                if self.read(fd) <= 0 or self.over_cap:
                    break

    def setup_error(self) -> dict[str, str] | None:
        """The report of a failed setup (written by the sandbox's code before any of the program's ran)."""
        if not self.setup:
            return None
        try:
            err = json.loads(bytes(self.setup[4:]))["setup_error"]
            return {"layer": str(err["layer"])[:100], "error": str(err["error"])[:4000]}
        except Exception:
            return {"layer": "sandbox", "error": "the setup report was unreadable"}

    def take_record(self, nonce: bytes | None) -> int | None:
        """The return code of the running cell once its whole record arrived, else None.

        Raises Tampered for anything else: a record while no cell runs, a wrong nonce, extra bytes.
        """
        if not self.records:
            return None
        if nonce is None:
            raise Tampered("it wrote to its result channel while no call was running")
        if len(self.records) < RECORD.size:
            return None
        got, rc = RECORD.unpack_from(self.records)
        if len(self.records) > RECORD.size or got != nonce:
            raise Tampered("it forged a result on its result channel")
        self.records.clear()
        return int(rc)

    def result(
        self,
        verdict: str,
        limits: Limits,
        duration: float,
        *,
        wait: tuple[int, Any] | None,
        cell: bool,
        rc: int | None = None,
    ) -> dict[str, Any]:
        """The wire form of an ExecResult. `verdict`: "timeout", "output_limit", "exited", or "done" (a cell's `rc`)."""
        if verdict in ("timeout", "output_limit"):
            status, rc = verdict, None
        else:
            if verdict != "done":
                rc = os.waitstatus_to_exitcode(wait[0]) if wait is not None else -signal.SIGKILL
            assert rc is not None
            status = self._status(rc, limits, wait, cell=cell)
            if status == "timeout":
                rc = None
        return {
            "status": status,
            "returncode": rc,
            # Raw bytes (base64): cheap for the server to encode whatever they hold; the host decodes them.
            "stdout": base64.b64encode(memoryview(self.out)[: self.cap]).decode("ascii"),
            "stderr": base64.b64encode(memoryview(self.err)[: self.cap]).decode("ascii"),
            "cut": [len(self.out) > self.cap, len(self.err) > self.cap],
            "cap": self.cap,
            "duration_s": round(duration, 6),
        }

    def _status(self, rc: int, limits: Limits, wait: tuple[int, Any] | None, *, cell: bool) -> str:
        if rc < 0:
            cpu = wait[1].ru_utime + wait[1].ru_stime if wait is not None else 0.0
            # RLIMIT_CPU ends a run with SIGKILL (soft = hard); its CPU time tells it from other kills.
            if not cell and -rc in (signal.SIGKILL, signal.SIGXCPU) and cpu >= cpu_limit_s(limits.timeout_s) - 0.1:
                return "timeout"
            return "killed"
        if rc == 0:
            return "ok"
        # Like the exit code, this is the program's own claim: it can only ever turn an error into "memory".
        if b"MemoryError" in bytes(self.err.rstrip().rsplit(b"\n", 1)[-1]):
            return "memory"
        return "error"
