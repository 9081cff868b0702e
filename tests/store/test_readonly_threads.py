"""A store opened read-only is read from many threads at once (`hone view`'s request threads)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from _store_factory import make_traj

from hone.store import open_store

HAMMER = textwrap.dedent(
    """
    import sys, threading
    from hone.store import open_store
    st = open_store(sys.argv[1], readonly=True)
    errors = []
    def work():
        try:
            for _ in range(40):
                assert st.count("r") == 200
                assert len(list(st.query(run_id="r", limit=50))) == 50
        except Exception as exc:  # a wrong answer or a driver error; a crash ends the process
            errors.append(repr(exc))
    threads = [threading.Thread(target=work) for _ in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print("errors:", errors[:2] if errors else "none")
    sys.exit(1 if errors else 0)
    """
)


def test_sixteen_threads_read_a_read_only_store_at_once(tmp_path: Path) -> None:
    path = tmp_path / "hone.db"
    with open_store(path) as st:
        st.put_many(make_traj(f"t{i}", run_id="r", minute=i) for i in range(200))
    # In a child process: sqlite3 used by two threads at once can crash the interpreter outright.
    done = subprocess.run([sys.executable, "-c", HAMMER, str(path)], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, (done.returncode, done.stdout[-500:], done.stderr[-1500:])
    assert "errors: none" in done.stdout
