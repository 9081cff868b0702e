"""`hone eval DIR` on a built environment: a real local OpenAI-compatible server answers from the references."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hone.cli import app
from hone.envs.build._env import BuiltEnv
from hone.store import open_store
from hone.testing import OpenAIServer, toolenv_policy

GARDEN = Path(__file__).parent / "specs" / "garden.py"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("garden") / "env"
    result = CliRunner().invoke(app, ["env", "build", str(GARDEN), "-o", str(out), "--tasks-per-level", "8"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return out


def eval_built(built: Path, slip_rate: float, split: str, db: str, run_id: str) -> dict[str, object]:
    policy = toolenv_policy(BuiltEnv.load(built), slip_rate=slip_rate, seed=3)
    with OpenAIServer(policy) as server:
        spec = f"openai-compatible:{server.base_url}:tools"
        args = ["eval", str(built), "--model", spec, "--split", split, "--store", db, "--run-id", run_id, "--json"]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stdout + result.stderr
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def test_eval_without_slips_solves_every_task_at_every_level(built: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    summary = eval_built(built, 0.0, "heldout", db, "clean")
    assert summary["accuracy"] == 1.0
    by_subset = summary["by_subset"]
    assert isinstance(by_subset, dict) and {"single", "choice", "parallel", "ask", "no_tool"} <= set(by_subset)
    trajs = list(open_store(db).query(run_id="clean"))
    assert trajs and all(t.status == "ok" and t.passed for t in trajs)
    assert all(next(f for f in t.feedback if f.name == "tool_calls").score == 1.0 for t in trajs)
    ask = next(t for t in trajs if t.subset == "ask")
    assert ask.steps[0].observations[0].role == "user"  # the simulated user answered the question
    assert all(t.tool_call_count == 0 for t in trajs if t.subset == "no_tool")


def test_eval_accuracy_follows_the_slip_rate(built: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    env = BuiltEnv.load(built)
    policy = toolenv_policy(env, slip_rate=0.3, seed=3)
    summary = eval_built(built, 0.3, "train", db, "slips")
    trajs = list(open_store(db).query(run_id="slips"))
    slipped = {t.task_id for t in trajs if policy.slipped(t.task_id)}  # type: ignore[attr-defined]
    assert 0.15 < len(slipped) / len(trajs) < 0.45  # the seeded draw: 0.3 expected
    # Only slips fail, and (nearly) every slip does: a wrong value may rarely give the same result.
    failed = {t.task_id for t in trajs if not t.passed}
    assert failed <= slipped and len(failed) >= 0.8 * len(slipped), (len(failed), len(slipped))
    assert summary["accuracy"] == pytest.approx(1 - len(failed) / len(trajs))
    assert 0.55 < float(summary["accuracy"]) < 0.85, summary["accuracy"]  # type: ignore[arg-type]
    details = Counter(
        f.text.split("; ")[-1].split(" (")[0].split(":")[0]
        for t in trajs
        if not t.passed
        for f in t.feedback
        if f.name == "completeness" and f.text
    )
    assert len(details) >= 2, details  # failures of different kinds, each with the grader's reason


@pytest.mark.parametrize(("slip_rate", "split"), [(0.0, "test"), (0.3, "heldout")])
def test_eval_toolgen_through_the_cli(tmp_path: Path, slip_rate: float, split: str) -> None:
    """`hone eval toolgen --model openai-compatible:...`: every level, the held-out scenarios too."""
    from hone.envs import make_env

    pytest.importorskip("hone.envs.build._toolgen")
    env = make_env("toolgen")
    policy = toolenv_policy(env, slip_rate=slip_rate, seed=1)
    db = str(tmp_path / "hone.db")
    with OpenAIServer(policy) as server:
        spec = f"openai-compatible:{server.base_url}:tools"
        args = ["eval", "toolgen", "--model", spec, "--split", split, "-n", "120", "--store", db, "--run-id", "tg"]
        result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    trajs = list(open_store(db).query(run_id="tg"))
    assert len(trajs) == 120
    assert set(summary["by_subset"]) == {"single", "choice", "parallel", "chain", "ask", "no_tool"}
    assert all(t.meta.get("heldout", split == "heldout") == (split == "heldout") for t in trajs)
    slipped = {t.task_id for t in trajs if policy.slipped(t.task_id)}  # type: ignore[attr-defined]
    failed = {t.task_id for t in trajs if not t.passed}
    assert failed <= slipped and len(failed) >= 0.8 * len(slipped)
    # A wrong tool breaks its schema: a tool error, which ends the episode under --tool-errors fail.
    assert {t.task_id for t in trajs if t.status == "error"} <= slipped
    if slip_rate == 0:
        assert summary["accuracy"] == 1.0
    else:
        assert 0.55 < summary["accuracy"] < 0.85, summary["accuracy"]


def test_the_mock_server_command_serves_the_toolenv_policy(built: Path, tmp_path: Path) -> None:
    """`python -m hone.testing.openai_server --policy toolenv --env DIR`, then `hone eval DIR` against it."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "hone.testing.openai_server", "--policy", "toolenv", "--env", str(built)]
    server = subprocess.Popen([*cmd, "--slip-rate", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("READY "), line
        spec = f"openai-compatible:{line.split()[1]}:tools"
        args = ["eval", str(built), "--model", spec, "--split", "test", "--store", str(tmp_path / "h.db"), "--json"]
        result = CliRunner().invoke(app, args)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["accuracy"] == 1.0
