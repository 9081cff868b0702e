"""The suite's timeout ends a hung test and names it (tests/timeout_backstop.py), run on a throwaway
test file in a separate pytest process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent

HUNG = """
import time

def test_swallows_the_timeout():
    while True:
        try:
            time.sleep(0.05)
        except BaseException:  # the bug: a handler that eats everything, pytest's timeout included
            pass

def test_after():
    pass
"""

SLOW = """
import time

def test_sleeps():
    time.sleep(60)

def test_after():
    pass
"""


def _pytest(tmp_path: Path, source: str) -> tuple[subprocess.CompletedProcess[str], float]:
    (tmp_path / "test_hung.py").write_text(source)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's settings
    env = {**os.environ, "PYTHONPATH": str(TESTS), "HONE_TEST_TIMEOUT_GRACE": "2"}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "timeout_backstop", "--timeout", "1", "test_hung.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done, time.monotonic() - start


def test_a_test_that_swallows_the_timeout_ends_the_run_named(tmp_path: Path) -> None:
    done, took = _pytest(tmp_path, HUNG)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and took < 60, (took, out[-2000:])
    assert "TIMEOUT: test_hung.py::test_swallows_the_timeout still running 2s after its 1s limit" in out
    assert "test_swallows_the_timeout" in out.split("TIMEOUT:", 1)[1]  # its stack is printed


def test_an_ordinary_hang_fails_only_that_test(tmp_path: Path) -> None:
    done, took = _pytest(tmp_path, SLOW)
    out = done.stdout + done.stderr
    assert done.returncode == 1 and took < 30, (took, out[-2000:])
    assert "1 failed, 1 passed" in out and "FAILED test_hung.py::test_sleeps" in out and "TIMEOUT:" not in out
