"""hone.sandbox: run untrusted, model-written Python safely and fast on a plain Linux machine (stdlib only).

    from hone.sandbox import run_python, Sandbox

    run_python("print(1 + 1)").stdout            # '2\\n'
    with Sandbox(workers=4, timeout_s=5) as sb:
        results = sb.map(programs)               # concurrent, order kept

A pre-started fork server forks one sandbox per run: new PID, network, mount, IPC, UTS and user
namespaces, a read-only root with a fresh tmpfs working directory, rlimits, a scrubbed
environment and an unprivileged uid. `isolation_report()` (and `hone doctor`) say which layers this
machine provides. See docs/sandbox.md.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ._client import isolation_report
from ._layers import LAYER_NAMES, IsolationReport, Layer
from ._pool import Sandbox
from ._result import ExecResult, ExecStatus, SandboxError
from ._session import PythonSession

__all__ = [
    "LAYER_NAMES",
    "ExecResult",
    "ExecStatus",
    "IsolationReport",
    "Layer",
    "PythonSession",
    "Sandbox",
    "SandboxError",
    "default_sandbox",
    "isolation_report",
    "run_python",
]

_defaults: dict[bool, Sandbox] = {}
_defaults_lock = threading.Lock()


def default_sandbox(network: bool = False) -> Sandbox:
    """The process-wide `Sandbox` that `run_python` and hone's verifiers and tools share (started on first use)."""
    with _defaults_lock:
        sandbox = _defaults.get(network)
        if sandbox is None or sandbox.closed:
            sandbox = _defaults[network] = Sandbox(network=network)
        return sandbox


def run_python(
    code: str,
    *,
    stdin: str | None = None,
    files: Mapping[str, str | bytes] | None = None,
    timeout_s: float = 10,
    memory_mb: int = 512,
    max_output_bytes: int = 1_000_000,
    network: bool = False,
) -> ExecResult:
    """Run code as a script (__name__ == "__main__") in a fresh sandbox.

    `files` are written into the working directory first. Uses a module-level `Sandbox` started on
    first use (one per `network` setting) and closed at interpreter exit.
    """
    return default_sandbox(network).run_sync(
        code, stdin=stdin, files=files, timeout_s=timeout_s, memory_mb=memory_mb, max_output_bytes=max_output_bytes
    )
