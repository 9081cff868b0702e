"""Two real `hone eval` processes on one run id: the second is refused, nothing is spent twice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from hone.core import StoreError
from hone.store import open_store
from hone.testing import OpenAIServer


class GatedServer(OpenAIServer):
    """The mock server, holding every request until `gate` opens: the first run stays busy."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    async def _chat(self, request: web.Request) -> web.Response:
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        return await super()._chat(request)


def _cmd(server: OpenAIServer, db: Path, *extra: str) -> list[str]:
    spec = f"openai-compatible:{server.base_url}:x"
    return [sys.executable, "-m", "hone", "eval", "arith", "-m", spec, "--store", str(db), "--run-id", "dup", *extra]


def test_a_second_process_on_a_running_run_is_refused_and_the_budget_holds(tmp_path: Path) -> None:
    with GatedServer() as server:
        _second_is_refused(server, tmp_path)


def _second_is_refused(server: GatedServer, tmp_path: Path) -> None:
    db = tmp_path / "hone.db"
    args = ("-n", "40", "--concurrency", "2", "--budget", "calls=60")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(_cmd(server, db, *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        holder = None
        while holder is None and time.monotonic() < deadline and first.poll() is None:
            if db.exists():
                try:
                    with open_store(db, readonly=True) as st:
                        holder = st.lease_holder("dup")
                except StoreError:  # caught while the first process creates the schema
                    pass
            time.sleep(0.05)
        assert holder is not None and holder["pid"] == first.pid, "the first run never took its lease"
        second = subprocess.run(_cmd(server, db, *args), capture_output=True, text=True, env=env, timeout=120)
        assert first.poll() is None and server.request_count == 0  # the first run waits at the gate
        server.gate.set()
        lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
        assert second.returncode != 0
        assert lines[-1].startswith("error:") and f"pid {first.pid}" in lines[-1] and "'dup'" in lines[-1], lines
        assert "Traceback" not in second.stderr
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    assert first.returncode == 0, err.decode()
    with open_store(db) as st:
        trajs = list(st.query(run_id="dup"))
        run = st.get_run("dup")
        assert st.lease_holder("dup") is None  # released at the end
    keys = Counter((t.task_id, t.sample) for t in trajs)
    assert set(keys.values()) == {1}
    # every request the server saw is accounted once: in a stored episode, or in one the
    # budget cut short (not stored, kept in the run's ledger)
    assert run is not None and run.summary["stopped_by"] == "budget"
    calls = sum(t.usage.calls for t in trajs) + run.summary["discarded"]["calls"]
    assert calls == run.summary["ledger"]["calls"] == server.request_count <= 60

    # once the holder is done, the same command resumes at once (and has nothing left to spend)
    again = subprocess.run(_cmd(server, db, *args), capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert server.request_count <= 60
