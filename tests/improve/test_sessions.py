"""`solve()` and `compare()` from sync code run a private event loop: no HTTP client may outlive it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hone.testing import OpenAIServer

SCRIPT = textwrap.dedent(
    """
    import gc, sys
    from hone.envs import make_env
    from hone.improve import compare, solve
    from hone.models import Cached, OpenAICompatible

    env = make_env("arith", levels="1")
    task = env.tasks("test", n=1)[0]
    model = OpenAICompatible("x", base_url=sys.argv[1], api_key="k", transport="aiohttp")
    assert model.transport == "aiohttp"
    assert solve("best_of_n", task, env, model, budget="calls=2").best.passed
    cached = Cached(model, sys.argv[2])
    solve("best_of_n", task, env, cached, budget="calls=2")
    solve("best_of_n", task, env, cached, budget="calls=2")  # still usable: the cache stays open
    compare(["refine"], env, model, "calls=2", n=2)
    del model, cached
    gc.collect()
    print("done")
    """
)


def test_sync_solve_and_compare_leave_no_unclosed_client_session(server: OpenAIServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("aiohttp")
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", SCRIPT, server.base_url, str(tmp_path / "cache.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
    # aiohttp reports a session or connector left open from __del__ or at exit: warnings as errors
    # cannot raise there, so its words on stderr are the evidence.
    for leak in ("Unclosed client session", "Unclosed connector", "unclosed transport", "Exception ignored"):
        assert leak not in proc.stderr, proc.stderr
