"""The fork server: one clean interpreter per `Sandbox`, forking one process per run and watching them all.

The host starts it with `python -I` (never by forking itself, which may be multithreaded) and
speaks length-prefixed JSON on its stdin/stdout. Processes:

    launcher          what the host started; enters a user namespace if needed, then only waits
    └─ server         pid 1 of its own PID namespace, pivoted into the read-only sandbox root
       ├─ forker      forked before any request; clones each program as the server's child (see _forker)
       └─ program     one per run, pid 1 of the run's own PID namespace (see _child)

The server holds every request, so it never forks a program itself: a program would inherit (and
could read) the other runs' code, stdin and files.

The server is single-threaded and never blocks on a program: pipes are non-blocking and polled.
If it dies, its PID namespace dies with it, so no run can outlive the pool.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import heapq
import json
import os
import select
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, NoReturn

from . import _libc as L
from . import _proto
from ._child import BASE_ENV, COMMAND_FD, RESULT_FD, SETUP_FD, ChildSpec, SetupError
from ._cleanup import children, kill_uid, rmtree, workdir_base
from ._forker import Forker, ForkerGone
from ._layers import PROBE_CODE, Setup, describe
from ._limits import Limits
from ._mounts import build_root, choose_workdir, enter_root, python_paths
from ._watch import Tampered, Watch, Writer

NS_LAYERS = ("pid_namespace", "network_namespace", "filesystem", "user_namespace", "no_root")
READY_TIMEOUT_S = 30.0
MAX_WAIT_MS = 60_000.0
INF = float("inf")


class Restart(Exception):
    """The filesystem layer failed after the server pivoted: the client restarts the server without it."""


@dataclass
class Job:
    """A run or a session, from fork to reap."""

    id: int
    kind: str  # "run", "session" or "probe"
    spec: ChildSpec
    pid: int = 0
    pidfd: int = -1
    watch: Watch | None = None
    stdin: Writer | None = None
    cmd: Writer | None = None
    slot: int = -1
    host_workdir: str = ""
    started: float = 0.0
    stopped: float = 0.0
    deadline: float = INF
    verdict: str | None = None  # why we killed it: "timeout", "output_limit", "tampered", "failed", "exited"
    why: str = ""  # for "tampered" and "failed": what happened
    wait: tuple[int, Any] | None = None
    stdin_data: bytes = b""
    result: dict[str, Any] | None = None  # probe jobs keep their result here
    ready: bool = False
    cell_id: int | None = None
    cell_limits: Limits | None = None
    nonce: bytes | None = None  # the running cell's; only its result record may carry it
    finished: bool = False


def _enter_user_namespace() -> None:
    uid, gid = os.geteuid(), os.getegid()
    L.unshare(L.CLONE_NEWUSER)
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _host_pid() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[1])
    return os.getpid()


class Server:
    """The server's state and event loop."""

    def __init__(self, cfg: dict[str, Any], proto_in: int, proto_out: int, notes: dict[str, str], **env: Any) -> None:
        self.cfg = cfg
        self.proto_in, self.proto_out = proto_in, proto_out
        self.notes = notes
        self.host_root: bool = env["host_root"]
        self.userns: bool = env["userns"]
        self.pidns: bool = env["pidns"]
        self.root_dir: str = env["root_dir"]
        self.launcher: int = env["launcher"]
        self.privileged = self.host_root or self.userns
        self.workers = int(cfg.get("workers", 1))
        # Dedicated uids per slot; a random base keeps two pools on one host apart.
        self.uid_base = 1_000_000 + int.from_bytes(os.urandom(3), "big") * 64
        self.fs = False
        self.workdir = "/sandbox"
        self.private_tmp = True
        self.keep_in_tmp: tuple[str, ...] = ()
        self.plan: set[str] = set()
        self.jobs: dict[int, Job] = {}
        self.by_fd: dict[int, Job] = {}
        self.queue: deque[Job] = deque()
        self.running = 0
        self.free_slots: list[int] = []
        self.next_slot = 0
        self.dead_sessions: dict[int, str] = {}
        self.poll = select.poll()
        self.inbox = _proto.FrameBuffer()
        self.next_probe_id = -1
        self.outbox: Writer | None = None  # replies not yet written to the host (once serving)
        self.forker: Forker | None = None

    # ----- start-up -------------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        server_pid = _host_pid()
        proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)  # the host's, for the forker's pid
        off = set(self.cfg.get("layers_off", ()))
        if self.privileged and "filesystem" not in off:
            try:
                L.unshare(L.CLONE_NEWNS)
                L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
                paths = python_paths()
                self.workdir = choose_workdir(paths)
                # Python itself may live under /tmp (a checkout there): each run's private /tmp gets those
                # directories bound back in, read-only.
                self.keep_in_tmp = tuple(p for p in paths if p == "/tmp" or p.startswith("/tmp/"))
                self.private_tmp = "/tmp" not in self.keep_in_tmp
                build_root(self.root_dir, paths, self.workdir, private_tmp=self.private_tmp)
                enter_root(self.root_dir)
                self.fs = True
            except OSError as exc:
                self.notes["filesystem"] = f"could not build the sandbox root: {exc}"
        elif not self.privileged:
            self.notes["filesystem"] = "needs root or a user namespace"
        # Now, inside the sandbox root and before any request exists: the forker's heap never holds one.
        try:
            self.forker = Forker(proc)
        finally:
            os.close(proc)
        self.plan = self._initial_plan()
        if "pid_namespace" not in self.plan:
            # Without PID namespaces, orphans of finished runs come back to us to be killed.
            L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
        report = self._probe()
        return {
            "op": "hello",
            "layers": report,
            "server_pid": server_pid,
            "uid_base": self.uid_base if "no_root" in self.plan else -1,
            "root_dir": self.root_dir,
            "workdir": self.workdir if self.fs else "",
            "forker_pid": self.forker.host_pid,
        }

    def _initial_plan(self) -> set[str]:
        plan = set()
        if self.pidns:
            plan.add("pid_namespace")
        if self.privileged and not self.cfg.get("network"):
            plan.add("network_namespace")
        if self.fs:
            plan.add("filesystem")
        if self.privileged:
            plan.add("user_namespace")
        if self.host_root and not self.userns:
            plan.add("no_root")
        elif self.host_root:
            self.notes["no_root"] = "user-namespace mode on a root host: programs hold no capabilities but map to uid 0"
        for name in self.cfg.get("layers_off", ()):
            # Tests use this to exercise the fallbacks of machines without namespaces.
            plan.discard(name)
            self.notes.setdefault(name, "turned off for this Sandbox")
        self.notes.update(self.cfg.get("notes", {}))
        return plan

    def _probe(self) -> list[dict[str, Any]]:
        """Run the probe program, dropping each layer whose setup fails, until it runs."""
        limits = Limits(10.0, 256, 1 << 16)
        for _ in range(len(NS_LAYERS) + 1):
            job = self._job(self.next_probe_id, "probe", limits, code=PROBE_CODE)
            self.next_probe_id -= 1
            error: dict[str, Any] | None = None
            try:
                self._start(job)
                while not job.finished:
                    self._tick()
                assert job.watch is not None
                error = job.watch.setup_error()
            except SetupError as exc:
                error = {"layer": exc.layer, "error": str(exc)}
            if error is not None:
                layer, msg = str(error.get("layer")), str(error.get("error"))
                if layer not in self.plan:
                    raise RuntimeError(f"sandbox self-test failed at {layer}: {msg}")
                if layer == "filesystem" and self.fs:
                    raise Restart(msg)  # we already live in the sandbox root: no host workdirs from here
                self.plan.discard(layer)
                self.notes[layer] = f"setup failed: {msg}"
                continue
            result = job.result or {}
            if result.get("status") != "ok":
                raise RuntimeError(f"sandbox self-test program failed: {json.dumps(result)[:2000]}")
            return self._report(json.loads(base64.b64decode(result["stdout"])))
        raise RuntimeError("sandbox self-test did not converge")

    def _report(self, seen: dict[str, Any]) -> list[dict[str, Any]]:
        setup = Setup(
            plan=frozenset(self.plan),
            notes=self.notes,
            workdir=self.workdir,
            workdir_base=workdir_base(),
            uid_base=self.uid_base,
            host_root=self.host_root,
            userns=self.userns,
            network=bool(self.cfg.get("network")),
            env_keys=frozenset({*BASE_ENV, "HOME", "TMPDIR"}),
        )
        return describe(setup, seen).to_wire()

    # ----- jobs -----------------------------------------------------------------------------------

    def _job(self, job_id: int, kind: str, limits: Limits, *, code: str = "", stdin: bytes = b"",
             files: dict[str, str] | None = None) -> Job:  # fmt: skip
        spec = ChildSpec(
            limits=limits,
            layers=frozenset(self.plan),
            workdir=self.workdir,
            tmpdir="/tmp" if self.private_tmp else "/dev/shm",
            private_tmp=self.private_tmp,
            keep_in_tmp=self.keep_in_tmp if self.private_tmp else (),
            session=kind == "session",
            code=code,
            files=files or {},
        )
        return Job(job_id, kind, spec, stdin_data=stdin)

    def _start(self, job: Job) -> None:
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
            for _ in range(6 if spec.session else 4):  # stdin, stdout, stderr, setup; cells, results
                pipes.append(os.pipe())
        except OSError:
            for fd in (fd for pair in pipes for fd in pair):
                os.close(fd)
            self._release(job)
            raise
        fds = {0: pipes[0][0], 1: pipes[1][1], 2: pipes[2][1], SETUP_FD: pipes[3][1]}
        if spec.session:
            fds[COMMAND_FD], fds[RESULT_FD] = pipes[4][0], pipes[5][1]
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
                self._forget(fd)
            if job.pidfd >= 0:
                self._forget(job.pidfd)
            self._release(job)
            raise
        self.jobs[job.id] = job

    def _watch(self, job: Job, ours: list[int]) -> None:
        spec = job.spec
        results = ours[5] if spec.session else -1
        job.watch = Watch(ours[1], ours[2], ours[3], spec.limits.max_output_bytes, results_r=results)
        for fd in job.watch.fds:
            self._register(job, fd, select.POLLIN)
        if spec.session:
            job.cmd = Writer(ours[4])
        with contextlib.suppress(OSError, AttributeError):
            job.pidfd = os.pidfd_open(job.pid)
            self._register(job, job.pidfd, select.POLLIN)
        job.deadline = job.started + (READY_TIMEOUT_S if spec.session else spec.limits.timeout_s)
        # The job first, then the program's stdin; then EOF. The server keeps no copy of code or files.
        job.stdin = Writer(ours[0], _proto.encode(spec.to_wire()) + job.stdin_data)
        spec.code, spec.files, job.stdin_data = "", {}, b""
        self._register(job, ours[0], select.POLLOUT)

    def _register(self, job: Job, fd: int, events: int) -> None:
        self.poll.register(fd, events)
        self.by_fd[fd] = job

    def _forget(self, fd: int, *, close: bool = True) -> None:
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

    def _stop(self, job: Job, verdict: str) -> None:
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

    def _pump(self) -> None:
        while self.queue and self.running < self.workers:
            job = self.queue.popleft()
            self.running += 1
            try:
                self._start(job)
            except Exception as exc:
                self.running -= 1
                self._reply({"id": job.id, "error": f"could not start a sandbox: {exc}"})

    # ----- events ---------------------------------------------------------------------------------

    def _tick(self) -> None:
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
                self._stop(job, "timeout")

    def _fail(self, job: Job, exc: BaseException) -> None:
        if job.finished:  # reaped already: its pid may belong to someone else now
            return
        if not job.why:
            job.why = f"{type(exc).__name__}: {exc}"[:2000]
        self._stop(job, "failed")

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
                self._forget(fd)  # all written (the program reads EOF next), or it closed stdin
                job.stdin = None
        elif job.cmd is not None and fd == job.cmd.fd:
            if not job.cmd.write_some():
                self._stop(job, "exited")
            elif not job.cmd.pending:
                self._forget(fd, close=False)
        else:
            n = watch.read(fd)
            if n < 0:
                self._forget(fd, close=False)
            if watch.over_cap:
                self._stop(job, "output_limit")
            elif fd == watch.setup_r and watch.setup_done and job.kind == "session" and not job.ready:
                if not watch.setup:  # EOF and no report: set up, and the interpreter is waiting for cells
                    job.ready, job.deadline = True, INF
                    self._reply({"id": job.id, "opened": job.id})
            elif fd == watch.results_r and n > 0:
                self._on_record(job)

    def _on_record(self, job: Job) -> None:
        """A session wrote to its result channel: the running cell's answer, or tampering."""
        assert job.watch is not None
        try:
            rc = job.watch.take_record(job.nonce)
        except Tampered as exc:
            job.why = job.why or str(exc)
            self._stop(job, "tampered")
            return
        if rc is None or job.cell_id is None or job.cell_limits is None:
            return
        job.watch.drain()  # the interpreter flushed before answering
        if job.watch.over_cap:
            self._stop(job, "output_limit")
            return
        duration = time.monotonic() - job.started
        result = job.watch.result("done", job.cell_limits, duration, wait=None, cell=True, rc=rc)
        self._reply({"id": job.cell_id, "result": result, "dead": False})
        job.cell_id, job.nonce, job.cell_limits, job.deadline = None, None, None, INF
        job.watch.reset()

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
        if job.kind == "run":
            self.running -= 1
        try:
            for fd in (*job.watch.fds, job.pidfd):
                if fd >= 0:
                    self._forget(fd)
            for writer in (job.stdin, job.cmd):
                if writer is not None:
                    self._forget(writer.fd)
            if "pid_namespace" not in job.spec.layers:
                self._reap_orphans()
            self._release(job)
        except Exception as exc:  # the run is over either way: it gets its answer below
            job.verdict, job.why = "failed", job.why or f"{type(exc).__name__}: {exc}"
        try:
            reply = self._answer(job, job.verdict or "exited", ended - job.started)
        except Exception as exc:
            reply = {"id": job.cell_id if job.kind == "session" else job.id, "error": f"the sandbox failed: {exc}"}
        if reply is not None and reply["id"] is not None:
            self._reply(reply)
        if job.kind == "run":
            self._pump()

    def _answer(self, job: Job, verdict: str, duration: float) -> dict[str, Any] | None:
        """The reply for a finished job (None for the probe, which keeps its result)."""
        assert job.watch is not None
        err = job.watch.setup_error()
        if job.kind == "probe":
            job.result = job.watch.result(verdict, job.spec.limits, duration, wait=job.wait, cell=False)
            return None
        if job.kind == "run":
            if verdict == "failed":
                return {"id": job.id, "error": f"the sandbox failed while watching this program ({job.why})"}
            if err is not None:
                return {"id": job.id, "error": f"sandbox setup failed ({err['layer']}): {err['error']}"}
            result = job.watch.result(verdict, job.spec.limits, duration, wait=job.wait, cell=False)
            return {"id": job.id, "result": result}
        if not job.ready:
            err = err or {"layer": "sandbox", "error": "the session's interpreter exited before it was ready"}
            return {"id": job.id, "error": f"sandbox setup failed ({err['layer']}): {err['error']}"}
        reason = {"timeout": "a call timed out", "output_limit": "a call passed the output limit"}.get(verdict)
        if verdict in ("tampered", "failed"):
            reason = f"the session was killed: {job.why}"
        self.dead_sessions[job.id] = reason or "its interpreter exited"
        if job.cell_id is None or job.cell_limits is None:
            return None
        if verdict == "failed":
            return {"id": job.cell_id, "error": self.dead_sessions[job.id]}
        result = job.watch.result(verdict, job.cell_limits, duration, wait=job.wait, cell=True)
        return {"id": job.cell_id, "result": result, "dead": self.dead_sessions[job.id]}

    def _on_host(self) -> None:
        data = os.read(self.proto_in, 1 << 20)
        if not data:
            self._shutdown()
        for msg in self.inbox.feed(data):
            try:
                self._handle(msg)
            except Exception as exc:  # one bad request fails alone
                rid = msg.get("id")
                error = f"the sandbox server could not handle a request: {type(exc).__name__}: {exc}"
                self._reply({"id": rid if isinstance(rid, int) else 0, "error": error})

    def _handle(self, msg: dict[str, Any]) -> None:
        op, rid = msg.get("op"), int(msg.get("id", 0))
        if op == "run":
            stdin = base64.b64decode(msg["stdin"])
            job = self._job(
                rid, "run", Limits.from_wire(msg["limits"]), code=msg["code"], stdin=stdin, files=msg["files"]
            )
            self.queue.append(job)
            self._pump()
        elif op == "open":
            try:
                self._start(self._job(rid, "session", Limits.from_wire(msg["limits"])))
            except (OSError, SetupError) as exc:
                self._reply({"id": rid, "error": f"could not start a session: {exc}"})
        elif op == "exec":
            self._exec(rid, int(msg["sid"]), str(msg["code"]), float(msg["timeout_s"]))
        elif op == "close":
            sess = self.jobs.get(int(msg["sid"]))
            if sess is not None and sess.kind == "session":
                self._stop(sess, "exited")
        elif op == "cancel":
            for queued in [j for j in self.queue if j.id == rid]:
                self.queue.remove(queued)
            running = self.jobs.get(rid)
            if running is not None and running.kind == "run":
                self._stop(running, "timeout")

    def _exec(self, rid: int, sid: int, code: str, timeout_s: float) -> None:
        sess = self.jobs.get(sid)
        if sess is None or sess.kind != "session" or not sess.ready or sess.cmd is None or sess.watch is None:
            self._reply({"id": rid, "error": f"the session is dead ({self.dead_sessions.get(sid, 'closed')})"})
            return
        if sess.cell_id is not None:
            self._reply({"id": rid, "error": "a call is already running in this session"})
            return
        sess.watch.reset()
        sess.started = time.monotonic()
        sess.cell_id = rid
        sess.cell_limits = Limits(timeout_s, sess.spec.limits.memory_mb, sess.spec.limits.max_output_bytes)
        sess.deadline = sess.started + timeout_s
        # Fresh per cell: a record written ahead of time, or left over, can never answer this cell.
        sess.nonce = os.urandom(_proto.NONCE_BYTES)
        if not sess.cmd.pending:
            self._register(sess, sess.cmd.fd, select.POLLOUT)
        sess.cmd.add(_proto.encode({"code": code, "nonce": sess.nonce.hex()}))

    def _reply(self, msg: dict[str, Any]) -> None:
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
            self._stop(job, "exited")
        for job in list(self.jobs.values()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(job.pid, 0)
            self._release(job)
        if "pid_namespace" not in self.plan:
            self._reap_orphans()
        os._exit(0)

    def serve(self) -> NoReturn:
        self.outbox = Writer(self.proto_out)
        self.poll.register(self.proto_in, select.POLLIN)
        while True:
            self._tick()


def _launch(cfg: dict[str, Any], proto_in: int, proto_out: int) -> NoReturn:
    notes: dict[str, str] = {}
    host_root = os.geteuid() == 0
    userns = False
    if not host_root or cfg.get("force_userns"):
        try:
            _enter_user_namespace()
            userns = True
        except OSError as exc:
            notes["user_namespace"] = f"cannot create a user namespace: {exc}"
            for name in ("pid_namespace", "network_namespace", "filesystem"):
                notes[name] = "needs root or a user namespace"
    privileged = host_root or userns
    root_dir = tempfile.mkdtemp(prefix=".hone-sandbox-root-") if privileged else ""
    pidns = False
    if privileged:
        try:
            L.unshare(L.CLONE_NEWPID)
            pidns = True
        except OSError as exc:
            notes["pid_namespace"] = f"unshare(CLONE_NEWPID) failed: {exc}"
    launcher = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
            if not pidns and os.getppid() != launcher:
                os._exit(1)
            L.prctl(L.PR_SET_DUMPABLE, 0)
            server = Server(cfg, proto_in, proto_out, notes, host_root=host_root, userns=userns, pidns=pidns,
                            root_dir=root_dir, launcher=launcher)  # fmt: skip
            hello = server.start()
            # Start-up objects live as long as the server: keep them out of its collections.
            gc.freeze()
            _proto.send(proto_out, hello)
            if cfg.get("probe"):
                server._shutdown()
            server.serve()
        except Restart as exc:
            _proto.send(proto_out, {"op": "restart", "layer": "filesystem", "error": str(exc)})
        except BaseException:
            with contextlib.suppress(BaseException):
                _proto.send(proto_out, {"op": "fatal", "error": traceback.format_exc()})
        finally:
            os._exit(code)
    os.close(proto_in)
    os.close(proto_out)
    L.prctl(L.PR_SET_DUMPABLE, 0)
    _, status = os.waitpid(pid, 0)
    if root_dir:
        with contextlib.suppress(OSError):
            os.rmdir(root_dir)
    os._exit(max(os.waitstatus_to_exitcode(status), 0))


def main(config: str) -> None:
    """Entry point: `python -I -c <bootstrap> <hone root> <config json>`."""
    cfg = json.loads(config)
    proto_in, proto_out = os.dup(0), os.dup(1)
    # fd 0/1 become /dev/null so that nothing stray can corrupt the protocol.
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    try:
        _launch(cfg, proto_in, proto_out)
    except BaseException:
        with contextlib.suppress(BaseException):
            _proto.send(proto_out, {"op": "fatal", "error": traceback.format_exc()})
        os._exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
