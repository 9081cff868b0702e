"""`hone eval humaneval` end to end: a real local OpenAI-compatible server writes code, the sandbox grades it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from hone.cli import app
from hone.store import open_store
from hone.testing import OpenAIServer, code_policy, humaneval_solutions

DATA = str(Path(__file__).parents[1] / "data/humaneval/HumanEval.jsonl.gz")


def test_eval_humaneval_through_the_local_server(tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    with OpenAIServer(code_policy(humaneval_solutions(DATA), slip_rate=0.3)) as server:
        spec = f"openai-compatible:{server.base_url}:coder"
        args = ["eval", "humaneval", "--model", spec, "-e", f"path={DATA}", "-n", "40", "-k", "2"]
        result = CliRunner().invoke(app, [*args, "--temperature", "1", "--store", db, "--run-id", "he"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "accuracy" in result.stdout and "pass@2" in result.stdout
    trajs = list(open_store(db).query(run_id="he"))
    assert len(trajs) == 80 and all(t.status == "ok" for t in trajs)
    passed = [t for t in trajs if t.passed]
    # the reference solutions pass; about 30% slip to `return None` and fail
    assert 0.5 < len(passed) / len(trajs) < 0.9
    failed = next(t for t in trajs if not t.passed)
    assert "return None" in (failed.answer or "")
    public = [f for t in trajs for s in t.steps for f in s.feedback if f.visibility == "public"]
    assert public and all(f.name == "docstring_examples" for f in public)
