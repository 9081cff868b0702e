"""The viewer's figures come from SQL; they must equal `summarize` over the same trajectories, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from hone.metrics import mean_ci, summarize
from hone.store import open_store
from hone.web import _queries


@pytest.fixture
def engine(any_store: str) -> Iterator[sa.Engine]:
    with open_store(any_store, readonly=True) as st:
        yield st.engine


def test_run_figures_equal_summarize(any_store: str, engine: sa.Engine) -> None:
    with open_store(any_store, readonly=True) as st:
        trajs = list(st.query(run_id="ev"))
    s = summarize(trajs, k=2)
    got = _queries.get_run(engine, "ev")
    assert got is not None
    f = got.figures
    assert (f.n, f.passed, f.tasks, f.k) == (s.n_trajectories, s.n_passed, s.n_tasks, 2)
    assert f.accuracy == pytest.approx(s.accuracy)
    assert f.ci == pytest.approx(s.accuracy_ci)
    assert f.pass_at_k == pytest.approx(s.pass_at_k[2])
    assert (f.ok, f.truncated, f.error) == (
        s.status_counts["ok"],
        s.status_counts["truncated"],
        s.status_counts["error"],
    )
    assert (f.calls, f.tokens) == (s.ledger.calls, s.ledger.tokens)
    assert got.seconds == 12.5
    # The errored trajectory with a passing verdict counts as failed, as in every hone report.
    assert f.passed == 11 - 1


def test_subsets_equal_summarize(any_store: str, engine: sa.Engine) -> None:
    with open_store(any_store, readonly=True) as st:
        s = summarize(st.query(run_id="ev"))
    got = _queries.by_subset(engine, "ev")
    assert [name for name, _ in got] == list(s.by_subset)
    for name, f in got:
        want = s.by_subset[name]
        assert (f.n, f.passed, f.tasks) == (want.n, want.n_passed, want.n_tasks)
        assert f.ci == pytest.approx(want.ci)


def test_ungraded_runs_have_no_accuracy(engine: sa.Engine) -> None:
    got = _queries.get_run(engine, "cmp-mcts-candidates")
    assert got is not None and got.figures.n == 30
    assert got.figures.accuracy is None and got.figures.pass_at_k is None


def test_error_types(engine: sa.Engine) -> None:
    assert sorted(_queries.error_types(engine, "ev")) == [("ModelError", 1), ("ToolError", 1)]


def test_paging_sorting_covers_every_trajectory_once(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_queries, "PAGE", 5)
    seen: list[str] = []
    rewards: list[float] = []
    page = 1
    while True:
        got = _queries.trajectories_page(engine, "ev", sort="reward", desc=True, page=page)
        seen += [r.id for r in got.rows]
        rewards += [r.reward if r.reward is not None else -1 for r in got.rows]
        if page >= got.pages:
            break
        page += 1
    assert got.total == 24 and got.pages == 5
    assert len(seen) == len(set(seen)) == 24
    assert rewards == sorted(rewards, reverse=True)
    # A page past the end shows the last one rather than nothing.
    assert _queries.trajectories_page(engine, "ev", page=99).page == 5


def test_search_by_task_and_by_text(engine: sa.Engine) -> None:
    by_task = _queries.trajectories_page(engine, "ev", q="L3-0010")
    assert {r.task_id for r in by_task.rows} == {"arith-test-L3-0010"} and by_task.total == 2
    by_text = _queries.trajectories_page(engine, "ev", q="zanzibar")
    assert by_text.total == 1 and by_text.rows[0].task_id == "arith-test-L1-0003"
    failed_l2 = _queries.trajectories_page(engine, "ev", subset="L2", status="ok")
    assert {r.subset for r in failed_l2.rows} == {"L2"} and failed_l2.total == 8


def test_search_wildcards_are_literal(engine: sa.Engine) -> None:
    # LIKE's % and _ in a user's search must match themselves, not everything.
    assert _queries.trajectories_page(engine, "ev", q="%").total == 0
    assert _queries.trajectories_page(engine, "ev", q="L_-").total == 0


def test_text_search_counts_up_to_the_cap(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_queries, "SEARCH_CAP", 5)
    got = _queries.trajectories_page(engine, "ev", q="answer")
    assert got.capped and got.total == 5


def test_compare_is_paired_on_shared_tasks(engine: sa.Engine) -> None:
    got = _queries.compare(engine, "cmp-best_of_n", "cmp-mcts")
    diffs = [0.0, -1.0, 1.0, 1.0, 0.0, 0.0]
    mean, lo, hi = mean_ci(diffs)
    assert got.n_tasks == 6 and got.diff == pytest.approx(mean) and got.ci == pytest.approx((lo, hi))
    assert (got.mean_a, got.mean_b) == (pytest.approx(0.5), pytest.approx(4 / 6))
    assert [(t, a, b) for t, a, b in got.flipped] == [("task-1", 1.0, 0.0), ("task-2", 0.0, 1.0), ("task-3", 0.0, 1.0)]
    swapped = _queries.compare(engine, "cmp-mcts", "cmp-best_of_n")
    assert swapped.diff == pytest.approx(-mean)
    apart = _queries.compare(engine, "ev", "cmp-mcts")
    assert apart.n_tasks == 0 and apart.only_a == 12 and apart.only_b == 6


def test_runs_list_filters_and_pages(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    every = _queries.list_runs(engine)
    assert every.total == len(every.rows) == 12
    assert every.rows[0].info.id == "other-env"  # newest first
    assert [r.info.id for r in _queries.list_runs(engine, env="gsm8k").rows] == ["other-env"]
    assert {r.info.id for r in _queries.list_runs(engine, kind="loop-eval").rows} == {"lp-eval-0", "lp-eval-1"}
    assert _queries.list_runs(engine, model="other").total == 1
    assert _queries.list_runs(engine, since=datetime(2026, 3, 2)).total == 1
    assert _queries.list_runs(engine, until=datetime(2026, 3, 1, 12, 30)).total == 8
    assert {r.info.id for r in _queries.list_runs(engine, q="mcts").rows} == {"cmp-mcts", "cmp-mcts-candidates"}
    lp = next(r for r in every.rows if r.info.id == "lp")
    assert lp.children == 2
    monkeypatch.setattr(_queries, "PAGE", 4)
    pages = [_queries.list_runs(engine, page=p) for p in range(1, 4)]
    ids = [r.info.id for p in pages for r in p.rows]
    assert pages[0].pages == 3 and len(ids) == len(set(ids)) == 12


def test_aggregates_read_the_covering_index(web_store: str) -> None:
    # The run page's figures must come from the index, never from the rows (kilobytes of JSON each).
    with sqlite3.connect(web_store) as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT run_id, count(*), sum(calls), sum(tokens), count(passed) "
            "FROM trajectories WHERE run_id IN ('ev') GROUP BY run_id"
        ).fetchall()
    assert any("COVERING INDEX ix_trajectories_view" in row[-1] for row in plan), plan


def test_a_v2_store_gains_the_index_when_opened(tmp_path: Path) -> None:
    from _web_store import build_store

    path = build_store(tmp_path / "v2.db")
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX ix_trajectories_view")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with open_store(path, readonly=True) as st:  # read-only: works on v2, changes nothing
        assert _queries.get_run(st.engine, "ev") is not None
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)
    open_store(path).close()
    with sqlite3.connect(path) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "ix_trajectories_view" in names
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("3",)
