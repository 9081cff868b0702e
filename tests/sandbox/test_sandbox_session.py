"""PythonSession: a persistent sandboxed interpreter."""

from __future__ import annotations

import time

import pytest

from hone.sandbox import Sandbox, SandboxError


def test_state_persists_and_expressions_display(sb: Sandbox) -> None:
    with sb.session() as s:
        assert s.run("x = 40\ndef f(y):\n    return x + y").stdout == ""
        assert s.run("f(2)").stdout == "42\n"
        assert s.run("None").stdout == ""  # like a REPL: None is not echoed
        assert s.run("import math\nmath.pi > 3").stdout == "True\n"
        assert s.run("print('a'); 'b'").stdout == "a\n'b'\n"
        assert s.run("_").stdout == "'b'\n"


def test_errors_do_not_end_the_session(sb: Sandbox) -> None:
    with sb.session(memory_mb=128) as s:
        s.run("kept = 'yes'")
        err = s.run("1 / 0")
        assert err.status == "error" and err.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
        assert 'File "<cell 2>", line 1' in err.stderr
        assert s.run("def broken(:").status == "error"
        assert s.run("x = bytearray(2**40)").status == "memory"
        exit_cell = s.run("import sys; sys.exit(5)")
        assert (exit_cell.status, exit_cell.returncode) == ("error", 5)
        assert s.run("kept").stdout == "'yes'\n"
        assert s.alive


def test_timeout_ends_the_session(sb: Sandbox) -> None:
    s = sb.session()
    s.run("state = 1")
    result = s.run("while True: pass", timeout_s=0.5)
    assert result.status == "timeout" and result.returncode is None
    assert not s.alive
    with pytest.raises(SandboxError, match=r"session is dead.*timeout"):
        s.run("state")
    s.close()


def test_a_call_timeout_shorter_than_the_sessions_is_kept(sb: Sandbox) -> None:
    """The measured time, not just the status: a 0.5 s call in a 30 s session must end near 0.5 s."""
    with sb.session(timeout_s=30) as s:
        start = time.monotonic()
        result = s.run("while True: pass", timeout_s=0.5)
        took = time.monotonic() - start
    assert result.status == "timeout" and 0.4 <= took < 5, took


def test_output_limit_and_exit_end_the_session(sb: Sandbox) -> None:
    with sb.session() as s:
        assert s.run("import os\nwhile True: os.write(1, b'x' * 65536)").status == "output_limit"
        with pytest.raises(SandboxError, match="dead"):
            s.run("1")
    with sb.session() as s:
        died = s.run("import os; os._exit(9)")
        assert (died.status, died.returncode) == ("error", 9)
        with pytest.raises(SandboxError):
            s.run("1")


def test_sessions_are_isolated_and_close(sb: Sandbox) -> None:
    a, b = sb.session(), sb.session()
    a.run("secret = 'a'")
    assert b.run("print(globals().get('secret'))").stdout == "None\n"
    assert b.run("import os; print(os.listdir('.'))").stdout == "[]\n"
    a.close()
    a.close()
    with pytest.raises(SandboxError, match="closed"):
        a.run("1")
    assert b.run("2 + 2").stdout == "4\n"
    b.close()


def test_session_timeout_default_comes_from_the_session(sb: Sandbox) -> None:
    with sb.session(timeout_s=0.3) as s:
        assert s.run("import time; time.sleep(5)").status == "timeout"
    with pytest.raises(SandboxError, match="timeout_s"):
        sb.session().run("1", timeout_s=-1)
