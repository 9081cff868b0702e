"""Isolation layers: the report, `hone doctor`, the user-namespace path and the no-namespace fallback."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hone.cli._app import app
from hone.sandbox import LAYER_NAMES, IsolationReport, Sandbox, SandboxError, isolation_report


def test_report_shape(report: IsolationReport) -> None:
    assert [layer.name for layer in report.layers] == list(LAYER_NAMES)
    assert isolation_report() is report  # probed once per process
    for layer in report.layers:
        assert layer.detail
        assert layer.active or layer.fix, layer
    assert report.summary() == f"{sum(x.active for x in report.layers)}/9 isolation layers active"
    with pytest.raises(SandboxError, match="unknown isolation layer"):
        report.active("seccomp")


def test_everything_is_active_as_root(report: IsolationReport) -> None:
    if os.geteuid() != 0:
        pytest.skip("this expectation is for root hosts (as here and on CI)")
    assert not report.missing, report.missing


def test_network_true_is_reported() -> None:
    with Sandbox(workers=1, network=True) as pool:
        layer = pool.layers.get("network_namespace")
        assert not layer.active and layer.detail == "disabled: network=True" and layer.fix == "network=False"
        # The host's interfaces are visible: no network namespace was made.
        names = pool.run_sync("import socket; print(sorted(n for _, n in socket.if_nameindex()))").stdout
        assert names.strip() == str(sorted(n for _, n in socket.if_nameindex()))


def test_doctor() -> None:
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    for word in ("kernel", "root", "bwrap", *LAYER_NAMES, "isolation layers active"):
        assert word in result.output


class _UsernsSandbox(Sandbox):
    _force_userns = True


class _BareSandbox(Sandbox):
    _layers_off = ("pid_namespace", "network_namespace", "filesystem", "user_namespace")


@pytest.fixture(scope="module")
def userns_pool() -> Iterator[Sandbox]:
    with _UsernsSandbox(workers=2, timeout_s=2) as pool:
        yield pool


def test_user_namespace_path(userns_pool: Sandbox) -> None:
    layers = userns_pool.layers
    for name in ("pid_namespace", "network_namespace", "filesystem", "user_namespace", "rlimits", "env_scrub"):
        assert layers.active(name), layers.get(name)
    assert "server itself is in one" in layers.get("user_namespace").detail
    result = userns_pool.run_sync("import os; print(os.getuid(), os.getpid(), os.listdir('.'))")
    assert result.stdout == "65534 1 []\n", result
    assert userns_pool.run_sync("open('/etc/x', 'w')").status == "error"
    with userns_pool.session() as s:
        assert s.run("2 + 2").stdout == "4\n"


def test_fallback_without_namespaces(tmp_path: Path, check_clean: Callable[[Sandbox], None]) -> None:
    """As on a machine without namespaces: the layers are reported missing, and runs still clean up."""
    with _BareSandbox(workers=2, timeout_s=1) as pool:
        layers = pool.layers
        for name in ("pid_namespace", "network_namespace", "filesystem", "user_namespace"):
            assert not layers.active(name) and layers.get(name).fix
        assert layers.summary() == "5/9 isolation layers active"
        where = pool.run_sync("import os; open('f', 'w').write('x'); print(os.getcwd())").stdout.strip()
        assert not os.path.exists(where)  # the host-side working directory was removed
        tmp_path.chmod(0o777)
        marker = tmp_path / "daemon"
        code = (
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            f"        time.sleep(0.4); open({str(marker)!r}, 'w').write('alive'); time.sleep(60)\n"
            "    os._exit(0)\n"
        )
        assert pool.run_sync(code).ok
        bomb = "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass"
        assert pool.run_sync(bomb).status == "timeout"
        time.sleep(0.7)
        assert not marker.exists()
        check_clean(pool)
