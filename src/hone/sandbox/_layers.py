"""Which isolation layers a machine gives the sandbox, as found by probing (not by guessing)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._limits import NOFILE, NPROC, SANDBOX_UID
from ._result import SandboxError

LAYER_NAMES = (
    "workdir",
    "process_group",
    "rlimits",
    "env_scrub",
    "no_root",
    "pid_namespace",
    "network_namespace",
    "filesystem",
    "user_namespace",
)

USERNS_FIX = (
    "enable unprivileged user namespaces: sysctl user.max_user_namespaces=15000 and "
    "kernel.unprivileged_userns_clone=1 (Ubuntu 24.04+: kernel.apparmor_restrict_unprivileged_userns=0)"
)
_NS_FIX = f"run as root, or {USERNS_FIX}; in a container also allow unshare/mount (e.g. --privileged)"
FIXES = {
    "no_root": "run as root (programs then drop to a dedicated uid) or enable user namespaces",
    "pid_namespace": _NS_FIX,
    "network_namespace": _NS_FIX,
    "filesystem": _NS_FIX,
    "user_namespace": USERNS_FIX,
}


@dataclass(frozen=True)
class Layer:
    """One isolation layer: whether it is active, how it is built, and what would add it when missing."""

    name: str
    active: bool
    detail: str
    fix: str


@dataclass(frozen=True)
class IsolationReport:
    """The isolation layers in effect, in a fixed order (see `LAYER_NAMES`)."""

    layers: tuple[Layer, ...]

    def get(self, name: str) -> Layer:
        """The layer called `name`."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise SandboxError(f"unknown isolation layer {name!r}; layers are {', '.join(LAYER_NAMES)}")

    def active(self, name: str) -> bool:
        """Whether the layer called `name` is active."""
        return self.get(name).active

    @property
    def missing(self) -> tuple[Layer, ...]:
        """The layers that are not active."""
        return tuple(layer for layer in self.layers if not layer.active)

    def summary(self) -> str:
        """One line, e.g. "9/9 isolation layers active"."""
        return f"{len(self.layers) - len(self.missing)}/{len(self.layers)} isolation layers active"

    def to_wire(self) -> list[dict[str, Any]]:
        return [{"name": x.name, "active": x.active, "detail": x.detail, "fix": x.fix} for x in self.layers]

    @classmethod
    def from_wire(cls, data: Iterable[Mapping[str, Any]]) -> IsolationReport:
        return cls(tuple(Layer(str(d["name"]), bool(d["active"]), str(d["detail"]), str(d["fix"])) for d in data))


def make_report(
    active: Mapping[str, bool], details: Mapping[str, str], fixes: Mapping[str, str] | None = None
) -> IsolationReport:
    """Assemble a report in the canonical order; a missing layer always carries its fix."""
    fix = {**FIXES, **(fixes or {})}
    return IsolationReport(
        tuple(
            Layer(name, active[name], details.get(name, ""), "" if active[name] else fix.get(name, ""))
            for name in LAYER_NAMES
        )
    )


# Runs through the full sandbox at start-up; what it sees decides which layers are reported active.
PROBE_CODE = """
import json, os, socket
r = {"uid": os.getuid(), "pid": os.getpid(), "env": sorted(os.environ)}
with open("/proc/self/status") as f:
    for line in f:
        key, _, value = line.partition(":")
        if key == "CapEff":
            r["cap_eff"] = int(value, 16)
r["ifaces"] = sorted(name for _, name in socket.if_nameindex())
r["root_ro"] = bool(os.statvfs("/").f_flag & os.ST_RDONLY)
r["stdlib"] = os.path.dirname(os.__file__)
r["stdlib_ok"] = os.access(r["stdlib"], os.R_OK | os.X_OK)
print(json.dumps(r))
"""


@dataclass(frozen=True)
class Setup:
    """What a server set up, as `describe` needs it."""

    plan: frozenset[str]  # the namespace layers in use
    notes: Mapping[str, str]  # why a layer is missing
    workdir: str
    workdir_base: str
    uid_base: int
    host_root: bool
    userns: bool
    network: bool
    env_keys: frozenset[str]


def describe(setup: Setup, seen: Mapping[str, Any]) -> IsolationReport:
    """Turn what the server set up and what the probe program saw into the report."""
    plan, notes = setup.plan, dict(setup.notes)
    checks = {
        "pid_namespace": seen["pid"] == 1,
        "network_namespace": seen["ifaces"] == ["lo"],
        "filesystem": bool(seen["root_ro"]),
        "user_namespace": seen["uid"] == SANDBOX_UID,
    }
    active = {name: True for name in LAYER_NAMES}
    for name, ok in checks.items():
        active[name] = name in plan and ok
        if name in plan and not ok:
            notes[name] = "set up, but the probe program did not see it in effect"
    active["no_root"] = ("no_root" in plan or not setup.host_root) and seen["cap_eff"] == 0
    active["env_scrub"] = set(seen["env"]) <= setup.env_keys
    details = {
        "workdir": (
            f"fresh tmpfs at {setup.workdir} per run, capped at memory_mb (shared with /tmp and /dev/shm); "
            "gone when the run ends"
            if "filesystem" in plan
            else f"fresh directory under {setup.workdir_base} per run, removed afterwards"
        ),
        "process_group": (
            "own session and process group; the program is pid 1 of its PID namespace, so everything "
            "it started dies with it"
            if active["pid_namespace"]
            else "own session and process group; at the end the group, the run's uid and every orphan are killed"
        ),
        "rlimits": (
            f"CPU = timeout + 1 s, address space and file size = memory_mb, {NPROC} processes/threads, "
            f"{NOFILE} files, no core dumps; soft = hard"
        ),
        "env_scrub": "only PATH, HOME, TMPDIR, LANG and thread-count variables; nothing from the host",
        "no_root": (
            f"programs run as a dedicated unprivileged uid per slot ({setup.uid_base}+slot), no groups, "
            "no capabilities, no_new_privs"
            if "no_root" in plan
            else f"host user is uid {os.getuid()}; programs get no capabilities and no_new_privs"
            if not setup.host_root
            else "programs would run as root"
        ),
        "pid_namespace": "new PID, IPC and UTS namespaces per run; host processes are invisible",
        "network_namespace": "new network namespace per run with only loopback: no route out",
        "filesystem": (
            "pivot_root into a read-only tmpfs root with read-only binds of /usr, /lib*, /bin, a curated /etc "
            "and the Python install; /home, /root, host /tmp and the rest of the host are absent"
        ),
        "user_namespace": (
            f"each program in its own user namespace as uid {SANDBOX_UID}, with further user namespaces disabled"
            + ("; the server itself is in one (root mapped to the host user)" if setup.userns else "")
        ),
    }
    for name in LAYER_NAMES:
        if not active[name]:
            details[name] = notes.get(name, "not available")
    if not seen["stdlib_ok"]:
        details["no_root"] += (
            f"; warning: programs cannot read the Python install ({seen['stdlib']}), so they can import only "
            "what the server preloaded (make it world-readable, or enable the filesystem layer)"
        )
    if not active["no_root"] and setup.host_root:
        details["rlimits"] += "; but RLIMIT_NPROC is not enforced: the kernel never applies it to uid 0"
    if setup.network:
        details["network_namespace"] = "disabled: network=True"
    fixes = {"network_namespace": "network=False"} if setup.network else {}
    return make_report(active, details, fixes)
