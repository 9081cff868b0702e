"""`hone improve` end to end against the local OpenAI-compatible test server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hone.cli import app
from hone.store import open_store
from hone.testing import OpenAIServer

runner = CliRunner()


@pytest.mark.usefixtures("wide_console")
def test_improve_prints_the_strategy_beside_best_of_n_and_stores_both(server: OpenAIServer, tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    spec = f"openai-compatible:{server.base_url}:x"
    args = ["improve", "arith", "--model", spec, "--strategy", "mcts", "--budget", "calls=6", "-n", "6"]
    result = runner.invoke(app, [*args, "--store", db, "--run-id", "cmp", "--set", "width=2"])
    assert result.exit_code == 0, result.stderr + result.stdout
    out = result.stdout
    assert "mcts" in out and "best_of_n" in out and "95% CI" in out and "calls" in out and "tokens" in out
    assert "baseline" in out and "pts" in out and "stored mcts as run cmp-mcts" in out
    st = open_store(db)
    runs = {r.id: r for r in st.list_runs()}
    assert {"cmp-best_of_n", "cmp-mcts", "cmp-best_of_n-candidates", "cmp-mcts-candidates"} <= set(runs)
    assert runs["cmp-mcts"].kind == "improve" and runs["cmp-mcts"].config["budget"] == "calls=6"
    assert runs["cmp-mcts"].config["strategy"]["width"] == 2
    assert [r.id for r in st.child_runs("cmp")] == ["cmp-best_of_n", "cmp-mcts"]  # the comparison's runs
    assert [(r.id, r.kind) for r in st.child_runs("cmp-mcts")] == [("cmp-mcts-candidates", "improve-candidates")]
    for name in ("best_of_n", "mcts"):
        bests = list(st.query(run_id=f"cmp-{name}"))
        cands = {t.id: t for t in st.query(run_id=f"cmp-{name}-candidates")}
        assert len(bests) == 6 and all(t.strategy == name for t in bests)
        assert all(t.usage.calls <= 6 for t in bests)
        assert all(t.parent_ids and t.parent_ids[0] in cands for t in bests if t.status != "error")
        assert all(set(c.parent_ids) <= set(cands) for c in cands.values())
        assert all(any(f.visibility == "hidden" for f in t.feedback) for t in bests if t.status != "error")
        assert not any(f.visibility == "hidden" for c in cands.values() for f in c.feedback)
    # the mock model solves literal expressions: both are right on some tasks
    assert runs["cmp-mcts"].summary["accuracy"] > 0 and runs["cmp-best_of_n"].summary["accuracy"] > 0


def test_improve_json_oracle_and_errors(server: OpenAIServer, tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    spec = f"openai-compatible:{server.base_url}:x"
    base = ["improve", "arith", "-m", spec, "-n", "3", "--store", db]
    result = runner.invoke(app, [*base, "--strategy", "refine", "--budget", "calls=4", "--oracle", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["oracle"] is True and [r["strategy"] for r in data["strategies"]] == [
        "best_of_n[oracle]",
        "refine[oracle]",
    ]
    assert all(r["run_id"].endswith("-oracle") for r in data["strategies"])
    assert {r.kind for r in open_store(db).list_runs()} == {"improve-oracle", "improve-oracle-candidates"}
    bad = runner.invoke(app, [*base, "--strategy", "nope"])
    assert bad.exit_code == 2 and "unknown strategy 'nope'" in bad.stderr
    bad = runner.invoke(app, [*base, "--set", "widht=3"])
    assert bad.exit_code == 2 and "no option 'widht'" in bad.stderr
    bad = runner.invoke(app, [*base, "--budget", ""])
    assert bad.exit_code == 2 and "needs a budget" in bad.stderr


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        (["--set", "operators=revison"], "option operators='revison': input should be 'revision', 'recombination'"),
        (["--set", "pool=many"], "option pool='many': input should be a valid integer"),
        (["--set", "pol=3"], "strategy 'evolve' has no option 'pol'; accepted options:"),
        (["--set", "pool=0"], "option pool='0': input should be greater than or equal to 1"),
        (["--set", "diversity=1.5"], "option diversity='1.5': input should be less than or equal to 1"),
        (["-e", "tools=calculater"], "option tools='calculater': input should be 'calculator'"),
        (["-e", "n_per_level=x"], "option n_per_level='x': input should be a valid integer"),
        (["-e", "level=3"], "environment 'arith' has no option 'level'; accepted options: levels,"),
    ],
)
def test_a_bad_option_is_one_line_naming_it_and_what_it_accepts(
    server: OpenAIServer, tmp_path: Path, option: list[str], needle: str
) -> None:
    spec = f"openai-compatible:{server.base_url}:x"
    bad = runner.invoke(app, ["improve", "arith", "-m", spec, "-n", "2", "-s", "evolve", *option])
    lines = bad.stderr.strip().splitlines()
    assert bad.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), bad.stderr
    assert needle in lines[0], lines[0]


def test_the_table_keeps_the_oracle_label_and_shows_wall_seconds() -> None:
    from rich.console import Console

    from hone.cli._improve import comparison_table
    from hone.core import Budget, Ledger, Trajectory
    from hone.improve import Comparison, SolveResult, StrategyReport
    from hone.metrics import summarize

    def report(name: str, wall: float) -> StrategyReport:
        ledger = Ledger(calls=4, seconds=50.0)  # attempts summed over overlapping solves
        best = Trajectory(task_id="t", env="arith", model="m", strategy=name, usage=ledger)
        result = SolveResult(best=best, candidates=[best], ledger=ledger, strategy=name, oracle=True)
        return StrategyReport(name, True, [result], summarize([best]), wall_seconds=wall)

    cmp = Comparison(Budget(calls=4), ["t"], [report("best_of_n", 2.25), report("mcts", 3.5)])
    out = Console(width=200, record=True)
    out.print(comparison_table(cmp, "arith · m · ORACLE [upper bound]"))
    text = out.export_text()
    assert "best_of_n[oracle]" in text and "mcts[oracle]" in text and "[upper bound]" in text
    assert "wall s" in text and "2.2" in text and "3.5" in text and "50.0" not in text


@pytest.mark.usefixtures("wide_console")
def test_improve_prints_the_sampling_both_sides_use(server: OpenAIServer, tmp_path: Path) -> None:
    spec = f"openai-compatible:{server.base_url}:x"
    base = ["improve", "arith", "-m", spec, "-n", "2", "--store", str(tmp_path / "hone.db"), "--budget", "calls=3"]
    result = runner.invoke(app, [*base, "--strategy", "mcts", "--oracle"])
    assert result.exit_code == 0, result.stderr
    assert "best_of_n[oracle]" in result.stdout and "mcts[oracle]" in result.stdout
    assert "sampling: best_of_n temperature 1, mcts temperature 1 (the default for x;" in result.stdout
    assert "wall s: elapsed seconds of each strategy's whole pass" in result.stdout
    given = runner.invoke(app, [*base, "-s", "single", "--temperature", "0.3", "--max-tokens", "64", "--json"])
    rows = json.loads(given.stdout)["strategies"]
    assert [(r["temperature"], r["max_tokens"]) for r in rows] == [(0.3, 64), (0.3, 64)]
    greedy = runner.invoke(app, [*base, "-s", "single", "--max-tokens", "64", "--json"])
    rows = json.loads(greedy.stdout)["strategies"]
    assert [(r["strategy"], r["temperature"], r["max_tokens"]) for r in rows] == [
        ("best_of_n", 1.0, 64),
        ("single", 0.0, 64),
    ]
    bad = runner.invoke(app, [*base, "-s", "best_of_n", "--set", "select=judge", "--budget", "calls=2"])
    assert bad.exit_code == 2 and "select='judge' needs --budget calls=3 or more" in bad.stderr
