"""The host's end of a fork server: start it, send requests, route replies to futures."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any

from . import _proto
from ._layers import IsolationReport
from ._result import SandboxError

START_TIMEOUT_S = 60.0
# `-I` ignores PYTHON* variables and the user site, so the package root is passed explicitly. The
# packages on the way are bare stubs: hone/__init__ pulls in pydantic and friends, and every MB the
# server maps makes each fork slower.
_BOOT = """import sys, types
for name in ("hone", "hone.core", "hone.sandbox"):
    mod = sys.modules[name] = types.ModuleType(name)
    mod.__path__ = [sys.argv[1] + "/" + name.replace(".", "/")]
from hone.sandbox._server import main
main(sys.argv[2])
"""
_SERVER_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Client:
    """One fork server process and the reader thread that resolves its replies. Thread-safe."""

    def __init__(
        self,
        *,
        network: bool,
        workers: int,
        probe: bool = False,
        force_userns: bool = False,
        layers_off: tuple[str, ...] = (),
        notes: dict[str, str] | None = None,
    ) -> None:
        if not sys.platform.startswith("linux"):
            raise SandboxError(f"hone.sandbox needs Linux (this is {sys.platform})")
        if not sys.executable:
            raise SandboxError("cannot start the sandbox server: sys.executable is empty")
        cfg: dict[str, Any] = {
            "network": network,
            "workers": workers,
            "probe": probe,
            "force_userns": force_userns,
            "layers_off": list(layers_off),
            "notes": dict(notes or {}),
        }
        self._write_lock = threading.Lock()
        self._pending_lock = threading.Lock()  # never held while doing I/O
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self.dead_reason: str | None = None
        self.owner_pid = os.getpid()  # a forked copy of the host must not use (or stop) this server
        while True:
            hello = self._spawn(cfg)
            if hello.get("op") != "restart" or hello["layer"] in cfg["layers_off"]:
                break
            # The per-run filesystem failed after the server had pivoted into its root: go without it.
            self._stop()
            self.proc.stdout.close()  # type: ignore[union-attr]
            self._closed = False
            cfg["layers_off"].append(hello["layer"])
            cfg["notes"][hello["layer"]] = f"setup failed: {hello.get('error')}"
        self.report = IsolationReport.from_wire(hello["layers"])
        self.server_pid = int(hello["server_pid"])
        self.uid_base = int(hello.get("uid_base", -1))  # first of the dedicated uids, -1 if none
        self.launcher_pid = self.proc.pid
        self.forker_pid = int(hello.get("forker_pid", -1))  # the server's one child that is not a run
        self.root_dir = str(hello.get("root_dir", ""))
        self.workdir = str(hello.get("workdir", ""))
        self._reader = threading.Thread(target=self._read_loop, name="hone-sandbox-reader", daemon=True)
        self._reader.start()

    def _spawn(self, cfg: dict[str, Any]) -> dict[str, Any]:
        debug = os.environ.get("HONE_SANDBOX_DEBUG", "") not in ("", "0")
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, _package_root(), json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if debug else subprocess.DEVNULL,
            env=_SERVER_ENV,
            cwd="/",
            close_fds=True,
            start_new_session=True,  # a Ctrl-C at the terminal is the host's business, not the server's
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in_fd, self._out_fd = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        try:
            return self._hello()
        except BaseException:
            self._stop()
            self.proc.stdout.close()
            raise

    def _hello(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError(f"the sandbox server did not start within {START_TIMEOUT_S:g} s")
            ready, _, _ = select.select([self._out_fd], [], [], left)
            if ready:
                break
        msg = _proto.recv(self._out_fd)
        if msg is None:
            code = self.proc.wait()
            raise SandboxError(
                f"the sandbox server exited during start-up (exit code {code}); set HONE_SANDBOX_DEBUG=1 to see why"
            )
        if msg.get("op") == "fatal":
            raise SandboxError(f"the sandbox server failed to start:\n{msg.get('error')}")
        return msg

    def submit(self, msg: dict[str, Any]) -> tuple[int, Future[dict[str, Any]]]:
        """Send a request; the future resolves to the reply frame or fails with SandboxError."""
        fut: Future[dict[str, Any]] = Future()
        with self._pending_lock:
            if self.dead_reason is not None:
                raise SandboxError(self.dead_reason)
            rid = next(self._ids)
            self._pending[rid] = fut
        try:
            self._send({**msg, "id": rid})
        except SandboxError:
            with self._pending_lock:
                self._pending.pop(rid, None)
            raise
        return rid, fut

    def notify(self, msg: dict[str, Any]) -> None:
        """Send a message that has no reply (cancel, close a session); best effort."""
        with contextlib.suppress(SandboxError):
            self._send(msg)

    def cancel(self, rid: int) -> None:
        """Forget a request and kill its run if it is still going."""
        with self._pending_lock:
            self._pending.pop(rid, None)
        self.notify({"op": "cancel", "id": rid})

    def _send(self, msg: dict[str, Any]) -> None:
        data = _proto.encode(msg)
        if len(data) > _proto.MAX_FRAME:  # the per-input limits keep requests far below this
            raise SandboxError(f"request of {len(data)} bytes is over the sandbox's limit of {_proto.MAX_FRAME}")
        with self._write_lock:
            if self._closed or self.dead_reason is not None:
                raise SandboxError(self.dead_reason or "the sandbox is closed")
            try:
                _proto.write_all(self._in_fd, data)
            except OSError as exc:
                raise SandboxError(f"the sandbox server is gone ({exc})") from exc

    def _read_loop(self) -> None:
        while True:
            try:
                msg = _proto.recv(self._out_fd)
            except (OSError, ValueError):
                msg = None
            if msg is None:
                break
            with self._pending_lock:
                fut = self._pending.pop(int(msg.get("id", 0)), None)
            if fut is None or fut.done():
                continue
            if "error" in msg:
                fut.set_exception(SandboxError(str(msg["error"])))
            else:
                fut.set_result(msg)
        # This thread owns stdout: closing it anywhere else could race a read onto a reused fd number.
        with contextlib.suppress(OSError):
            self.proc.stdout.close()  # type: ignore[union-attr]
        code = self.proc.poll()
        self._fail_all("the sandbox is closed" if self._closed else f"the sandbox server exited (exit code {code})")

    def _fail_all(self, reason: str) -> None:
        with self._pending_lock:
            if self.dead_reason is None:
                self.dead_reason = reason
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(SandboxError(reason))

    @property
    def alive(self) -> bool:
        return self.dead_reason is None and not self._closed and os.getpid() == self.owner_pid

    def _stop(self) -> None:
        with self._write_lock:
            self._closed = True
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # Killing the launcher makes the server (and with it every run) die through PDEATHSIG.
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Stop the server (every run and session ends) and fail whatever is still pending."""
        with self._pending_lock:
            if self._closed:
                return
        if os.getpid() != self.owner_pid:
            # The server belongs to the process that forked us: only drop our copies of its pipes.
            self._closed = True
            for pipe in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()  # type: ignore[union-attr]
            return
        self._stop()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=5)
        if self.root_dir:
            with contextlib.suppress(OSError):
                os.rmdir(self.root_dir)  # normally the launcher already did
        self._fail_all("the sandbox is closed")


def probe() -> IsolationReport:
    """Start a throwaway server that only probes the machine, and return what it found."""
    client = Client(network=False, workers=1, probe=True)
    try:
        return client.report
    finally:
        client.close()


_probe_lock = threading.Lock()
_probed: IsolationReport | None = None


def isolation_report() -> IsolationReport:
    """Probe this machine once per process (a throwaway fork server runs a real sandboxed program) and report."""
    global _probed
    with _probe_lock:
        if _probed is None:
            _probed = probe()
        return _probed
