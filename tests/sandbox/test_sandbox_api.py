"""The public API: run_python, Sandbox (sync, async, map, threads), files and stdin, status mapping, misuse."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import textwrap
import threading
import time

import pytest

from hone.sandbox import ExecResult, Sandbox, SandboxError, run_python
from hone.sandbox._result import truncation_marker


def test_run_python_basics() -> None:
    result = run_python("print('hello'); import sys; print('oops', file=sys.stderr)")
    assert result == ExecResult("ok", 0, "hello\n", "oops\n", result.duration_s)
    assert result.ok and 0 < result.duration_s < 5


def test_script_semantics(sb: Sandbox) -> None:
    result = sb.run_sync(
        textwrap.dedent(
            """
            import pickle, sys
            class Point:
                pass
            print(__name__, sys.argv, pickle.loads(pickle.dumps(Point())).__class__.__name__)
            """
        )
    )
    assert result.stdout == "__main__ [''] Point\n", result


def test_status_mapping(sb: Sandbox) -> None:
    cases = {
        "print(1)": ("ok", 0),
        "raise ValueError('boom')": ("error", 1),
        "import sys; sys.exit(3)": ("error", 3),
        "import sys; sys.exit('bye')": ("error", 1),
        "import os; os._exit(7)": ("error", 7),
        "while True: pass": ("timeout", None),
        "import time; time.sleep(60)": ("timeout", None),
        "x = bytearray(2**40)": ("memory", 1),
        "import os\nwhile True: os.write(1, b'x' * 4096)": ("output_limit", None),
        "import ctypes; ctypes.string_at(0)": ("killed", -signal.SIGSEGV),
    }
    results = sb.map([*cases, "import os; os.abort()"], timeout_s=1, memory_mb=128)
    got = {code: (r.status, r.returncode) for code, r in zip(cases, results, strict=False)}
    assert got == cases
    # As pid 1 of its namespace the program ignores its own SIGABRT; abort() then ends in a fault.
    assert results[-1].status == "killed" and results[-1].returncode in (-signal.SIGABRT, -signal.SIGSEGV)
    error = results[1]
    assert error.stderr.startswith('Traceback (most recent call last):\n  File "<program>", line 1')
    assert error.stderr.rstrip().endswith("ValueError: boom")
    assert "_child.py" not in error.stderr  # the sandbox's own frames are hidden
    assert results[3].stderr == "bye\n"


def test_memory_error_caught_by_the_program_is_ok(sb: Sandbox) -> None:
    result = sb.run_sync("try:\n    x = bytearray(2**40)\nexcept MemoryError:\n    print('coped')", memory_mb=128)
    assert (result.status, result.stdout) == ("ok", "coped\n")


def test_cpu_limit_backs_up_the_wall_clock(sb: Sandbox) -> None:
    # Threads burn CPU faster than the wall clock runs; the CPU rlimit (timeout + 1 s) may end it first.
    code = (
        "import threading\ndef spin():\n    while True: pass\nfor _ in range(4): threading.Thread(target=spin).start()"
    )
    assert sb.run_sync(code, timeout_s=1).status == "timeout"


def test_output_truncation_marker(sb: Sandbox) -> None:
    result = sb.run_sync("print('a' * 5000)", max_output_bytes=100)
    assert result.status == "output_limit"
    assert result.stdout == "a" * 100 + truncation_marker(100)
    exact = sb.run_sync("import sys; sys.stdout.write('b' * 100)", max_output_bytes=100)
    assert (exact.status, exact.stdout) == ("ok", "b" * 100)


def test_stdin_and_files(sb: Sandbox) -> None:
    files = {
        "data.txt": "line1\nline2\n",
        "pkg/helper.py": "def twice(x):\n    return 2 * x\n",
        "blob.bin": b"\x00\xff",
    }
    code = textwrap.dedent(
        """
        import sys
        from pkg.helper import twice
        data = open('data.txt').read().split()
        print(sys.stdin.read().strip().upper(), data, twice(21), open('blob.bin', 'rb').read())
        """
    )
    result = sb.run_sync(code, stdin="shout\n", files=files)
    assert result.stdout == "SHOUT ['line1', 'line2'] 42 b'\\x00\\xff'\n", result
    big = "x" * 3_000_000  # far more than a pipe holds
    assert sb.run_sync("import sys; print(len(sys.stdin.read()))", stdin=big).stdout == "3000000\n"
    # A program that never reads its stdin still finishes.
    assert sb.run_sync("print('ignored')", stdin=big).ok


def test_a_program_is_a_proper_fork(sb: Sandbox) -> None:
    # Programs are cloned through a raw clone(2), not glibc's fork(): glibc's thread descriptor must
    # still hold the program's own tid (its recursive locks, dlopen's among them, record owners by tid).
    code = textwrap.dedent(
        """
        import ctypes, threading
        libc = ctypes.CDLL(None)
        try:
            _, _, offset = (ctypes.c_uint32 * 3).in_dll(libc, "_thread_db_pthread_tid")
        except ValueError:
            print("no glibc")
            raise SystemExit
        libc.pthread_self.restype = ctypes.c_void_p
        seen = []
        def check():
            seen.append(ctypes.c_int.from_address(libc.pthread_self() + offset).value == threading.get_native_id())
        check()
        t = threading.Thread(target=check)
        t.start()
        t.join()
        print(seen)
        """
    )
    result = sb.run_sync(code)
    if result.stdout == "no glibc\n":
        pytest.skip("the C library is not glibc")
    assert result.stdout == "[True, True]\n", result


def test_unicode_round_trip(sb: Sandbox) -> None:
    result = sb.run_sync("import sys; print(sys.stdin.read()[::-1]); print('ü', file=sys.stderr)", stdin="héllo ✓")
    assert (result.stdout, result.stderr) == ("✓ olléh\n", "ü\n")
    assert sb.run_sync("import os; os.write(1, b'\\xff\\xfe ok')").stdout == "\ufffd\ufffd ok"


def test_environment_and_workdir(sb: Sandbox) -> None:
    result = sb.run_sync("import os, json; print(json.dumps([os.getcwd(), os.environ['HOME'], os.listdir('.')]))")
    cwd, home, listing = json.loads(result.stdout)
    assert cwd == home and listing == []
    # Each run gets a fresh directory: nothing from the previous run is there.
    sb.run_sync("open('left-over', 'w').write('x')")
    assert sb.run_sync("import os; print(os.listdir('.'))").stdout == "[]\n"


def test_hypothesis_and_numpy_are_importable(sb: Sandbox) -> None:
    code = textwrap.dedent(
        """
        import numpy as np
        from hypothesis import given, settings, strategies as st
        @settings(max_examples=20, database=None)
        @given(st.integers())
        def prop(x):
            assert x + 0 == x
        prop()
        print(int(np.arange(4).sum()))
        """
    )
    result = sb.run_sync(code, timeout_s=20)
    assert result.stdout == "6\n", result


def test_map_keeps_order_and_runs_concurrently() -> None:
    with Sandbox(workers=4, timeout_s=5) as pool:
        start = time.monotonic()
        results = pool.map([f"import time; time.sleep(0.3); print({i})" for i in range(8)])
        elapsed = time.monotonic() - start
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]
    assert elapsed < 2.0  # 8 x 0.3 s serially would be 2.4 s


def test_thread_safety(sb: Sandbox) -> None:
    out: dict[int, str] = {}

    def worker(i: int) -> None:
        out[i] = sb.run_sync(f"print({i} * {i})").stdout

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {i: f"{i * i}\n" for i in range(12)}


async def test_async_run_and_cancel(sb: Sandbox) -> None:
    results = await asyncio.gather(*(sb.run(f"print({i})") for i in range(6)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]
    task = asyncio.create_task(sb.run("import time; time.sleep(30)", timeout_s=60))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await sb.run("print('next')")).stdout == "next\n"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": float("nan")}, "timeout_s"),
        ({"memory_mb": 8}, "memory_mb"),
        ({"files": {"/etc/passwd": "x"}}, "bad file name"),
        ({"files": {"../up": "x"}}, "bad file name"),
        ({"files": {"a//b": "x"}}, "bad file name"),
        ({"files": {"ok": 3}}, "str or bytes"),
        ({"stdin": b"bytes"}, "stdin"),
    ],
)
def test_misuse_raises(sb: Sandbox, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(SandboxError, match=match):
        sb.run_sync("print(1)", **kwargs)  # type: ignore[arg-type]


def test_constructor_validation() -> None:
    with pytest.raises(SandboxError, match="workers"):
        Sandbox(workers=0)
    with pytest.raises(SandboxError, match="max_output_bytes"):
        Sandbox(max_output_bytes=0)
    with pytest.raises(SandboxError, match="code must be a str"):
        run_python(b"print(1)")  # type: ignore[arg-type]


def test_close_kills_running_programs() -> None:
    pool = Sandbox(workers=2, timeout_s=30)
    launcher = pool._holder.client.launcher_pid
    fut = threading.Thread(target=lambda: errors.append(_run_expecting_error(pool)))
    errors: list[str] = []
    fut.start()
    time.sleep(0.5)
    pool.close()
    fut.join(timeout=10)
    assert errors and "closed" in errors[0]
    with pytest.raises(SandboxError, match="closed"):
        pool.run_sync("print(1)")
    pool.close()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.kill(launcher, 0)


def _run_expecting_error(pool: Sandbox) -> str:
    try:
        pool.run_sync("import time; time.sleep(60)")
    except SandboxError as exc:
        return str(exc)
    return "no error"


def test_server_death_is_survived() -> None:
    with Sandbox(workers=2) as pool:
        first = pool._holder.client
        os.kill(first.launcher_pid, signal.SIGKILL)
        first.proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while first.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        # The next run starts a fresh server instead of failing forever.
        assert pool.run_sync("print('back')").stdout == "back\n"
        assert pool._holder.client is not first


def test_a_forked_host_gets_its_own_server(sb: Sandbox) -> None:
    parent_server = sb._holder.client.server_pid
    assert sb.run_sync("print(1)").ok
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code, and never returns
        ok = False
        try:
            ok = sb.run_sync("print('child')").stdout == "child\n"
            ok = ok and sb._holder.client.server_pid != parent_server
            sb._holder.client.close()
        except BaseException:
            pass
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sb._holder.client.server_pid == parent_server
    assert sb.run_sync("print('parent')").stdout == "parent\n"
