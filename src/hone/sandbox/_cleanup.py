"""Cleaning up after runs when the kernel cannot do it for us (no PID or mount namespace)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile


def children() -> list[int]:
    """Our children, as pids of our own PID namespace (the mounted /proc may be the host's)."""
    with open("/proc/self/status") as f:
        level = next(len(line.split()) - 2 for line in f if line.startswith("NSpid:"))
    me = os.readlink("/proc/self")
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except (OSError, ValueError):
            continue
        nspid = fields.get("NSpid", "").split()
        if fields.get("PPid", "").strip() == me and len(nspid) > level:
            out.append(int(nspid[level]))
    return out


def workdir_base() -> str:
    """Where host working directories go without the filesystem layer: somewhere a dropped uid can reach."""
    for base in ("/dev/shm", "/var/tmp", tempfile.gettempdir()):
        with contextlib.suppress(OSError):
            if os.stat(base).st_mode & 0o001 and os.access(base, os.W_OK | os.X_OK):
                return base
    return tempfile.gettempdir()


def kill_uid(uid: int) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def rmtree(root: str) -> None:
    """Remove a run's host working directory, whatever the program did to it, touching nothing outside it."""
    failed: list[str] = []
    shutil.rmtree(root, onerror=lambda _func, path, _exc: failed.append(path))
    if failed and os.path.isdir(root) and not os.path.islink(root):
        loosen(root)  # the program made parts of its tree unreadable or unwritable
        shutil.rmtree(root, ignore_errors=True)


def loosen(path: str) -> None:
    """Make every directory under `path` rwx for us, through fds opened without following symlinks."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            return  # a symlink or a file: never chmod through it
        os.chmod(f"/proc/self/fd/{fd}", 0o700)
        with os.scandir(path) as entries:
            subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    finally:
        os.close(fd)
    for sub in subdirs:
        loosen(sub)
