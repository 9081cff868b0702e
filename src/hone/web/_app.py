"""The `hone view` web app: FastAPI routes over a store opened read-only, Jinja2 pages.

Every page is server-rendered from `_queries` (aggregates and paging in the database); the
browser's scripts only draw (cytoscape.js graphs, Chart.js curves, both vendored so the viewer
works offline) and poll `/api/progress` to refresh a live run's page without a reload.
Run and trajectory ids travel as query parameters: imported ids may hold any character.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from hone.core import ConfigError
from hone.store import SQLStore, open_store

from . import _graphs, _queries
from ._render import register_filters, transcript_view

HERE = Path(__file__).parent


class NotFound(Exception):
    """A page asked for something the store does not hold: a 404 with this message."""


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise NotFound(f"{text!r} is not a date (use YYYY-MM-DD)") from exc


def _page(text: str | None) -> int:
    try:
        return max(1, int(text or 1))
    except ValueError:
        return 1


def create_app(store: str | SQLStore | None = None) -> FastAPI:
    """The viewer over `store` (a path, an SQLAlchemy URL, or an open `SQLStore`), read-only.

    A path or URL is opened with `readonly=True` (SQLite `mode=ro`: the viewer can never
    write, even by mistake); a store that does not exist raises `ConfigError` here, before
    a server starts.
    """
    st = store if isinstance(store, SQLStore) else open_store(store, readonly=True)
    engine = st.engine
    app = FastAPI(title="hone view", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = st
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hone-view")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    register_filters(templates.env)
    templates.env.globals["store_where"] = st.where
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> HTMLResponse:
        return page(request, "error.html", status_code=404, title="Not found", message=str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        missing = [".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()]
        message = f"{request.url.path} needs the parameter {', '.join(missing)} (e.g. /run?id=RUN_ID)"
        return page(request, "error.html", status_code=400, title="Bad request", message=message)

    @app.exception_handler(SQLAlchemyError)
    async def store_error(request: Request, exc: SQLAlchemyError) -> HTMLResponse:
        why = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return page(request, "error.html", status_code=500, title="Store error", message=f"{st.where}: {why}")

    @app.get("/", response_class=HTMLResponse)
    def runs_page(
        request: Request,
        env: str | None = None,
        model: str | None = None,
        kind: str | None = None,
        since: str | None = None,
        until: str | None = None,
        q: str | None = None,
    ) -> HTMLResponse:
        got = _queries.list_runs(
            engine,
            env=env or None,
            model=model or None,
            kind=kind or None,
            since=_date(since),
            until=_date(until),
            q=q or None,
            page=_page(request.query_params.get("page")),
        )
        filters = {"env": env, "model": model, "kind": kind, "since": since, "until": until, "q": q}
        return page(request, "runs.html", runs=got, filters={k: v for k, v in filters.items() if v})

    @app.get("/run", response_class=HTMLResponse)
    def run_page(
        request: Request,
        id: str,
        q: str | None = None,
        status: str | None = None,
        subset: str | None = None,
        sort: str = "task_id",
        dir: str = "asc",
    ) -> HTMLResponse:
        # The table (a text search reads the run's rows) runs beside the figures (read from the
        # index): on a big run the page then costs the slower of the two, not their sum.
        table_job = pool.submit(
            _queries.trajectories_page,
            engine,
            id,
            q=q or None,
            status=status or None,
            subset=subset or None,
            sort=sort,
            desc=dir == "desc",
            page=_page(request.query_params.get("page")),
        )
        run = _queries.get_run(engine, id)
        children = _queries.child_runs(engine, id)
        if run is None:
            if not children:
                raise NotFound(f"no run {id!r} in {st.where}")
            # A comparison has no record of its own: its strategies' runs name it as parent.
            tops = [c for c in children if not c.info.kind.endswith("candidates")]
            return page(request, "group.html", group=id, children=children, tops=tops)
        if run.info.kind == "loop":
            return page(request, "loop.html", run=run, children=children, lp=_loop_view(run, children))
        subsets, errors = _queries.by_subset(engine, id), _queries.error_types(engine, id)
        table = table_job.result()
        candidates = next((c for c in children if c.info.kind.endswith("candidates")), None)
        graphable = run.info.kind.endswith("candidates") or candidates is not None
        return page(
            request,
            "run.html",
            run=run,
            children=children,
            subsets=subsets,
            errors=errors,
            table=table,
            args={"q": q, "status": status, "subset": subset, "sort": sort, "dir": dir},
            sorts=_queries.SORTS,
            graphable=graphable,
        )

    @app.get("/t", response_class=HTMLResponse)
    def transcript_page(request: Request, id: str) -> HTMLResponse:
        try:
            traj = _queries.get_trajectory(engine, id)
        except (ValidationError, ValueError) as exc:
            first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
            where = ".".join(str(p) for p in first.get("loc", ())) or "record"
            message = (
                f"trajectory {id!r} is stored but cannot be read ({where}: {first.get('msg')}); the row is "
                "damaged. `hone export` of its run shows the raw JSON."
            )
            return page(request, "error.html", status_code=422, title="Damaged trajectory", message=message)
        if traj is None:
            raise NotFound(f"no trajectory {id!r} in {st.where}")
        run = _queries.get_run(engine, traj.run_id)
        return page(request, "transcript.html", traj=traj, run=run, view=transcript_view(traj))

    @app.get("/graph", response_class=HTMLResponse)
    def graph_page(request: Request, run: str, task: str | None = None) -> HTMLResponse:
        info = _queries.get_run(engine, run)
        if info is None:
            raise NotFound(f"no run {run!r} in {st.where}")
        if info.info.kind.endswith("candidates"):
            cand_run, best_run = info, (_queries.get_run(engine, info.info.parent_id) if info.info.parent_id else None)
        else:
            found = [c for c in _queries.child_runs(engine, run) if c.info.kind.endswith("candidates")]
            if not found:
                raise NotFound(f"run {run!r} kept no candidates to draw (only strategies' runs do)")
            cand_run, best_run = found[0], info
        tasks = _queries.task_ids(engine, cand_run.info.id)
        if not tasks:
            raise NotFound(f"run {cand_run.info.id!r} holds no candidates")
        if task is not None and task not in tasks:  # never draw another task's search under this name
            raise NotFound(f"run {cand_run.info.id!r} holds no candidates of task {task!r}")
        task = task or tasks[0]
        candidates = _queries.run_trajectories(engine, cand_run.info.id, task)
        best = _queries.run_trajectories(engine, best_run.info.id, task) if best_run is not None else []
        graph = _graphs.build(candidates, _graphs.chosen_id(best[0] if best else None))
        return page(
            request,
            "graph.html",
            run=best_run or cand_run,
            candidates_run=cand_run,
            tasks=tasks,
            task=task,
            graph=graph,
            elements=json.dumps(graph.elements()),
            best=best[0] if best else None,
        )

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(request: Request, a: str, b: str) -> HTMLResponse:
        ra, rb = _queries.get_run(engine, a), _queries.get_run(engine, b)
        for rid, got in ((a, ra), (b, rb)):
            if got is None:
                raise NotFound(f"no run {rid!r} in {st.where}")
        return page(request, "compare.html", a=ra, b=rb, paired=_queries.compare(engine, a, b))

    @app.get("/api/progress")
    def progress(id: str) -> JSONResponse:
        got = _queries.progress(engine, id)
        if got is None:
            return JSONResponse({"error": f"no run {id!r}"}, status_code=404)
        return JSONResponse(got)

    @app.get("/api/stamp")
    def stamp() -> JSONResponse:
        """Changes whenever a run is added, finishes or stores a trajectory: the runs list polls it."""
        return JSONResponse(_queries.stamp(engine))

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    return app


def _loop_view(run: _queries.RunRow, children: list[_queries.RunRow]) -> dict[str, Any]:
    """A loop's iterations from its run record, with the runs each one made linked."""
    found = run.info.summary.get("iterations")
    # A record from an older hone or another tool may lack fields: show what is there.
    iterations = [it for it in found if isinstance(it, dict)] if isinstance(found, list) else []
    by_id = {c.info.id: c for c in children}
    levels: list[str] = []
    for it in iterations:
        for level in it.get("accuracy_by_level") or {}:
            if level not in levels:
                levels.append(level)
    # Curves of rates (entropy, zero-variance share, KL...): counts such as `tasks` stay in the
    # table, or their scale would flatten every other line.
    values: dict[str, list[float]] = {}
    for it in iterations:
        for name, value in (it.get("monitors") or {}).items():
            if isinstance(value, int | float) and math.isfinite(value):
                values.setdefault(name, []).append(float(value))
    counts = {"tasks", "samples_per_task"}
    monitors = [n for n, vs in values.items() if n not in counts and max(abs(v) for v in vs) <= 10]
    rows = []
    for it in iterations:
        rows.append(
            {
                "it": it,
                "eval": by_id.get(it.get("eval_run") or ""),
                "collect": by_id.get(it.get("collect_run") or ""),
            }
        )
    curves = {
        "labels": [it.get("iteration") for it in iterations],
        "heldout": [it.get("heldout_accuracy") for it in iterations],
        "levels": {lv: [(it.get("accuracy_by_level") or {}).get(lv) for it in iterations] for lv in levels},
        "monitors": {m: [(it.get("monitors") or {}).get(m) for it in iterations] for m in monitors},
    }
    checks = run.info.summary.get("bfcl")
    bfcl = [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []
    categories: list[str] = []
    for check in bfcl:
        categories += [c for c in check.get("by_category") or {} if c not in categories]
    heldout = [float(v) for it in iterations if isinstance(v := it.get("heldout_accuracy"), int | float)]
    gain = heldout[-1] - heldout[0] if len(heldout) >= 2 else None
    return {
        "rows": rows,
        "levels": levels,
        "monitors": monitors,
        "curves": json.dumps(curves),
        "start": heldout[0] if heldout else None,
        "end": heldout[-1] if heldout else None,
        "gain": gain,
        "elapsed": run.info.summary.get("elapsed_s"),
        "method": run.info.config.get("method"),
        "bfcl": bfcl,
        "bfcl_categories": categories,
    }


def serve(store: str | None, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True) -> None:
    """Run the viewer until Ctrl-C. A port in use is a `ConfigError` naming it, before anything starts."""
    import socket
    import webbrowser

    import uvicorn

    app = create_app(store)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another with --port") from exc
    finally:
        probe.close()
    url = f"http://{host}:{port}/"
    print(f"hone view: {url} (store {app.state.store.where}; Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")
