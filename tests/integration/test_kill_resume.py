"""SIGKILL a `hone eval` mid-run, rerun with the same run id: every task x sample stored once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from hone.store import open_store
from hone.testing import OpenAIServer


def test_sigkill_then_resume_stores_each_pair_exactly_once(server: OpenAIServer, tmp_path: Path) -> None:
    server.delay_s = 0.03
    db = tmp_path / "hone.db"
    cmd = [
        sys.executable,
        "-m",
        "hone",
        "eval",
        "arith",
        "-m",
        f"openai-compatible:{server.base_url}:x",
        "-n",
        "60",
        "-k",
        "2",
        "--concurrency",
        "4",
        "--store",
        str(db),
        "--run-id",
        "kill",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    stored = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                with open_store(db) as st:
                    stored = st.count("kill")
                if stored >= 20:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed; slow the server down"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    with open_store(db) as st:
        partial = st.count("kill")
        run = st.get_run("kill")
        holder = st.lease_holder("kill")
    assert 20 <= partial < 120
    assert run is not None and run.status == "running"  # killed: no chance to mark it
    # its lease is still there, unexpired; the rerun below may take it because its pid is dead
    assert holder is not None and holder["pid"] == proc.pid and holder["expires_at"] > time.time()

    server.delay_s = 0.0
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    with open_store(db) as st:
        trajs = list(st.query(run_id="kill"))
        run = st.get_run("kill")
    keys = Counter((t.task_id, t.sample) for t in trajs)
    assert len(trajs) == 120 and len(keys) == 120 and set(keys.values()) == {1}
    assert run is not None and run.status == "done"
