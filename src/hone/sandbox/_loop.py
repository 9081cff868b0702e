"""The server's poll loop: it starts programs through the forker, watches every job's pipes and
deadline, and answers the host once a program is reaped.

Single-threaded, and it never blocks on a program: pipes are non-blocking and polled, each event
reads or writes one chunk at most, and replies to the host are queued.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import select
import signal
import tempfile
import time
from collections import deque
from typing import Any, NoReturn

from . import _proto
from ._child import ChildSpec, SetupError
from ._cleanup import children, kill_uid, rmtree, workdir_base
from ._forker import Forker, ForkerGone
from ._jobs import INF, Job, RunJob
from ._limits import Limits
from ._watch import Writer

MAX_WAIT_MS = 60_000.0


class Loop:
    """The jobs and the loop that drives them; the request dispatch (`_dispatch`) sits on top."""

    def __init__(self, proto_in: int, proto_out: int, workers: int) -> None:
        self.proto_in, self.proto_out = proto_in, proto_out
        self.workers = workers
        # Dedicated uids per slot; a random base keeps two pools on one host apart.
        self.uid_base = 1_000_000 + int.from_bytes(os.urandom(3), "big") * 64
        self.workdir = "/sandbox"
        self.private_tmp = True
        self.keep_in_tmp: tuple[str, ...] = ()
        self.plan: set[str] = set()
        self.jobs: dict[int, Job] = {}
        self.by_fd: dict[int, Job] = {}
        self.queue: deque[RunJob] = deque()
        self.running = 0
        self.free_slots: list[int] = []
        self.next_slot = 0
        self.dead_sessions: dict[int, str] = {}
        self.poll = select.poll()
        self.outbox: Writer | None = None  # replies not yet written to the host (once serving)
        self.forker: Forker | None = None

    def _on_host(self) -> None:
        """The host wrote to the protocol pipe (see `_dispatch`)."""
        raise NotImplementedError

    # ----- starting a program ---------------------------------------------------------------------

    def spec(self, limits: Limits, *, session: bool = False, code: str = "", files: dict[str, str] | None = None
             ) -> ChildSpec:  # fmt: skip
        return ChildSpec(
            limits=limits,
            layers=frozenset(self.plan),
            workdir=self.workdir,
            tmpdir="/tmp" if self.private_tmp else "/dev/shm",
            private_tmp=self.private_tmp,
            keep_in_tmp=self.keep_in_tmp if self.private_tmp else (),
            session=session,
            code=code,
            files=files or {},
        )

    def spawn(self, job: Job) -> None:
        job.slot = heapq.heappop(self.free_slots) if self.free_slots else self._new_slot()
        spec = job.spec
        spec.layers = frozenset(self.plan)
        if "no_root" in self.plan:
            spec.uid = spec.gid = self.uid_base + job.slot
        pipes: list[tuple[int, int]] = []
        try:
            if "filesystem" not in self.plan:
                job.host_workdir = tempfile.mkdtemp(prefix="hone-sandbox-", dir=workdir_base())
                spec.workdir = spec.tmpdir = job.host_workdir
            for _ in range(job.PIPES):
                pipes.append(os.pipe())
        except OSError:
            for fd in (fd for pair in pipes for fd in pair):
                os.close(fd)
            self._release(job)
            raise
        fds = job.child_fds(pipes)
        # Ours: the write ends of what the program reads (stdin, cells), the read ends of the rest.
        ours = [pipes[i][1] if i in (0, 4) else pipes[i][0] for i in range(len(pipes))]
        pidns = "pid_namespace" in self.plan
        assert self.forker is not None
        try:
            # Our child, pid 1 of a fresh PID namespace if pidns; it reads its job from its stdin (_watch).
            pid = self.forker.spawn([fds[i] for i in sorted(fds)], new_pid_namespace=pidns)
        except OSError as exc:
            for fd in (*fds.values(), *ours):
                os.close(fd)
            self._release(job)
            if isinstance(exc, ForkerGone):
                self._shutdown()  # no run can start here any more; the client starts a fresh server
            raise SetupError("pid_namespace" if pidns else "sandbox", str(exc)) from exc
        for fd in fds.values():
            os.close(fd)
        job.pid, job.started = pid, time.monotonic()
        try:
            self._watch(job, ours)
        except BaseException:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            for fd in ours:
                self.forget(fd)
            if job.pidfd >= 0:
                self.forget(job.pidfd)
            self._release(job)
            raise
        self.jobs[job.id] = job

    def _watch(self, job: Job, ours: list[int]) -> None:
        job.attach(ours)
        assert job.watch is not None
        for fd in job.watch.fds:
            self.register(job, fd, select.POLLIN)
        with contextlib.suppress(OSError, AttributeError):
            job.pidfd = os.pidfd_open(job.pid)
            self.register(job, job.pidfd, select.POLLIN)
        job.deadline = job.ready_by()
        # The job first, then the program's stdin; then EOF. The server keeps no copy of code or files.
        spec = job.spec
        job.stdin = Writer(ours[0], _proto.encode(spec.to_wire()) + job.take_stdin())
        spec.code, spec.files = "", {}
        self.register(job, ours[0], select.POLLOUT)

    def register(self, job: Job, fd: int, events: int) -> None:
        self.poll.register(fd, events)
        self.by_fd[fd] = job

    def forget(self, fd: int, *, close: bool = True) -> None:
        if self.by_fd.pop(fd, None) is not None:
            self.poll.unregister(fd)
        if close:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _new_slot(self) -> int:
        self.next_slot += 1
        return self.next_slot - 1

    def _release(self, job: Job) -> None:
        if job.slot >= 0:
            heapq.heappush(self.free_slots, job.slot)
            job.slot = -1
        if job.host_workdir:
            rmtree(job.host_workdir)
            job.host_workdir = ""

    def pump(self) -> None:
        """Start queued runs while workers are free."""
        while self.queue and self.running < self.workers:
            job = self.queue.popleft()
            self.running += 1
            try:
                self.spawn(job)
            except Exception as exc:
                self.running -= 1
                self.reply({"id": job.id, "error": f"could not start a sandbox: {exc}"})

    # ----- stopping a program ---------------------------------------------------------------------

    def stop(self, job: Job, verdict: str) -> None:
        """Kill a program that overran; its exit is then handled like any other."""
        if job.verdict is None:
            job.verdict, job.stopped = verdict, time.monotonic()
        job.deadline = INF
        with contextlib.suppress(OSError):
            os.kill(job.pid, signal.SIGKILL)  # pid 1 of its namespace: the whole namespace goes
        if "pid_namespace" not in job.spec.layers:
            self._kill_leftovers(job)

    def _kill_leftovers(self, job: Job) -> None:
        with contextlib.suppress(OSError):
            os.killpg(job.pid, signal.SIGKILL)
        if job.spec.uid > 0:
            kill_uid(job.spec.uid)

    def _reap_orphans(self) -> None:
        """Without PID namespaces: kill and reap every child that is not a live run (we are a subreaper)."""
        live = {j.pid for j in self.jobs.values() if j.wait is None}
        if self.forker is not None:
            live.add(self.forker.pid)
        # Each kill re-parents the victim's children to us, so scan until a scan finds nothing.
        for _ in range(200):
            orphans = [pid for pid in children() if pid not in live]
            if not orphans:
                return
            for pid in orphans:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            for pid in orphans:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    # ----- events ---------------------------------------------------------------------------------

    def tick(self) -> None:
        deadline = min((j.deadline for j in self.jobs.values()), default=INF)
        # poll() refuses a wait past about 24 days (a C int of ms): a run's long timeout_s wakes us early instead.
        wait = None if deadline == INF else min(max(0.0, deadline - time.monotonic()) * 1000, MAX_WAIT_MS)
        if any(j.pidfd < 0 for j in self.jobs.values()):
            wait = 20 if wait is None else min(wait, 20)  # no pidfd: poll for exits
        for fd, _ in self.poll.poll(wait):
            if fd == self.proto_in:
                self._on_host()
                continue
            if fd == self.proto_out:
                self._on_outbox()
                continue
            job = self.by_fd.get(fd)
            if job is not None and not job.finished:
                try:
                    self._on_fd(job, fd)
                except Exception as exc:  # a bug or an odd state in one run must not take the others down
                    self._fail(job, exc)
        # Deadlines are checked on every pass, whatever the I/O: each event above read one chunk at most.
        now = time.monotonic()
        for job in list(self.jobs.values()):
            if job.pidfd < 0 and not job.finished:
                with contextlib.suppress(ChildProcessError):
                    pid, status, usage = os.wait4(job.pid, os.WNOHANG)
                    if pid:
                        job.wait = (status, usage)
                        self._on_exit(job)
                        continue
            if now >= job.deadline:
                self.stop(job, "timeout")

    def _fail(self, job: Job, exc: BaseException) -> None:
        if job.finished:  # reaped already: its pid may belong to someone else now
            return
        if not job.why:
            job.why = f"{type(exc).__name__}: {exc}"[:2000]
        self.stop(job, "failed")

    def _on_fd(self, job: Job, fd: int) -> None:
        watch = job.watch
        assert watch is not None
        if fd == job.pidfd:
            # Never block here: an event read before an fd was closed and reused may be stale.
            with contextlib.suppress(ChildProcessError):
                pid, status, usage = os.wait4(job.pid, os.WNOHANG)
                if pid:
                    job.wait = (status, usage)
                    self._on_exit(job)
        elif job.stdin is not None and fd == job.stdin.fd:
            if not job.stdin.write_some() or not job.stdin.pending:
                self.forget(fd)  # all written (the program reads EOF next), or it closed stdin
                job.stdin = None
        elif not job.on_writable(fd, self):
            n = watch.read(fd)
            if n < 0:
                self.forget(fd, close=False)
            if watch.over_cap:
                self.stop(job, "output_limit")
            else:
                job.on_read(fd, n, self)

    def _on_exit(self, job: Job) -> None:
        """The program was reaped (`job.wait` is set): collect the rest of its output and answer."""
        assert job.watch is not None
        ended = job.stopped or time.monotonic()
        try:
            if "pid_namespace" not in job.spec.layers:
                self._kill_leftovers(job)
            job.watch.drain()
            if job.watch.over_cap and job.verdict is None:
                job.verdict = "output_limit"
        except Exception as exc:
            job.verdict, job.why = "failed", job.why or f"{type(exc).__name__}: {exc}"
        job.finished = True
        self.jobs.pop(job.id, None)
        if job.USES_WORKER:
            self.running -= 1
        try:
            for fd in (*job.watch.fds, job.pidfd):
                if fd >= 0:
                    self.forget(fd)
            for writer in job.writers():
                self.forget(writer.fd)
            if "pid_namespace" not in job.spec.layers:
                self._reap_orphans()
            self._release(job)
        except Exception as exc:  # the run is over either way: it gets its answer below
            job.verdict, job.why = "failed", job.why or f"{type(exc).__name__}: {exc}"
        try:
            reply = job.answer(job.verdict or "exited", ended - job.started, self)
        except Exception as exc:
            reply = {"id": job.reply_id, "error": f"the sandbox failed: {exc}"}
        if reply is not None and reply["id"] is not None:
            self.reply(reply)
        if job.USES_WORKER:
            self.pump()

    # ----- replies --------------------------------------------------------------------------------

    def reply(self, msg: dict[str, Any]) -> None:
        if self.outbox is None:  # starting up: nothing else is going on
            try:
                _proto.send(self.proto_out, msg)
            except OSError:
                self._shutdown()
            return
        # Queued, never a blocking write: a large reply the host reads slowly must not hold the loop.
        queued = bool(self.outbox.pending)
        self.outbox.add(_proto.encode(msg))
        if not queued:
            self._on_outbox()
            if self.outbox.pending:
                self.poll.register(self.proto_out, select.POLLOUT)

    def _on_outbox(self) -> None:
        assert self.outbox is not None
        if not self.outbox.write_some():
            self._shutdown()
        if not self.outbox.pending:
            with contextlib.suppress(KeyError):
                self.poll.unregister(self.proto_out)

    def _shutdown(self) -> NoReturn:
        for job in list(self.jobs.values()):
            self.stop(job, "exited")
        for job in list(self.jobs.values()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(job.pid, 0)
            self._release(job)
        if "pid_namespace" not in self.plan:
            self._reap_orphans()
        os._exit(0)
