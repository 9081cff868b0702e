"""`hone report`: one self-contained HTML file of a run or a loop, for sharing.

The file carries its stylesheet, Chart.js and the data inline, so it opens from disk or an
e-mail attachment with no network and no server: the same summary, curves and tables as
`hone view`, plus a sample of transcripts (failures first: they are what a reader looks for).
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hone.core import ConfigError, StoreError, Trajectory
from hone.store import SQLStore
from hone.store._tables import trajectories

from . import _queries
from ._app import HERE, _loop_view
from ._render import register_filters, transcript_view

SAMPLES = 8
"""Transcripts a report shows: up to half failed, the rest passed."""


def _sample(engine: sa.Engine, run_id: str, n: int) -> list[Trajectory]:
    t = trajectories.c
    ok = sa.and_(t.status != "error", t.passed.is_(True))
    picked: list[str] = []
    with engine.connect() as conn:
        for cond, want in ((sa.not_(ok), n // 2), (ok, n)):
            stmt = sa.select(t.id).where(t.run_id == run_id, cond).order_by(t.task_id, t.sample).limit(want)
            picked += list(conn.execute(stmt).scalars())
            want = n - len(picked)
    out = []
    for tid in picked[:n]:
        with contextlib.suppress(ValueError):  # a damaged row is left out of a sample, not fatal
            traj = _queries.get_trajectory(engine, tid)
            if traj is not None:
                out.append(traj)
    return out


def render_report(store: SQLStore, run_id: str, samples: int = SAMPLES) -> str:
    """The report of `run_id` (a run, a loop, or a comparison's id) as one HTML document."""
    engine = store.engine
    run = _queries.get_run(engine, run_id)
    children = _queries.child_runs(engine, run_id)
    if run is None:
        raise ConfigError(f"no run {run_id!r} in {store.where}; see `hone runs`")
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]))
    register_filters(env, offline=True)
    env.globals["store_where"] = store.where
    static = HERE / "static"
    inline = {
        "css": (static / "hone.css").read_text(encoding="utf-8"),
        "chart": (static / "vendor" / "chart.umd.min.js").read_text(encoding="utf-8").replace("</script", "<\\/script"),
        "js": (static / "hone.js").read_text(encoding="utf-8"),
    }
    lp = _loop_view(run, children) if run.info.kind == "loop" else None
    sampled = run_id
    if lp is not None:  # a loop holds no trajectories: sample its last held-out evaluation
        evals = [row["eval"] for row in lp["rows"] if row["eval"] is not None]
        sampled = evals[-1].info.id if evals else run_id
    context: dict[str, Any] = {
        "inline": inline,
        "run": run,
        "lp": lp,
        "children": children,
        "subsets": _queries.by_subset(engine, run_id) if lp is None else [],
        "errors": _queries.error_types(engine, run_id) if lp is None else [],
        "samples": [(t, transcript_view(t)) for t in _sample(engine, sampled, samples)],
        "sampled_from": sampled if sampled != run_id else None,
        "written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return env.get_template("report.html").render(context)


def write_report(store: SQLStore, run_id: str, path: str | Path, samples: int = SAMPLES) -> Path:
    """Write `render_report` to `path` atomically (a failure leaves no half-written file)."""
    target = Path(path)
    html = render_report(store, run_id, samples)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target
