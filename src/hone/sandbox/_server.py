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

This module starts the server and probes the layers; `_dispatch` handles the host's requests,
`_loop` starts programs through the forker and watches them, `_jobs` has one type per job kind.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import os
import select
import signal
import sys
import tempfile
import traceback
from typing import Any, NoReturn

from . import _libc as L
from . import _proto
from ._child import BASE_ENV, SetupError
from ._cleanup import workdir_base
from ._dispatch import Dispatcher
from ._forker import Forker
from ._jobs import ProbeJob
from ._layers import PROBE_CODE, Setup, describe
from ._limits import Limits
from ._mounts import build_root, choose_workdir, enter_root, python_paths
from ._watch import Writer

NS_LAYERS = ("pid_namespace", "network_namespace", "filesystem", "user_namespace", "no_root")


class Restart(Exception):
    """The filesystem layer failed after the server pivoted: the client restarts the server without it."""


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


class Server(Dispatcher):
    """The server: it builds the sandbox root, starts the forker, probes the layers, then serves."""

    def __init__(self, cfg: dict[str, Any], proto_in: int, proto_out: int, notes: dict[str, str], **env: Any) -> None:
        super().__init__(proto_in, proto_out, int(cfg.get("workers", 1)))
        self.cfg = cfg
        self.notes = notes
        self.host_root: bool = env["host_root"]
        self.userns: bool = env["userns"]
        self.pidns: bool = env["pidns"]
        self.root_dir: str = env["root_dir"]
        self.launcher: int = env["launcher"]
        self.privileged = self.host_root or self.userns
        self.fs = False
        self.next_probe_id = -1

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
            job = ProbeJob(self.next_probe_id, self.spec(limits, code=PROBE_CODE))
            self.next_probe_id -= 1
            error: dict[str, Any] | None = None
            try:
                self.spawn(job)
                while not job.finished:
                    self.tick()
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

    def serve(self) -> NoReturn:
        self.outbox = Writer(self.proto_out)
        self.poll.register(self.proto_in, select.POLLIN)
        while True:
            self.tick()


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
