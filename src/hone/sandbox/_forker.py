"""The clean forker: the one process that forks programs, and one that never holds a request.

A program forked from the server would inherit the server's heap: the code, stdin and files of
every other run queued or in flight, and the freed (not zeroed) bytes of past ones, readable
through /proc/self/mem. So the server forks this process once, before it receives any request,
and asks it for each run's process with a fixed-size, data-free command (whether to give the run a
new PID namespace) plus the run's pipes (SCM_RIGHTS). The forker clones with CLONE_PARENT, so
the server stays the parent: its wait4 (status, rusage) and reaping work as before. The new
process then reads its own job (spec, code, files) from its stdin pipe, written by the server
after the fork: the only request data in its memory is its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import os
import platform
import signal
import socket
import struct
import threading
from typing import Any, NoReturn

from . import _libc as L
from ._child import child_main

CLONE_PARENT = 0x00008000
CLONE_CHILD_SETTID = 0x01000000
CLONE_CHILD_CLEARTID = 0x00200000
# clone(2): flags, stack, parent_tid, then child_tid and tls in this order on x86_64 and swapped on the others.
_SYS_CLONE = {"x86_64": (56, True), "aarch64": (220, False), "riscv64": (220, False), "ppc64le": (120, False)}
_CMD = struct.Struct("=ii")  # new PID namespace (0/1), number of fds
_REPLY = struct.Struct("=i")  # the new pid, or -errno
MAX_FDS = 8

# PyDLL: called with the GIL held, so the clone happens inside one thread state, as in os.fork.
_api: Any = ctypes.PyDLL(None, use_errno=True)
_api.syscall.restype = ctypes.c_long
_api.pthread_self.restype = ctypes.c_void_p


def _tid_address() -> int | None:
    """Where glibc keeps the calling thread's tid (what its fork() has the kernel set in the child)."""
    # The layout libthread_db reads: (bits, count, offset) of `tid` in struct pthread.
    with contextlib.suppress(ValueError):
        bits, _, offset = (ctypes.c_uint32 * 3).in_dll(_api, "_thread_db_pthread_tid")
        address = int(_api.pthread_self()) + int(offset)
        if bits == 32 and ctypes.c_int.from_address(address).value == threading.get_native_id():
            return address
    return None


class ForkerGone(OSError):
    """The forker process is gone: no run can start on this server any more."""


def _clone(flags: int, tid_address: int | None) -> int:
    """What os.fork() does, but the child's parent is our parent (CLONE_PARENT); 0 in the child."""
    nr, ctid_first = _SYS_CLONE.get(platform.machine(), (0, False))
    if not nr:
        raise OSError(errno.ENOSYS, f"clone: unsupported architecture {platform.machine()}")
    flags |= CLONE_PARENT | signal.SIGCHLD
    if tid_address is not None:
        # Like glibc's fork: the kernel writes the child's tid into glibc's thread descriptor, so that
        # glibc's own locks (which record their owner's tid) stay right in the child.
        flags |= CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID
    ctid = ctypes.c_void_p(tid_address)
    tids = (None, ctid, None) if ctid_first else (None, None, ctid)
    _api.PyOS_BeforeFork()
    pid = int(_api.syscall(ctypes.c_long(nr), ctypes.c_ulong(flags), None, *tids))
    if pid == 0:
        _api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    _api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone: {os.strerror(err)}")
    return pid


def _host_pid(proc: int) -> int:
    """Our pid as the host sees it (`proc`: the host's /proc, opened before the server left it)."""
    with open(os.open("self/status", os.O_RDONLY, dir_fd=proc)) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return int(line.split()[1])
    return os.getpid()


def _serve(sock: socket.socket, proc: int) -> NoReturn:
    L.prctl(L.PR_SET_PDEATHSIG, signal.SIGKILL)
    host_pid = _host_pid(proc) if proc >= 0 else os.getpid()
    tid_address = _tid_address()
    keep = sock.fileno()
    os.closerange(3, keep)  # the host's pipes, the server's namespace fds: none of them are ours
    os.closerange(keep + 1, max(os.sysconf("SC_OPEN_MAX"), 1024))
    gc.collect()
    gc.freeze()  # a collection in a forked child would otherwise touch (and so copy) the whole heap
    sock.send(_REPLY.pack(host_pid))
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, _CMD.size, MAX_FDS)
        if len(msg) != _CMD.size:
            os._exit(0)  # the server is gone
        newpid, _ = _CMD.unpack(msg)
        try:
            pid = _clone(L.CLONE_NEWPID if newpid else 0, tid_address)
        except OSError as exc:
            pid = -(exc.errno or errno.EIO)
        if pid == 0:
            try:
                child_main(dict(enumerate(fds)))
            finally:
                os._exit(125)
        for fd in fds:
            os.close(fd)
        sock.send(_REPLY.pack(pid))


class Forker:
    """The server's handle on its forker process (started before the server sees any request)."""

    def __init__(self, proc: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                ours.close()
                _serve(theirs, proc)
            finally:
                os._exit(1)
        theirs.close()
        self.pid, self.sock = pid, ours
        self.host_pid = self._reply()

    def _reply(self) -> int:
        data = self.sock.recv(_REPLY.size)
        if len(data) != _REPLY.size:
            raise ForkerGone(errno.EPIPE, "the sandbox's forker process is gone")
        return int(_REPLY.unpack(data)[0])

    def spawn(self, fds: list[int], *, new_pid_namespace: bool) -> int:
        """Start a run's process with `fds` as its fds 0, 1, 2, ...; its pid (our child)."""
        try:
            socket.send_fds(self.sock, [_CMD.pack(int(new_pid_namespace), len(fds))], fds)
        except OSError as exc:
            raise ForkerGone(exc.errno, f"the sandbox's forker process is gone: {exc}") from exc
        pid = self._reply()
        if pid < 0:
            raise OSError(-pid, f"clone: {os.strerror(-pid)}")
        return pid
