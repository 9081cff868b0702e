"""What `hone view` shows, read from the store in SQL: aggregates, pages and searches run in the
database (on the `ix_trajectories_view` covering index), never by loading a run into Python.

Figures follow `hone.metrics.summarize`'s conventions: an errored trajectory fails, "passed" is
hidden grading's verdict, intervals are 95% Wilson, pass@k is the unbiased estimator averaged
over tasks (k the most samples any task has, left out when a task has fewer).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hone.core import Trajectory
from hone.metrics import mean_ci, natural_key, pass_at_k, wilson_interval
from hone.store import RunInfo
from hone.store._tables import runs, trajectories

PAGE = 50
"""Rows per page of the runs list and of a run's trajectory table."""

SEARCH_CAP = 1000
"""A text search counts its matches up to this many ("1000+"): counting them all reads every row."""

SORTS = ("task_id", "sample", "subset", "status", "reward", "n_steps", "calls", "tokens", "created_at")
"""Columns a run's trajectory table sorts by."""

_T = trajectories.c
_OK_PASSED = sa.case((sa.and_(_T.status != "error", _T.passed.is_(True)), 1), else_=0)


@dataclass
class Figures:
    """A set of trajectories' figures (a run, or one subset of it)."""

    n: int = 0
    passed: int = 0
    graded: int = -1  # trajectories with a hidden verdict; -1: not counted (then all are taken as graded)
    ok: int = 0
    truncated: int = 0
    error: int = 0
    calls: int = 0
    tokens: int = 0
    tasks: int = 0
    k: int = 0
    pass_at_k: float | None = None

    @property
    def accuracy(self) -> float | None:
        """Passed / all (an ungraded one fails, as in `summarize`); None when nothing was graded."""
        return self.passed / self.n if self.n and self.graded != 0 else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return wilson_interval(self.passed, self.n) if self.n and self.graded != 0 else None


@dataclass
class RunRow:
    """A run as the runs list and a run page show it."""

    info: RunInfo
    figures: Figures
    seconds: float | None = None
    children: int = 0

    @property
    def live(self) -> bool:
        return self.info.status == "running"


@dataclass
class RunsPage:
    rows: list[RunRow]
    total: int
    page: int
    pages: int
    envs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


@dataclass
class TrajRow:
    id: str
    task_id: str
    sample: int
    subset: str | None
    status: str
    passed: bool | None
    reward: float | None
    n_steps: int
    calls: int
    tokens: int
    created_at: datetime


@dataclass
class TrajPage:
    rows: list[TrajRow]
    total: int
    capped: bool
    page: int
    pages: int


def _aggregate(engine: Engine, run_ids: list[str]) -> dict[str, Figures]:
    """Per run: counts, passes, statuses, spend; and pass@k from per-task counts."""
    if not run_ids:
        return {}
    out = {rid: Figures() for rid in run_ids}
    totals = (
        sa.select(
            _T.run_id,
            sa.func.count(),
            sa.func.sum(_OK_PASSED),
            sa.func.sum(sa.case((_T.status == "ok", 1), else_=0)),
            sa.func.sum(sa.case((_T.status == "truncated", 1), else_=0)),
            sa.func.sum(sa.case((_T.status == "error", 1), else_=0)),
            sa.func.sum(_T.calls),
            sa.func.sum(_T.tokens),
            sa.func.count(_T.passed),
        )
        .where(_T.run_id.in_(run_ids))
        .group_by(_T.run_id)
    )
    per_task = (
        sa.select(_T.run_id, _T.task_id, sa.func.count().label("n"), sa.func.sum(_OK_PASSED).label("c"))
        .where(_T.run_id.in_(run_ids))
        .group_by(_T.run_id, _T.task_id)
        .subquery()
    )
    # (n, c) pairs repeat across tasks, so this returns a few rows a run, not one per task.
    shapes = sa.select(per_task.c.run_id, per_task.c.n, per_task.c.c, sa.func.count()).group_by(
        per_task.c.run_id, per_task.c.n, per_task.c.c
    )
    with engine.connect() as conn:
        for rid, n, passed, ok, trunc, err, calls, tokens, graded in conn.execute(totals):
            f = out[rid]
            f.graded = int(graded)
            f.n, f.passed, f.ok, f.truncated, f.error = (
                n,
                int(passed or 0),
                int(ok or 0),
                int(trunc or 0),
                int(err or 0),
            )
            f.calls, f.tokens = int(calls or 0), int(tokens or 0)
        by_run: dict[str, list[tuple[int, int, int]]] = {}
        for rid, n, c, count in conn.execute(shapes):
            by_run.setdefault(rid, []).append((int(n), int(c or 0), int(count)))
    for rid, shapes_ in by_run.items():
        f = out[rid]
        f.tasks = sum(count for _, _, count in shapes_)
        f.k = max(n for n, _, _ in shapes_)
        if f.graded and all(n >= f.k for n, _, _ in shapes_):
            total = math.fsum(pass_at_k(n, c, f.k) * count for n, c, count in shapes_)
            f.pass_at_k = total / f.tasks
    return out


def _seconds(info: RunInfo) -> float | None:
    ledger = info.summary.get("ledger")
    if isinstance(ledger, dict) and isinstance(ledger.get("seconds"), int | float):
        return float(ledger["seconds"])
    elapsed = info.summary.get("elapsed_s")
    return float(elapsed) if isinstance(elapsed, int | float) else None


def _run_info(row: Any) -> RunInfo:
    m = dict(row._mapping)
    m.update(config=json.loads(m["config"] or "{}"), summary=json.loads(m["summary"] or "{}"))
    return RunInfo.model_validate(m)


def _children(engine: Engine, run_ids: list[str]) -> dict[str, int]:
    if not run_ids:
        return {}
    stmt = sa.select(runs.c.parent_id, sa.func.count()).where(runs.c.parent_id.in_(run_ids)).group_by(runs.c.parent_id)
    with engine.connect() as conn:
        return {pid: int(n) for pid, n in conn.execute(stmt)}


def list_runs(
    engine: Engine,
    *,
    env: str | None = None,
    model: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: str | None = None,
    parent: str | None = None,
    page: int = 1,
) -> RunsPage:
    """One page of runs, newest first, with their figures; filters are exact (`q`: id contains)."""
    where: list[sa.ColumnElement[bool]] = []
    for col, value in ((runs.c.env, env), (runs.c.model, model), (runs.c.kind, kind), (runs.c.parent_id, parent)):
        if value:
            where.append(col == value)
    if since is not None:
        where.append(runs.c.created_at >= since)
    if until is not None:
        where.append(runs.c.created_at <= until)
    if q:
        where.append(runs.c.id.contains(q, autoescape=True))
    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(runs).where(*where)).scalar_one())
        pages = max(1, -(-total // PAGE))
        page = min(max(1, page), pages)
        stmt = (
            sa.select(runs)
            .where(*where)
            .order_by(runs.c.created_at.desc(), runs.c.id)
            .limit(PAGE)
            .offset((page - 1) * PAGE)
        )
        infos = [_run_info(r) for r in conn.execute(stmt)]
        envs = sorted(conn.execute(sa.select(runs.c.env).distinct()).scalars())
        models = sorted(conn.execute(sa.select(runs.c.model).distinct()).scalars())
        kinds = sorted(conn.execute(sa.select(runs.c.kind).distinct()).scalars())
    ids = [i.id for i in infos]
    figures = _aggregate(engine, ids)
    children = _children(engine, ids)
    rows = [RunRow(i, figures[i.id], _seconds(i), children.get(i.id, 0)) for i in infos]
    return RunsPage(rows, total, page, pages, envs, models, kinds)


def get_run(engine: Engine, run_id: str) -> RunRow | None:
    """A run with its figures, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        return None
    info = _run_info(row)
    return RunRow(
        info, _aggregate(engine, [run_id])[run_id], _seconds(info), _children(engine, [run_id]).get(run_id, 0)
    )


def child_runs(engine: Engine, parent_id: str) -> list[RunRow]:
    """Runs whose parent is `parent_id` (a loop's evaluations, a comparison's strategies), oldest first."""
    with engine.connect() as conn:
        stmt = sa.select(runs).where(runs.c.parent_id == parent_id).order_by(runs.c.created_at, runs.c.id)
        infos = [_run_info(r) for r in conn.execute(stmt)]
    figures = _aggregate(engine, [i.id for i in infos])
    return [RunRow(i, figures[i.id], _seconds(i)) for i in infos]


def by_subset(engine: Engine, run_id: str) -> list[tuple[str, Figures]]:
    """Per-subset figures of a run, in natural order ("(none)" last)."""
    stmt = (
        sa.select(
            _T.subset,
            sa.func.count(),
            sa.func.sum(_OK_PASSED),
            sa.func.count(sa.distinct(_T.task_id)),
        )
        .where(_T.run_id == run_id)
        .group_by(_T.subset)
    )
    with engine.connect() as conn:
        found = [
            (s or "(none)", Figures(n=int(n), passed=int(p or 0), tasks=int(t))) for s, n, p, t in conn.execute(stmt)
        ]
    if len(found) == 1 and found[0][0] == "(none)":
        return []
    return sorted(found, key=lambda sf: (sf[0] == "(none)", natural_key(sf[0])))


def _json_field(engine: Engine, path: tuple[str, ...]) -> sa.ColumnElement[Any]:
    """`data`'s field at `path` as text, in this database's JSON functions."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        field: sa.ColumnElement[Any] = sa.cast(_T.data, JSONB)[list(path)].astext
        return field
    return sa.func.json_extract(_T.data, "$." + ".".join(path))


def error_types(engine: Engine, run_id: str) -> list[tuple[str, int]]:
    """How many of a run's trajectories ended in each error type, most first (reads errored rows only).

    A row whose JSON is damaged counts as "unreadable" rather than failing the page.
    """
    kind = _json_field(engine, ("error", "type"))
    if engine.dialect.name == "sqlite":
        kind = sa.case((sa.func.json_valid(_T.data) == 1, kind), else_=sa.literal("unreadable"))
    stmt = (
        sa.select(kind, sa.func.count())
        .where(_T.run_id == run_id, _T.status == "error")
        .group_by(kind)
        .order_by(sa.func.count().desc())
    )
    with engine.connect() as conn:
        return [(str(t or "unknown"), int(n)) for t, n in conn.execute(stmt)]


def trajectories_page(
    engine: Engine,
    run_id: str,
    *,
    q: str | None = None,
    status: str | None = None,
    subset: str | None = None,
    sort: str = "task_id",
    desc: bool = False,
    page: int = 1,
) -> TrajPage:
    """One page of a run's trajectories, sorted and filtered in the database.

    `q` matches the task id or the trajectory id, or (when neither is long enough to say) any
    text of the trajectory (its messages, answer, feedback); a text search counts up to
    `SEARCH_CAP` matches.
    """
    if sort not in SORTS:
        sort = "task_id"
    where: list[sa.ColumnElement[bool]] = [_T.run_id == run_id]
    if status:
        where.append(_T.status == status)
    if subset:
        where.append(_T.subset.is_(None) if subset == "(none)" else _T.subset == subset)
    capped = False
    if q:
        where.append(
            sa.or_(
                _T.task_id.contains(q, autoescape=True),
                _T.id == q,
                _T.data.contains(q, autoescape=True),
            )
        )
    col = _T[sort]
    # Missing values (an ungraded reward) last either way, on every database.
    order: list[sa.ColumnElement[Any]] = [(col.desc() if desc else col.asc()).nulls_last()]
    if sort != "task_id":
        order.append(_T.task_id)
    order += [_T.sample, _T.id]
    cols = [_T[c] for c in ("id", "task_id", "sample", "subset", "status", "passed", "reward", "n_steps")]
    cols += [_T.calls, _T.tokens, _T.created_at]
    stmt = sa.select(*cols).where(*where).order_by(*order)
    with engine.connect() as conn:
        if q:
            # One pass: a text search reads the rows (their JSON), so the matches are fetched once,
            # up to the cap, and paged here rather than counted and then fetched again.
            found = [TrajRow(*r) for r in conn.execute(stmt.limit(SEARCH_CAP + 1))]
            capped = len(found) > SEARCH_CAP
            total = min(len(found), SEARCH_CAP)
            pages = max(1, -(-total // PAGE))
            page = min(max(1, page), pages)
            rows = found[(page - 1) * PAGE : min(page * PAGE, total)]
        else:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(trajectories).where(*where)).scalar_one())
            pages = max(1, -(-total // PAGE))
            page = min(max(1, page), pages)
            rows = [TrajRow(*r) for r in conn.execute(stmt.limit(PAGE).offset((page - 1) * PAGE))]
    return TrajPage(rows, total, capped, page, pages)


def get_trajectory(engine: Engine, trajectory_id: str) -> Trajectory | None:
    """One trajectory, whole; None when there is none. A row that does not parse raises `ValueError`."""
    with engine.connect() as conn:
        data = conn.execute(sa.select(_T.data).where(_T.id == trajectory_id)).scalar()
    if data is None:
        return None
    return Trajectory.model_validate_json(data)


def run_trajectories(engine: Engine, run_id: str, task_id: str | None = None) -> list[Trajectory]:
    """Every trajectory of a run (of one task, if given), in the order they were made.

    For strategy graphs, whose candidate runs are small (a task's tree); never for a whole big run.
    """
    where = [_T.run_id == run_id]
    if task_id is not None:
        where.append(_T.task_id == task_id)
    stmt = sa.select(_T.data).where(*where).order_by(_T.created_at, _T.id)
    with engine.connect() as conn:
        return [Trajectory.model_validate_json(d) for d in conn.execute(stmt).scalars()]


def task_ids(engine: Engine, run_id: str) -> list[str]:
    """The distinct task ids of a run, in natural order."""
    stmt = sa.select(_T.task_id).where(_T.run_id == run_id).distinct()
    with engine.connect() as conn:
        return sorted(conn.execute(stmt).scalars(), key=natural_key)


@dataclass
class Paired:
    """Two runs on the same tasks: per-task pass rates, their mean difference and its interval."""

    n_tasks: int
    only_a: int
    only_b: int
    mean_a: float | None
    mean_b: float | None
    diff: float | None
    ci: tuple[float, float] | None
    flipped: list[tuple[str, float, float]]  # (task, rate in a, rate in b) where one passed and the other not


def compare(engine: Engine, a: str, b: str) -> Paired:
    """Paired comparison of runs `a` and `b` over the tasks both have (per-task pass rate, t interval)."""
    stmt = (
        sa.select(_T.run_id, _T.task_id, sa.func.count(), sa.func.sum(_OK_PASSED))
        .where(_T.run_id.in_([a, b]))
        .group_by(_T.run_id, _T.task_id)
    )
    rates: dict[str, dict[str, float]] = {a: {}, b: {}}
    with engine.connect() as conn:
        for rid, task, n, c in conn.execute(stmt):
            rates[rid][task] = int(c or 0) / int(n)
    shared = sorted(set(rates[a]) & set(rates[b]), key=natural_key)
    diffs = [rates[b][t] - rates[a][t] for t in shared]
    mean_a = math.fsum(rates[a][t] for t in shared) / len(shared) if shared else None
    mean_b = math.fsum(rates[b][t] for t in shared) / len(shared) if shared else None
    diff = ci = None
    if len(diffs) >= 2:
        diff, lo, hi = mean_ci(diffs)
        ci = (lo, hi)
    elif diffs:
        diff = diffs[0]
    flipped = [(t, rates[a][t], rates[b][t]) for t in shared if (rates[a][t] > 0) != (rates[b][t] > 0)]
    return Paired(
        n_tasks=len(shared),
        only_a=len(set(rates[a]) - set(rates[b])),
        only_b=len(set(rates[b]) - set(rates[a])),
        mean_a=mean_a,
        mean_b=mean_b,
        diff=diff,
        ci=ci,
        flipped=flipped,
    )


def stamp(engine: Engine) -> dict[str, Any]:
    """A fingerprint of the runs list: runs, their newest update, and what running runs stored."""
    with engine.connect() as conn:
        n, newest = conn.execute(sa.select(sa.func.count(), sa.func.max(runs.c.updated_at))).one()
        running = sa.select(runs.c.id).where(runs.c.status == "running")
        stored = conn.execute(sa.select(sa.func.count()).where(_T.run_id.in_(running))).scalar_one()
    return {"runs": int(n), "updated_at": newest.isoformat() if newest else None, "running_stored": int(stored)}


def progress(engine: Engine, run_id: str) -> dict[str, Any] | None:
    """What a live page polls: status, counts and the newest trajectory, cheap to read."""
    got = get_run(engine, run_id)
    if got is None:
        return None
    f = got.figures
    return {
        "status": got.info.status,
        "updated_at": got.info.updated_at.isoformat(),
        "n": f.n,
        "passed": f.passed,
        "error": f.error,
        "accuracy": f.accuracy,
        "children": got.children,
    }
