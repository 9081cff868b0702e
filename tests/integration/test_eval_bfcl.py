"""`hone eval bfcl` end to end: a real local OpenAI-compatible server answers with native tool calls."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hone.cli import app
from hone.store import open_store
from hone.testing import OpenAIServer, bfcl_policy

DATA = Path(__file__).parents[3] / "shared/data/bfcl"
pytestmark = pytest.mark.skipif(not (DATA / "BFCL_v4_parallel.json").is_file(), reason=f"no BFCL data at {DATA}")


def eval_bfcl(slip_rate: float, n: int, db: str, run_id: str) -> str:
    with OpenAIServer(bfcl_policy(slip_rate=slip_rate, seed=7, data_dir=str(DATA))) as server:
        spec = f"openai-compatible:{server.base_url}:fc"
        args = ["eval", "bfcl", "--model", spec, "-e", f"data_dir={DATA}", "-n", str(n)]
        result = CliRunner().invoke(app, [*args, "--store", db, "--run-id", run_id])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "accuracy" in result.stdout and "by subset" in result.stdout
    return result.stdout


def test_eval_bfcl_without_slips_scores_every_task(tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    eval_bfcl(0.0, 80, db, "clean")
    trajs = list(open_store(db).query(run_id="clean"))
    assert len(trajs) == 80 and all(t.status == "ok" for t in trajs)
    assert Counter(t.subset for t in trajs) == {
        "simple_python": 20,
        "multiple": 20,
        "parallel": 20,
        "parallel_multiple": 20,
    }
    assert all(t.passed for t in trajs), [t.feedback[0].text for t in trajs if not t.passed][:3]
    # native tool calls under the mapped names, several in one message for parallel tasks
    parallel = next(t for t in trajs if t.subset == "parallel")
    assert len(parallel.steps) == 1 and len(parallel.steps[0].call.message.tool_calls or []) >= 2
    # the answer records BFCL's dotted names, the model saw (and called) valid tool names
    dotted = next(t for t in trajs if any("." in name for call in json.loads(t.answer or "[]") for name in call))
    assert all("." not in c.name for c in dotted.steps[0].call.message.tool_calls or [])


def test_eval_bfcl_accuracy_follows_the_slip_rate(tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    eval_bfcl(0.3, 200, db, "slips")
    trajs = list(open_store(db).query(run_id="slips"))
    assert len(trajs) == 200
    accuracy = sum(t.passed for t in trajs) / len(trajs)
    assert 0.55 < accuracy < 0.85, accuracy  # 1 - 0.3 = 0.7 expected; the draw is seeded
    kinds = Counter(f.evidence["kind"] for t in trajs for f in t.feedback if f.name == "bfcl_ast" and not t.passed)
    assert set(kinds) <= {"wrong_value", "missing_argument", "wrong_function", "wrong_type"}
    assert len(kinds) >= 2, kinds


def test_the_mock_server_command_serves_the_bfcl_policy(tmp_path: Path) -> None:
    """`python -m hone.testing.openai_server --policy bfcl`, then `hone eval bfcl` against it."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "hone.testing.openai_server", "--policy", "bfcl", "--slip-rate", "0"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("READY "), line
        spec = f"openai-compatible:{line.split()[1]}:fc"
        args = ["eval", "bfcl", "--model", spec, "-n", "40", "--store", str(tmp_path / "h.db"), "--json"]
        result = CliRunner().invoke(app, args)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["accuracy"] == 1.0
