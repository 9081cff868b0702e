"""The program's own process: enter the run's namespaces, drop identity and limits, run the code.

Cloned for each run by the clean forker (see _forker) as a child of the fork server. Its first act is
to read its own job (ChildSpec: limits, code, files) from its stdin pipe, where the server wrote it
ahead of the program's stdin: no other run's data is ever in this process. Where PID namespaces
work, this process is pid 1 of a fresh namespace: when it exits, the kernel kills
everything it left behind (daemons included). Steps, in order: new IPC/UTS, network and mount
namespaces; the run's filesystem (scratch tmpfs, fresh /proc); an unprivileged uid and its own user
namespace; rlimits; no capabilities, no_new_privs; a scrubbed environment; then the code.

File descriptors: 0/1/2 are the run's pipes; 3 reports a failed setup to the server and is closed
before any of the program's code runs, so nothing the program does can reach it. A session also has
4, bringing the cells (each with a nonce), and 5, where the interpreter answers each cell with a
fixed-size record (nonce, return code). The program can write 5 too; see _watch for why that only
ever harms its own session. Nothing else is open when the program starts.
"""

from __future__ import annotations

import ast
import atexit
import base64
import builtins
import contextlib
import errno
import fcntl
import io
import linecache
import os
import signal
import socket
import struct
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

from . import _libc as L
from . import _proto
from ._limits import SANDBOX_UID, Limits, apply_rlimits
from ._mounts import setup_run

SETUP_FD = 3
COMMAND_FD = 4
RESULT_FD = 5
RC_MIN, RC_MAX = -(2**31), 2**31 - 1
SETUP_FAILED = 125
SIOCSIFFLAGS = 0x8914
IFF_UP_LOOPBACK_RUNNING = 0x1 | 0x8 | 0x40
BASE_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    # Numeric libraries otherwise start a thread per core, each with its own arena.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


class SetupError(Exception):
    """A sandbox layer could not be set up; `layer` names it."""

    def __init__(self, layer: str, message: str) -> None:
        super().__init__(message)
        self.layer = layer


@contextlib.contextmanager
def step(layer: str) -> Iterator[None]:
    """Attribute any failure inside the block to `layer`."""
    try:
        yield
    except SetupError:
        raise
    except Exception as exc:
        raise SetupError(layer, f"{type(exc).__name__}: {exc}") from exc


@dataclass
class ChildSpec:
    """What the program's process needs to set itself up."""

    limits: Limits
    layers: frozenset[str]  # the namespace layers in use (see _layers.LAYER_NAMES)
    workdir: str
    tmpdir: str
    private_tmp: bool = True
    keep_in_tmp: tuple[str, ...] = ()  # host paths under /tmp the interpreter needs (bound back in, read-only)
    uid: int = -1  # drop to this host uid first (root hosts); -1 keeps the current one
    gid: int = -1
    session: bool = False
    code: str = ""
    files: dict[str, str] = field(default_factory=dict)  # name -> base64 content

    def to_wire(self) -> dict[str, Any]:
        return {
            "limits": self.limits.to_wire(),
            "layers": sorted(self.layers),
            "workdir": self.workdir,
            "tmpdir": self.tmpdir,
            "private_tmp": self.private_tmp,
            "keep_in_tmp": list(self.keep_in_tmp),
            "uid": self.uid,
            "gid": self.gid,
            "session": self.session,
            "code": self.code,
            "files": self.files,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ChildSpec:
        return cls(
            limits=Limits.from_wire(data["limits"]),
            layers=frozenset(map(str, data["layers"])),
            workdir=str(data["workdir"]),
            tmpdir=str(data["tmpdir"]),
            private_tmp=bool(data["private_tmp"]),
            keep_in_tmp=tuple(map(str, data["keep_in_tmp"])),
            uid=int(data["uid"]),
            gid=int(data["gid"]),
            session=bool(data["session"]),
            code=str(data["code"]),
            files={str(k): str(v) for k, v in data["files"].items()},
        )


def read_job(fd: int) -> ChildSpec:
    """This run's own job: the first frame on its stdin pipe (read exactly, so the program's stdin follows)."""
    msg = _proto.recv(fd)
    if msg is None:
        raise SetupError("sandbox", "the server sent no job")
    return ChildSpec.from_wire(msg)


def place_fds(mapping: dict[int, int]) -> None:
    """Make fd `target` a copy of fd `source` for each pair and close everything else."""
    # Move sources above every target first so a dup2 never clobbers a source still to be placed.
    high = {target: fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, 64) for target, src in mapping.items()}
    for target, tmp in high.items():
        os.dup2(tmp, target, inheritable=target <= 2)  # the setup/session fds stay out of subprocesses
    os.closerange(max(mapping) + 1, max(os.sysconf("SC_OPEN_MAX"), 1024))


def _loopback_up() -> None:
    # A fresh network namespace has only `lo`, and it is down; up it so programs can talk to themselves.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", IFF_UP_LOOPBACK_RUNNING))


def _enter_namespaces(spec: ChildSpec) -> None:
    if "pid_namespace" in spec.layers:
        with step("pid_namespace"):
            L.unshare(L.CLONE_NEWIPC | L.CLONE_NEWUTS)
            L.sethostname("sandbox")
    else:
        # Orphans then re-parent to this process (and, once it exits, to the server), never to init.
        L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
    if "network_namespace" in spec.layers:
        with step("network_namespace"):
            L.unshare(L.CLONE_NEWNET)
            _loopback_up()
    owner = (spec.uid, spec.gid) if spec.uid >= 0 else (os.getuid(), os.getgid())
    if "filesystem" in spec.layers:
        with step("filesystem"):
            L.unshare(L.CLONE_NEWNS)
            size = spec.limits.memory_mb
            setup_run(
                spec.workdir,
                size_mb=size,
                uid=owner[0],
                gid=owner[1],
                private_tmp=spec.private_tmp,
                keep_in_tmp=spec.keep_in_tmp,
            )
    else:
        with step("workdir"):
            os.chown(spec.workdir, *owner)
            os.chmod(spec.workdir, 0o700)


def _become_unprivileged(spec: ChildSpec) -> None:
    if spec.uid >= 0:
        with step("no_root"):
            os.setgroups([])
            os.setresgid(spec.gid, spec.gid, spec.gid)
            os.setresuid(spec.uid, spec.uid, spec.uid)
    # Changing uid cleared "dumpable", which makes /proc/self root-owned; the uid map below needs it.
    L.prctl(L.PR_SET_DUMPABLE, 1)
    if "user_namespace" in spec.layers:
        with step("user_namespace"):
            uid, gid = os.geteuid(), os.getegid()
            L.unshare(L.CLONE_NEWUSER)
            maps = (("setgroups", "deny"), ("uid_map", f"{SANDBOX_UID} {uid} 1"), ("gid_map", f"{SANDBOX_UID} {gid} 1"))
            for name, text in maps:
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
            # No user namespaces below this one: they are the usual door to kernel attack surface.
            with contextlib.suppress(OSError), open("/proc/sys/user/max_user_namespaces", "w") as f:
                f.write("0")
    with step("rlimits"):
        apply_rlimits(spec.limits, session=spec.session)
    with step("no_root"):
        L.clear_capabilities()
        L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)


def _write_files(files: dict[str, str]) -> None:
    for rel, payload in files.items():
        data = base64.b64decode(payload)
        parent = os.path.dirname(rel)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(rel, "wb") as f:
            f.write(data)


def _reset_interpreter(spec: ChildSpec) -> None:
    os.environ.clear()
    os.environ.update(BASE_ENV, HOME=spec.workdir, TMPDIR=spec.tmpdir)
    os.umask(0o022)
    os.chdir(spec.workdir)
    sys.argv = [""]
    sys.path.insert(0, spec.workdir)
    # Fresh stdio objects on the run's pipes, with the encodings a `python file.py` would get.
    streams = {
        "stdin": io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8"),
        "stdout": io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8"),
        "stderr": io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
        ),
    }
    for name, stream in streams.items():
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    atexit._clear()
    # The server's own modules (bare package stubs among them) would shadow the real `hone` package.
    for name in [m for m in sys.modules if m == "hone" or m.startswith("hone.")]:
        del sys.modules[name]
    signal.signal(signal.SIGINT, signal.default_int_handler)


def child_main(fds: dict[int, int]) -> NoReturn:
    """Entry point of the program's process; never returns."""
    try:
        os.setsid()
        L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
        place_fds(fds)
        spec = read_job(0)
        _enter_namespaces(spec)
        _become_unprivileged(spec)
        _reset_interpreter(spec)
        with step("workdir"):
            _write_files(spec.files)
    except BaseException as exc:
        layer = exc.layer if isinstance(exc, SetupError) else "sandbox"
        with contextlib.suppress(BaseException):
            _proto.send(SETUP_FD, {"setup_error": {"layer": layer, "error": str(exc)[:4000]}})
        os._exit(SETUP_FAILED)
    # From here on the program's code runs: the server trusts nothing it could write. Closing the setup
    # pipe (EOF: "set up, ready") is the last thing this process says with the sandbox's authority.
    os.close(SETUP_FD)
    if spec.session:
        _repl()
    _run_script(spec.code)


def _main_module() -> dict[str, Any]:
    mod = types.ModuleType("__main__")
    mod.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = mod  # so pickle and friends find classes the program defines
    return mod.__dict__


_MEMORY_LINE = b"\nMemoryError\n"  # allocated now: it must not need memory when it is written


def _report(exc: BaseException) -> None:
    try:
        tb = exc.__traceback__
        # Hide this module's own frame: tracebacks start at the program's code, as with `python file.py`.
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
    except BaseException:
        if isinstance(exc, MemoryError):
            # Printing the traceback ran out of memory too: the last stderr line still names it.
            with contextlib.suppress(OSError):
                os.write(2, _MEMORY_LINE)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    with contextlib.suppress(BaseException):
        print(exc.code, file=sys.stderr)
    return 1


def _flush() -> bool:
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            ok = False
    return ok


def _run_script(code: str) -> NoReturn:
    env = _main_module()
    linecache.cache["<program>"] = (len(code), None, code.splitlines(True), "<program>")
    rc = 0
    try:
        exec(compile(code, "<program>", "exec"), env)
    except SystemExit as exc:
        rc = _exit_code(exc)
    except BaseException as exc:
        _report(exc)
        rc = 1
    # What the interpreter does at exit: join non-daemon threads, run atexit handlers, flush.
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as exc:
        rc = _exit_code(exc)
    except BaseException as exc:
        _report(exc)
        rc = rc or 1
    if not _flush() and rc == 0:
        rc = 120  # what CPython returns when flushing stdout fails at exit
    os._exit(rc)


def _run_cell(code: str, env: dict[str, Any], name: str) -> int:
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    try:
        tree = ast.parse(code, name, "exec")
        last: ast.Interactive | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            # Like a REPL: the final expression's value goes through sys.displayhook.
            last = ast.Interactive(body=[tree.body.pop()])
        exec(compile(tree, name, "exec"), env)
        if last is not None:
            exec(compile(last, name, "single"), env)
    except SystemExit as exc:
        return _exit_code(exc)
    except BaseException as exc:
        _report(exc)
        return 1
    return 0


def _repl() -> NoReturn:
    env = _main_module()
    count = 0
    while True:
        try:
            msg = _proto.recv(COMMAND_FD)
            nonce = bytes.fromhex(str(msg["nonce"])) if msg is not None else b""
        except (OSError, ValueError, KeyError):
            msg = None
        if msg is None or len(nonce) != _proto.NONCE_BYTES:
            os._exit(0)
        count += 1
        rc = _run_cell(str(msg.get("code", "")), env, f"<cell {count}>")
        _flush()
        try:
            _proto.write_all(RESULT_FD, _proto.CELL_RECORD.pack(nonce, max(RC_MIN, min(rc, RC_MAX))))
        except OSError as exc:
            os._exit(1 if exc.errno == errno.EPIPE else 2)
