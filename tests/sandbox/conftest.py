"""Shared fixtures for the sandbox tests: a pool per module, layer requirements, leftover checks."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from hone.sandbox import IsolationReport, Sandbox, isolation_report

SECRET = "hone-test-secret-7f3a91"


@pytest.fixture(scope="session")
def secret() -> str:
    """The value of HONE_TEST_SECRET in the host's environment while the module's pool runs."""
    return SECRET


@pytest.fixture(scope="session")
def report() -> IsolationReport:
    return isolation_report()


@pytest.fixture
def need(sb: Sandbox) -> Callable[..., None]:
    """need("filesystem", ...): skip, with the reason, when a layer is missing (on this machine, or turned off)."""

    def check(*names: str) -> None:
        for name in names:
            layer = sb.layers.get(name)
            if not layer.active:
                pytest.skip(f"isolation layer {name} is not active here: {layer.detail} (to add it: {layer.fix})")

    return check


class _Degraded(Sandbox):
    # HONE_TEST_SANDBOX_LAYERS_OFF=filesystem,pid_namespace,... runs the suite as on a machine without them;
    # HONE_TEST_SANDBOX_USERNS=1 takes the unprivileged (user namespace) path even as root.
    _layers_off = tuple(filter(None, os.environ.get("HONE_TEST_SANDBOX_LAYERS_OFF", "").split(",")))
    _force_userns = os.environ.get("HONE_TEST_SANDBOX_USERNS", "") == "1"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    # Set before the pool starts: the secret must still never reach a program.
    os.environ["HONE_TEST_SECRET"] = SECRET
    try:
        with _Degraded(workers=4, timeout_s=2, memory_mb=256) as pool:
            yield pool
    finally:
        os.environ.pop("HONE_TEST_SECRET", None)


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, real uid) for every process on the host."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except (OSError, ValueError):
            continue
        out[int(name)] = (int(fields["PPid"]), int(fields["Uid"].split()[0]))
    return out


def leftovers(pool: Sandbox) -> list[str]:
    """Processes that outlived their run: children of the server, or anything running as a sandbox uid."""
    client = pool._holder.client
    procs = _processes()
    stray = [
        f"pid {pid} (child of the server)"
        for pid, (ppid, _) in procs.items()
        if ppid == client.server_pid and pid != client.forker_pid
    ]
    if client.uid_base >= 0:
        lo, hi = client.uid_base, client.uid_base + 4096
        stray += [f"pid {pid} (uid {uid})" for pid, (_, uid) in procs.items() if lo <= uid < hi]
    return stray


def assert_clean(pool: Sandbox) -> None:
    """Nothing of any finished run is left: no process, and no sandbox path on the host."""
    deadline = time.monotonic() + 2
    while (stray := leftovers(pool)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not stray, f"{len(stray)} processes outlived their run: {stray[:5]}"
    assert not os.path.exists("/sandbox"), "the sandbox working directory leaked onto the host"
    assert pool.run_sync("print('still here')").stdout == "still here\n"


@pytest.fixture
def check_clean() -> Callable[[Sandbox], None]:
    """The leftover check, for tests that bring their own pool."""
    return assert_clean


@pytest.fixture
def clean(sb: Sandbox) -> Iterator[Sandbox]:
    """The module's pool; after the test, checks that the run left nothing behind and the pool still works."""
    yield sb
    assert_clean(sb)
