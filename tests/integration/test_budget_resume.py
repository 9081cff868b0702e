"""A run stopped by its budget is unfinished, not failed: the same command with more budget finishes it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from hone.cli import app
from hone.store import open_store
from hone.testing import OpenAIServer

runner = CliRunner()


def hone(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_budget_stop_then_rerun_finishes_without_retry_errors(server: OpenAIServer, tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    base = ["eval", "arith", "-m", f"openai-compatible:{server.base_url}:x", "-n", "12", "--store", db]
    base += ["--run-id", "b", "--concurrency", "4"]
    code, out, err = hone(*base, "--budget", "calls=10")
    assert code == 0, err
    assert "stopped by budget (calls=10)" in out and "not errors" in out and "BudgetExceeded" not in out
    with open_store(db) as st:
        first = list(st.query(run_id="b"))
        run = st.get_run("b")
    assert 0 < len(first) < 12 and all(t.status != "error" for t in first)
    assert run is not None and run.status == "interrupted" and run.summary["stopped_by"] == "budget"
    assert server.request_count == run.summary["ledger"]["calls"] <= 10  # cut-short episodes counted too

    code, out, _ = hone("show", "b", "--store", db)
    assert code == 0 and "stopped by budget" in out

    # the same budget again: nothing left to spend, nothing run, still not an error
    code, out, err = hone(*base, "--budget", "calls=10", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["stopped_by"] == "budget" and report["not_run"] == 12 - len(first)
    assert server.request_count <= 10

    code, out, err = hone(*base)  # no budget, no --retry-errors
    assert code == 0, err
    assert "stopped by budget" not in out
    with open_store(db) as st:
        final = list(st.query(run_id="b"))
        run = st.get_run("b")
    assert Counter(t.task_id for t in final) == Counter({t: 1 for t in {t.task_id for t in final}})
    assert len(final) == 12 and all(t.status == "ok" for t in final)
    assert {t.id for t in first} <= {t.id for t in final}  # finished work is kept, not redone
    assert run is not None and run.status == "done" and run.summary["stopped_by"] is None
    assert run.summary["ledger"]["calls"] == server.request_count
    code, out, _ = hone("show", "b", "--store", db)
    assert code == 0 and "stopped by budget" not in out
