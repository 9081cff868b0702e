"""The server's jobs, one type per kind: a run, a session, the start-up probe; each from fork to reap.

A job holds only what its kind uses and answers for its kind: what pipes its program gets, what
its extra pipes mean, and what the host is told when it ends. What every job shares (the program's
pid, its pipes and output, the verdict) is in `Job`; the poll loop (`_loop`) drives them all alike.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from . import _proto
from ._child import COMMAND_FD, RESULT_FD, SETUP_FD, ChildSpec
from ._limits import Limits
from ._watch import Tampered, Watch, Writer

READY_TIMEOUT_S = 30.0
INF = float("inf")


class Host(Protocol):
    """What a job may ask of the poll loop that watches it."""

    dead_sessions: dict[int, str]

    def stop(self, job: Job, verdict: str) -> None: ...

    def reply(self, msg: dict[str, Any]) -> None: ...

    def register(self, job: Job, fd: int, events: int) -> None: ...

    def forget(self, fd: int, *, close: bool = True) -> None: ...


@dataclass
class Job:
    """What every kind of job has: one program, its pipes, its output and why it ended."""

    PIPES: ClassVar[int] = 4  # stdin, stdout, stderr, setup
    USES_WORKER: ClassVar[bool] = False  # counts against `workers`; its end starts a queued run

    id: int
    spec: ChildSpec
    pid: int = 0
    pidfd: int = -1
    watch: Watch | None = None
    stdin: Writer | None = None
    slot: int = -1
    host_workdir: str = ""
    started: float = 0.0
    stopped: float = 0.0
    deadline: float = INF
    verdict: str | None = None  # why we killed it: "timeout", "output_limit", "tampered", "failed", "exited"
    why: str = ""  # for "tampered" and "failed": what happened
    wait: tuple[int, Any] | None = None
    finished: bool = False

    def child_fds(self, pipes: list[tuple[int, int]]) -> dict[int, int]:
        """The program's fds (its number -> our end of `pipes` it gets)."""
        return {0: pipes[0][0], 1: pipes[1][1], 2: pipes[2][1], SETUP_FD: pipes[3][1]}

    def attach(self, ours: list[int]) -> None:
        """Watch the program through our ends of its pipes (`ours[0]`, its stdin, is written later)."""
        self.watch = Watch(ours[1], ours[2], ours[3], self.spec.limits.max_output_bytes)

    def ready_by(self) -> float:
        """The first deadline, from the program's start."""
        return self.started + self.spec.limits.timeout_s

    def take_stdin(self) -> bytes:
        """The program's stdin, after its job; the server keeps no copy."""
        return b""

    def writers(self) -> Iterator[Writer]:
        if self.stdin is not None:
            yield self.stdin

    def on_writable(self, fd: int, host: Host) -> bool:
        """Handle `fd` if it is one of this kind's own writers."""
        return False

    def on_read(self, fd: int, n: int, host: Host) -> None:
        """After `n` bytes (or -1 at EOF) were read from `fd` within the output cap."""

    @property
    def reply_id(self) -> int | None:
        """The request a failure of this job answers (None: no one is waiting)."""
        return self.id

    def answer(self, verdict: str, duration: float, host: Host) -> dict[str, Any] | None:
        """The reply for the finished job (None: nothing to send)."""
        raise NotImplementedError


@dataclass
class RunJob(Job):
    """One `run` request: a program with its stdin, answered with its result."""

    USES_WORKER: ClassVar[bool] = True

    stdin_data: bytes = b""

    def take_stdin(self) -> bytes:
        data, self.stdin_data = self.stdin_data, b""
        return data

    def answer(self, verdict: str, duration: float, host: Host) -> dict[str, Any] | None:
        assert self.watch is not None
        err = self.watch.setup_error()
        if verdict == "failed":
            return {"id": self.id, "error": f"the sandbox failed while watching this program ({self.why})"}
        if err is not None:
            return {"id": self.id, "error": f"sandbox setup failed ({err['layer']}): {err['error']}"}
        result = self.watch.result(verdict, self.spec.limits, duration, wait=self.wait, cell=False)
        return {"id": self.id, "result": result}


@dataclass
class ProbeJob(Job):
    """The start-up self-test program: its result stays here for the server to read."""

    result: dict[str, Any] | None = None

    def answer(self, verdict: str, duration: float, host: Host) -> dict[str, Any] | None:
        assert self.watch is not None
        self.result = self.watch.result(verdict, self.spec.limits, duration, wait=self.wait, cell=False)
        return None


@dataclass
class SessionJob(Job):
    """A persistent interpreter: cells in on fd 4, one fixed-size record per cell out on fd 5."""

    PIPES: ClassVar[int] = 6  # ... and cells, results

    cmd: Writer | None = None
    ready: bool = False
    cell_id: int | None = None
    cell_limits: Limits | None = None
    nonce: bytes | None = None  # the running cell's; only its result record may carry it

    def child_fds(self, pipes: list[tuple[int, int]]) -> dict[int, int]:
        return {**super().child_fds(pipes), COMMAND_FD: pipes[4][0], RESULT_FD: pipes[5][1]}

    def attach(self, ours: list[int]) -> None:
        self.watch = Watch(ours[1], ours[2], ours[3], self.spec.limits.max_output_bytes, results_r=ours[5])
        self.cmd = Writer(ours[4])

    def ready_by(self) -> float:
        return self.started + READY_TIMEOUT_S

    def writers(self) -> Iterator[Writer]:
        yield from super().writers()
        if self.cmd is not None:
            yield self.cmd

    @property
    def reply_id(self) -> int | None:
        return self.cell_id

    def start_cell(self, rid: int, code: str, timeout_s: float, host: Host) -> None:
        """Send cell `code` (request `rid`); its record answers it."""
        assert self.watch is not None and self.cmd is not None
        self.watch.reset()
        self.started = time.monotonic()
        self.cell_id = rid
        self.cell_limits = Limits(timeout_s, self.spec.limits.memory_mb, self.spec.limits.max_output_bytes)
        self.deadline = self.started + timeout_s
        # Fresh per cell: a record written ahead of time, or left over, can never answer this cell.
        self.nonce = os.urandom(_proto.NONCE_BYTES)
        if not self.cmd.pending:
            host.register(self, self.cmd.fd, select.POLLOUT)
        self.cmd.add(_proto.encode({"code": code, "nonce": self.nonce.hex()}))

    def on_writable(self, fd: int, host: Host) -> bool:
        if self.cmd is None or fd != self.cmd.fd:
            return False
        if not self.cmd.write_some():
            host.stop(self, "exited")
        elif not self.cmd.pending:
            host.forget(fd, close=False)
        return True

    def on_read(self, fd: int, n: int, host: Host) -> None:
        watch = self.watch
        assert watch is not None
        if fd == watch.setup_r and watch.setup_done and not self.ready:
            if not watch.setup:  # EOF and no report: set up, and the interpreter is waiting for cells
                self.ready, self.deadline = True, INF
                host.reply({"id": self.id, "opened": self.id})
        elif fd == watch.results_r and n > 0:
            self._on_record(host)

    def _on_record(self, host: Host) -> None:
        """The session wrote to its result channel: the running cell's answer, or tampering."""
        assert self.watch is not None
        try:
            rc = self.watch.take_record(self.nonce)
        except Tampered as exc:
            self.why = self.why or str(exc)
            host.stop(self, "tampered")
            return
        if rc is None or self.cell_id is None or self.cell_limits is None:
            return
        self.watch.drain()  # the interpreter flushed before answering
        if self.watch.over_cap:
            host.stop(self, "output_limit")
            return
        duration = time.monotonic() - self.started
        result = self.watch.result("done", self.cell_limits, duration, wait=None, cell=True, rc=rc)
        host.reply({"id": self.cell_id, "result": result, "dead": False})
        self.cell_id, self.nonce, self.cell_limits, self.deadline = None, None, None, INF
        self.watch.reset()

    def answer(self, verdict: str, duration: float, host: Host) -> dict[str, Any] | None:
        assert self.watch is not None
        err = self.watch.setup_error()
        if not self.ready:
            err = err or {"layer": "sandbox", "error": "the session's interpreter exited before it was ready"}
            return {"id": self.id, "error": f"sandbox setup failed ({err['layer']}): {err['error']}"}
        reason = {"timeout": "a call timed out", "output_limit": "a call passed the output limit"}.get(verdict)
        if verdict in ("tampered", "failed"):
            reason = f"the session was killed: {self.why}"
        host.dead_sessions[self.id] = reason or "its interpreter exited"
        if self.cell_id is None or self.cell_limits is None:
            return None
        if verdict == "failed":
            return {"id": self.cell_id, "error": host.dead_sessions[self.id]}
        result = self.watch.result(verdict, self.cell_limits, duration, wait=self.wait, cell=True)
        return {"id": self.cell_id, "result": result, "dead": host.dead_sessions[self.id]}
