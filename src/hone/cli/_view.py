"""`hone view` (the store in the browser) and `hone report` (one self-contained HTML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hone.core import ConfigError

from ._common import cli_store, err_console, friendly
from ._eval import StoreOpt


def _web() -> None:
    """Refuse in one line, before any work, when the `hone[web]` extra is missing."""
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"this command needs {exc.name}: pip install 'hone[web]'") from exc


@friendly
def view_cmd(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on (keep 127.0.0.1 unless you mean to share it).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the browser.")] = True,
) -> None:
    """Browse a store in the browser: runs, transcripts, strategy trees, loop curves, comparisons.

    The store is opened read-only (SQLite `mode=ro`); a run in progress updates live. Ctrl-C stops it.
    """
    _web()
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port number (1-65535)")
    from hone.web import serve

    serve(store, host=host, port=port, open_browser=open_browser)


@friendly
def report_cmd(
    run: Annotated[str, typer.Argument(help="A run, loop or comparison id (see `hone runs`).")],
    out: Annotated[Path | None, typer.Option("--output", "-o", help="The HTML file (default RUN.html).")] = None,
    samples: Annotated[int, typer.Option(help="Transcripts to include (failures first).")] = 8,
    store: StoreOpt = None,
) -> None:
    """Write one self-contained HTML report of a run or loop: it opens offline, with no server."""
    _web()
    if samples < 0:
        raise ConfigError(f"--samples {samples}: must be 0 or more")
    from hone.store import run_id_filename
    from hone.web import write_report

    st = cli_store(store, readonly=True)
    path = write_report(st, run, out or Path(f"{run_id_filename(run)}.html"), samples=samples)
    err_console.print(f"wrote {path}", markup=False, highlight=False)
