"""The sandbox filesystem: a read-only root built once per server, plus a size-capped scratch tmpfs per run.

The server builds the root (tmpfs with read-only binds of what Python needs), pivots into it and
drops the host's mounts from its namespace. Each run then copies that small mount namespace and
mounts a fresh tmpfs for the working directory, /tmp and /dev/shm, and a fresh /proc for its PID
namespace. Nothing of the host outside those binds is reachable; nothing a run writes touches disk.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence

from . import _libc as L
from ._limits import SANDBOX_UID

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc is curated: only what libc and Python read; host secrets and user lists stay out.
ETC_ENTRIES = (
    "alternatives",
    "ca-certificates",
    "gai.conf",
    "host.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "protocols",
    "services",
    "ssl",
    "timezone",
)
DEV_NODES = ("null", "zero", "full", "random", "urandom")
SCRATCH = "/.scratch"
_SPECIAL = ("/proc", "/dev", "/sys", "/run")

_PASSWD = f"root:x:0:0:root:/root:/bin/sh\nnobody:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{{home}}:/bin/sh\n"
_GROUP = f"root:x:0:\nnogroup:x:{SANDBOX_UID}:\n"
_HOSTS = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def python_paths() -> list[str]:
    """Host directories the interpreter needs: prefixes, the executable's directory, sys.path entries."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    if sys.executable:
        candidates += [os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))]
    candidates += sys.path
    found: set[str] = set()
    for raw in candidates:
        if not raw:
            continue
        for path in {os.path.abspath(raw), os.path.realpath(raw)}:
            if os.path.isdir(path) and path != "/" and not any(_under(path, s) for s in _SPECIAL):
                found.add(path)
    kept: list[str] = []
    covered = [os.path.realpath(d) for d in SYSTEM_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    for path in sorted(found, key=len):
        if not any(_under(path, c) for c in covered + kept):
            kept.append(path)
    return kept


def choose_workdir(paths: list[str]) -> str:
    """A working-directory path that no bound host path lives under."""
    for name in ("/sandbox", "/sandbox-work", "/sandbox-run"):
        if not any(_under(p, name) or _under(name, p) for p in paths):
            return name
    raise OSError(errno.EEXIST, "no free path for the sandbox working directory")


def _atime_flags(path: str) -> int:
    # In a user namespace a bind remount must keep the source's exec/atime flags ("locked" flags).
    f = os.statvfs(path).f_flag
    flags = L.MS_NOEXEC if f & os.ST_NOEXEC else 0
    if f & os.ST_NOATIME:
        flags |= L.MS_NOATIME
    elif f & os.ST_RELATIME:
        flags |= L.MS_RELATIME
    else:
        flags |= L.MS_STRICTATIME
    if f & os.ST_NODIRATIME:
        flags |= L.MS_NODIRATIME
    return flags


def bind(src: str, dst: str, *, readonly: bool = True, extra: int = 0) -> None:
    """Bind-mount src on dst (non-recursive), then remount it read-only, nosuid and nodev."""
    L.mount(src, dst, None, L.MS_BIND)
    if readonly:
        flags = L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV | extra | _atime_flags(src)
        L.mount(None, dst, None, flags)


def _replicate(path: str, root: str) -> None:
    """Mirror a host path into the new root: symlinks as symlinks, dirs and files as read-only binds."""
    target = root + path
    try:
        if os.path.islink(path):
            os.symlink(os.readlink(path), target)
        elif os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
            bind(path, target)
        elif os.path.isfile(path):
            with open(target, "w"):
                pass
            bind(path, target)
    except FileNotFoundError:
        pass


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def build_root(root: str, paths: list[str], workdir: str, *, private_tmp: bool) -> None:
    """Build the read-only sandbox root on the empty directory `root` (in the server's own mount namespace)."""
    L.mount("tmpfs", root, "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=4m,nr_inodes=8192,mode=755")
    for d in SYSTEM_DIRS:
        _replicate(d, root)
    os.mkdir(root + "/etc", 0o755)
    for name in ETC_ENTRIES:
        _replicate("/etc/" + name, root)
    _write(root + "/etc/passwd", _PASSWD.format(home=workdir))
    _write(root + "/etc/group", _GROUP)
    _write(root + "/etc/hosts", _HOSTS)
    _write(root + "/etc/hostname", "sandbox\n")
    os.mkdir(root + "/dev", 0o755)
    for name in DEV_NODES:
        if os.path.exists("/dev/" + name):
            _write(root + "/dev/" + name, "")
            bind("/dev/" + name, root + "/dev/" + name, readonly=False)
    for name, dest in (("fd", ""), ("stdin", "/0"), ("stdout", "/1"), ("stderr", "/2")):
        os.symlink("/proc/self/fd" + dest, f"{root}/dev/{name}")
    for path in paths:
        os.makedirs(root + path, exist_ok=True)
        bind(path, root + path)
    for d, mode in (("/dev/shm", 0o1777), ("/tmp", 0o1777), ("/proc", 0o555), (workdir, 0o755), (SCRATCH, 0o700)):
        os.makedirs(root + d, exist_ok=True)
        os.chmod(root + d, mode)
    if not private_tmp:
        os.chmod(root + "/tmp", 0o755)
    # This /proc shows the server's PID namespace; each run mounts its own over it. It must exist so a
    # user-namespaced run may mount proc at all (the kernel wants a fully visible proc in the namespace).
    L.mount("proc", root + "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
    L.mount(None, root, None, L.MS_REMOUNT | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV)


def enter_root(root: str) -> None:
    """pivot_root into `root` and detach the host's mounts from this mount namespace."""
    os.chdir(root)
    L.pivot_root(".", ".")
    L.umount2(".", L.MNT_DETACH)
    os.chdir("/")


def _mkdirs_readable(path: str) -> None:
    """Create `path` and its missing parents root-owned 0755 (whatever the umask): the program can
    traverse them but not replace them."""
    current = ""
    for part in path.strip("/").split("/"):
        current += "/" + part
        if not os.path.isdir(current):
            os.mkdir(current)
            os.chmod(current, 0o755)


def setup_run(
    workdir: str, *, size_mb: int, uid: int, gid: int, private_tmp: bool, keep_in_tmp: Sequence[str] = ()
) -> None:
    """In a run's fresh mount namespace: one capped tmpfs for workdir, /tmp, /dev/shm; a fresh /proc.

    `keep_in_tmp` are root paths under /tmp (the interpreter's, when it lives there): they are held
    aside before the private /tmp covers them and bound back at the same paths, read-only.
    """
    L.mount("tmpfs", SCRATCH, "tmpfs", L.MS_NOSUID | L.MS_NODEV, f"size={size_mb}m,nr_inodes=65536,mode=755")
    held = []
    for i, path in enumerate(keep_in_tmp if private_tmp else ()):
        aside = f"{SCRATCH}/keep-{i}"
        os.mkdir(aside, 0o700)
        L.mount(path, aside, None, L.MS_BIND)
        held.append((aside, path))
    subdirs = [("work", workdir, 0o700), ("shm", "/dev/shm", 0o1777)]
    if private_tmp:
        subdirs.append(("tmp", "/tmp", 0o1777))
    for name, dest, mode in subdirs:
        src = f"{SCRATCH}/{name}"
        os.mkdir(src)
        os.chmod(src, mode)
        if name == "work":
            os.chown(src, uid, gid)
        L.mount(src, dest, None, L.MS_BIND)
    for aside, path in held:
        _mkdirs_readable(path)
        bind(aside, path)
    # The binds keep the tmpfs alive; the staging mount itself is not needed any more.
    L.umount2(SCRATCH, L.MNT_DETACH)
    flags = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC
    try:
        L.mount("proc", "/proc", "proc", flags, "hidepid=2")
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        L.mount("proc", "/proc", "proc", flags)
