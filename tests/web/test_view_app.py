"""`hone view` over real HTTP (uvicorn on 127.0.0.1), `hone report`, and their bad input."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sqlite3
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from _web_store import Served, serve, traj
from typer.testing import CliRunner

from hone.cli import app as cli
from hone.store import open_store
from hone.web import render_report


def _get(served: Served, path: str, status: int = 200) -> str:
    r = httpx.get(served.url + path, timeout=30)
    assert r.status_code == status, (path, r.status_code, r.text[:500])
    return r.text


def _elements(html: str) -> list[dict[str, Any]]:
    """The cytoscape elements a graph page embeds."""
    return list(json.loads(unescape(re.search(r'data-elements="([^"]*)"', html)[1])))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_runs_list_shows_figures_and_parents(served: Served) -> None:
    text = _text(_get(served, "/"))
    assert "Runs 12" in text
    # ev: 10 of 24 passed, Wilson interval, pass@2 over 12 tasks, 2 errors.
    assert re.search(r"ev eval arith scripted done 24 41\.7% \[24\.5, 61\.2\] 66\.7% k=2", text), text[:2000]
    assert "cmp-mcts-candidates improve-candidates" in text and "cmp-mcts" in text
    filtered = _text(_get(served, "/?env=gsm8k"))
    assert "Runs 1" in filtered and "other-env" in filtered and " ev " not in filtered


def test_run_page_subsets_errors_and_table(served: Served) -> None:
    html = _get(served, "/run?id=ev")
    text = _text(html)
    assert "L1 8 4 37.5% [13.7, 69.4]" in text and "L2 8 4 50.0% [21.5, 78.5]" in text
    assert "ModelError 1" in text and "ToolError 1" in text
    assert text.count("arith-test-L") >= 24
    searched = _text(_get(served, "/run?id=ev&q=zanzibar"))
    assert "Trajectories 1 " in searched and "arith-test-L1-0003" in searched
    by_reward = _get(served, "/run?id=ev&sort=reward&dir=asc")
    assert by_reward.index("arith-test-L1-0001") < by_reward.index("arith-test-L1-0000")


def test_transcript_marks_public_and_hidden_feedback_and_trained_tokens(served: Served) -> None:
    with open_store(served.server.config.app.state.store.url, readonly=True) as st:
        tid = next(t.id for t in st.query(run_id="ev", task_id="arith-test-L1-0003") if t.sample == 1)
    html = _get(served, f"/t?id={tid}")
    text = _text(html)
    assert "calculator" in text and '"expression": "2+2"' in html.replace("&#34;", '"')
    assert "Hidden feedback grading, never shown to the agent" in text and "expected 4, got 5" in text
    assert "Public feedback what the agent could see" in text and "concise enough" in text
    row = re.search(r'<div class="tokrow">(.*?)</div>', html, re.S)[1]
    assert row.count('class="tk ctx"') == 4 and row.count('class="tk trained"') == 3
    assert 'title="logprob -2.500"' in html


def test_graphs_mark_the_chosen_candidate(served: Served) -> None:
    elements = _elements(_get(served, "/graph?run=cmp-mcts&task=task-2"))
    nodes = {e["data"]["id"]: e for e in elements if "source" not in e["data"]}
    edges = {(e["data"]["source"], e["data"]["target"]) for e in elements if "source" in e["data"]}
    assert len(nodes) == 5 and ("root-2", "exp-2-0") in edges and ("exp-2-2", "roll-2") in edges
    assert "chosen" in nodes["roll-2"]["classes"] and "chosen" not in nodes["root-2"]["classes"]
    assert nodes["roll-2"]["position"]["x"] > nodes["exp-2-2"]["position"]["x"] > nodes["root-2"]["position"]["x"]
    evo = _get(served, "/graph?run=evo")
    assert "island 0" in evo and "island 1" in evo and "recombination" in evo
    # The stored answer names its candidate in meta.selected_from (it has no parent here).
    evo_nodes = {e["data"]["id"]: e for e in _elements(evo) if "source" not in e["data"]}
    assert "chosen" in evo_nodes["g1-1"]["classes"] and evo_nodes["g1-1"]["data"]["lane"] == "island 1"
    nsed = _get(served, "/graph?run=nsed-candidates")
    assert "votes +1.00" in nsed and "agent2" in nsed and "band per agent" in nsed
    _get(served, "/graph?run=ev", status=404)
    assert "no candidates of task" in _get(served, "/graph?run=cmp-mcts&task=task-99", status=404)


def test_loop_page_curves_and_links(served: Served) -> None:
    html = _get(served, "/run?id=lp")
    text = _text(html)
    assert "held-out at start 25.0%" in text and "held-out now 50.0%" in text and "+25.0 points" in text
    curves = json.loads(re.search(r'data-curves="([^"]*)"', html)[1].replace("&#34;", '"'))
    assert curves["heldout"] == [0.25, 0.5] and curves["levels"]["L2"] == [0.125, 0.25]
    assert list(curves["monitors"]) == ["entropy"]  # counts stay in the table
    assert "/run?id=lp-eval-1" in html and "simple_python" in text


def test_comparison_group_and_compare_page(served: Served) -> None:
    group = _text(_get(served, "/run?id=cmp"))
    assert "comparison cmp" in group and "cmp-best_of_n vs cmp-mcts" in group
    text = _text(_get(served, "/compare?a=cmp-best_of_n&b=cmp-mcts"))
    assert "Paired on 6 shared tasks" in text and "B \u2212 A = +16.7 points" in text
    assert "Tasks that flipped 3" in text and "no clear difference" in text


def test_long_token_lists_are_cut_and_counted(fresh_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from hone.web import _render

    monkeypatch.setattr(_render, "TOKENS_SHOWN", 2)
    with open_store(fresh_store, readonly=True) as st:
        tid = next(iter(st.query(run_id="ev"))).id
    for served in serve(fresh_store):
        html = _get(served, f"/t?id={tid}")
        row = re.search(r'<div class="tokrow">(.*?)</div>', html, re.S)[1]
        # the last 2 of 4 context ids, the first 2 of 3 trained ones, and what was cut
        assert re.findall(r'class="tk ctx">(\d+)<', row) == ["7", "8"]
        assert re.findall(r'class="tk trained"[^>]*>(\d+)<', row) == ["40", "41"]
        assert "… 2 earlier" in row and "… 1 more" in row
        assert "step 0: 4 context + 3 trained" in _text(html)


def test_a_missing_parameter_is_a_page_not_json(served: Served) -> None:
    html = _get(served, "/run", status=400)
    assert "/run needs the parameter id" in html and "<html" in html


def test_a_loop_record_missing_fields_still_shows(fresh_store: str) -> None:
    with open_store(fresh_store) as st:
        from _web_store import run

        run(st, "sparse", kind="loop", summary={"iterations": [{"iteration": 0}, "junk", {"heldout_accuracy": 0.5}]})
        run(st, "odd", kind="loop", summary={"iterations": {"not": "a list"}})
    for served in serve(fresh_store):
        assert "held-out now 50.0%" in _text(_get(served, "/run?id=sparse"))
        assert "No iteration has finished yet" in _text(_get(served, "/run?id=odd"))


def test_the_viewer_on_postgresql(pg_web_store: str) -> None:
    for served in serve(pg_web_store):
        assert re.search(r"ev eval arith scripted done 24 41\.7% \[24\.5, 61\.2\] 66\.7% k=2", _text(_get(served, "/")))
        text = _text(_get(served, "/run?id=ev&q=zanzibar"))
        assert "ModelError 1" in text and "Trajectories 1 " in text
        assert "held-out now 50.0%" in _text(_get(served, "/run?id=lp"))
        assert "B \u2212 A = +16.7 points" in _text(_get(served, "/compare?a=cmp-best_of_n&b=cmp-mcts"))
        nodes = {e["data"]["id"]: e for e in _elements(_get(served, "/graph?run=cmp-mcts&task=task-2"))}
        assert "chosen" in nodes["roll-2"]["classes"]
        engine = served.server.config.app.state.store.engine
        with pytest.raises(Exception, match="read-only transaction"), engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM runs")


def test_unknown_ids_are_404_with_a_message(served: Served) -> None:
    assert "no run &#39;nope&#39;" in _get(served, "/run?id=nope", status=404)
    assert "no trajectory" in _get(served, "/t?id=nope", status=404)
    assert "no run" in _get(served, "/compare?a=ev&b=nope", status=404)
    _get(served, "/api/progress?id=nope", status=404)


def test_hostile_text_is_escaped(fresh_store: str) -> None:
    bad = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    with open_store(fresh_store) as st:
        from _web_store import run

        run(st, bad, kind="eval")
        st.put(traj(bad, bad, passed=True, words=bad, id="t-bad", strategy="mcts", meta={"x": bad}))
    for served in serve(fresh_store):
        pages = [_get(served, "/"), _get(served, "/run?" + httpx.QueryParams(id=bad).__str__())]
        pages.append(_get(served, "/t?id=t-bad"))
        for html in pages:
            assert "<script>alert" not in html and "<img src=x" not in html
    with open_store(fresh_store, readonly=True) as st:
        report = render_report(st, bad)
    assert "<script>alert" not in report and "<img src=x" not in report


def _fingerprint(path: str) -> str:
    # Any reader of a WAL database makes SQLite's shared-memory index (-shm) and an empty -wal;
    # what must never change is the database and the log's contents.
    wal = Path(path + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_the_viewer_never_writes(fresh_store: str) -> None:
    before = _fingerprint(fresh_store)
    for served in serve(fresh_store):
        for path in ["/", "/run?id=ev", "/run?id=lp", "/graph?run=cmp-mcts", "/compare?a=ev&b=cmp-mcts", "/api/stamp"]:
            _get(served, path)
        assert httpx.post(served.url + "/run?id=ev").status_code == 405
        engine = served.server.config.app.state.store.engine
        with pytest.raises(Exception, match=r"readonly|read-only|query_only"), engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM runs")
    assert _fingerprint(fresh_store) == before


def test_a_damaged_row_is_named_and_the_rest_still_shows(fresh_store: str) -> None:
    with sqlite3.connect(fresh_store) as db:
        tid = db.execute("SELECT id FROM trajectories WHERE run_id='ev' LIMIT 1").fetchone()[0]
        db.execute("UPDATE trajectories SET data = '{\"broken' WHERE id = ?", (tid,))
    for served in serve(fresh_store):
        msg = _get(served, f"/t?id={tid}", status=422)
        assert "cannot be read" in msg and tid in msg
        assert "Trajectories 24" in _text(_get(served, "/run?id=ev"))
    with open_store(fresh_store, readonly=True) as st:
        assert "arith-test" in render_report(st, "ev", samples=24)


def test_report_is_one_self_contained_file(web_store: str, tmp_path: Path) -> None:
    out = tmp_path / "r" / "lp.html"
    result = CliRunner().invoke(cli, ["report", "lp", "-o", str(out), "--store", web_store])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html) and "/static/" not in html
    assert "Chart" in html and 'data-kind="heldout"' in html
    assert "held-out now 50.0%" in _text(html)
    # A loop's sample comes from its last held-out evaluation, failures first.
    assert "from lp-eval-1" in _text(html) and html.count('class="sample"') == 4
    ev = render_report(open_store(web_store, readonly=True), "ev", samples=4)
    assert ev.count('class="sample"') == 4 and "ModelError" in ev


def test_cli_refuses_bad_input_in_one_line(web_store: str, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["view", "--store", str(tmp_path / "none.db"), "--no-open"])
    assert missing.exit_code == 2 and "no store at" in missing.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        busy = runner.invoke(cli, ["view", "--store", web_store, "--port", str(port), "--no-open"])
    assert busy.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.output
    assert runner.invoke(cli, ["view", "--store", web_store, "--port", "70000"]).exit_code == 2
    nope = runner.invoke(cli, ["report", "nope", "--store", web_store, "-o", str(tmp_path / "x.html")])
    assert nope.exit_code == 2 and "no run 'nope'" in nope.output and not (tmp_path / "x.html").exists()
