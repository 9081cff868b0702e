"""The `hone` command: thin typer commands over the packages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from hone.core import Budget, ConfigError, trajectory_schema_json
from hone.envs import list_envs
from hone.metrics import natural_key, summarize
from hone.store import (
    EXPORT_FORMATS,
    export_inspect,
    export_jsonl,
    export_openai,
    export_parquet,
    import_jsonl,
    run_id_filename,
)

from ._common import STATE, cli_store, console, err_console, friendly, run_id_option
from ._data import data_app
from ._doctor import doctor_cmd
from ._envbuild import env_app
from ._eval import StoreOpt, eval_cmd, stopped_line
from ._improve import improve_cmd
from ._loop import loop_cmd
from ._micro import micro_app
from ._render import runs_table, subset_table, summary_table, trajectories_table, transcript
from ._serve import serve_cmd
from ._view import report_cmd, view_cmd

app = typer.Typer(
    name="hone",
    help="hone: evaluate LLM agents on verifiable environments and make them better from feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from hone import __version__

        console.print(f"hone {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print hone's version and exit.", callback=_print_version, is_eager=True)
    ] = False,
) -> None:
    STATE["debug"] = debug


app.command("eval")(eval_cmd)
app.command("serve")(serve_cmd)
app.command("view")(view_cmd)
app.command("report")(report_cmd)
app.command("loop")(loop_cmd)
app.command("improve")(improve_cmd)
app.command("doctor")(doctor_cmd)
app.add_typer(micro_app, name="micro")
app.add_typer(data_app, name="data")
app.add_typer(env_app, name="env")


@app.command("envs")
@friendly
def envs_cmd() -> None:
    """List the environments (built-in and from installed plugins)."""
    from rich.table import Table

    t = Table(title="environments", header_style="bold")
    t.add_column("name")
    t.add_column("description")
    for name, desc in list_envs():
        t.add_row(name, desc)
    console.print(t)


@app.command("runs")
@friendly
def runs_cmd(
    parent: Annotated[
        str | None,
        typer.Option("--parent", help="Only the runs that belong to this one (a loop, a comparison), oldest first."),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """List the runs in the store, newest first."""
    st = cli_store(store, readonly=True)
    runs = st.list_runs() if parent is None else st.child_runs(parent)
    if parent is not None and not runs:
        raise ConfigError(f"no runs with parent {parent!r} in {st.url}; see `hone runs`")
    counts = {r.id: st.count(r.id) for r in runs}
    console.print(runs_table(runs, counts))


@app.command("show")
@friendly
def show_cmd(
    run: Annotated[str, typer.Argument(help="Run id.")],
    traj: Annotated[str | None, typer.Option("--traj", help="Show one trajectory's transcript.")] = None,
    limit: Annotated[int, typer.Option(help="Trajectories listed.")] = 50,
    store: StoreOpt = None,
) -> None:
    """Show a run (summary and trajectories) or one trajectory as a readable transcript."""
    st = cli_store(store, readonly=True)
    info = st.get_run(run)
    if info is None:
        raise ConfigError(f"no run {run!r} in {st.url}; see `hone runs`")
    if traj is not None:
        tr = st.get(traj)
        if tr is None or tr.run_id != run:
            raise ConfigError(f"no trajectory {traj!r} in run {run!r}; see `hone show {run}`")
        console.print(transcript(tr))
        return
    trajs = sorted(st.query(run_id=run), key=lambda t: (natural_key(t.task_id), t.sample))
    k = max((t.sample for t in trajs), default=0) + 1
    summary = summarize(trajs, k=k)
    console.print(summary_table(summary, title=f"run {run}: {info.env} · {info.model} · {info.status}"))
    sub = subset_table(summary)
    if sub is not None:
        console.print(sub)
    done = info.summary.get("remaining") is not None and info.status != "running"
    stopped = (
        stopped_line(
            int(info.summary["remaining"]),
            int(info.summary.get("cut_short") or 0),
            info.summary.get("stopped_by"),
            len(trajs) + int(info.summary["remaining"]),
            str(Budget.model_validate(info.config.get("budget") or {})),
        )
        if done
        else None
    )
    if stopped:
        console.print(f"[yellow]{escape(stopped)}[/]", highlight=False)
    console.print(trajectories_table(trajs[:limit]))
    if len(trajs) > limit:
        console.print(f"... {len(trajs) - limit} more (use --limit)")


@app.command("export")
@friendly
def export_cmd(
    run: Annotated[str, typer.Argument(help="Run id.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl, parquet, openai or inspect.")] = "jsonl",
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output file (default RUN.jsonl, .parquet, .openai.jsonl or .eval)."),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Export a run's trajectories: jsonl (lossless, re-importable), parquet (flat and nested columns),
    openai (chat JSONL for datasets/TRL) or inspect (an inspect_ai eval log for `inspect view`)."""
    writers = {"jsonl": export_jsonl, "parquet": export_parquet, "openai": export_openai, "inspect": export_inspect}
    if fmt not in writers:
        raise ConfigError(f"unknown format {fmt!r}: use {', '.join(EXPORT_FORMATS)}")
    st = cli_store(store, readonly=True)
    if st.get_run(run) is None:
        raise ConfigError(f"no run {run!r} in {st.url}; see `hone runs`")
    path = out or Path(run_id_filename(run) + EXPORT_FORMATS[fmt])  # a stored id may hold "/" or "..": never a path
    count = writers[fmt](st, run, path)
    err_console.print(f"wrote {count} trajectories to {path}")


@app.command("import")
@friendly
def import_cmd(
    path: Annotated[Path, typer.Argument(help="A JSONL file written by `hone export`.")],
    run_id: Annotated[str | None, typer.Option("--run-id", help="Import into this run id.")] = None,
    store: StoreOpt = None,
) -> None:
    """Import trajectories from JSONL; already-stored ones are skipped."""
    run_id = run_id_option(run_id)
    st = cli_store(store)
    count = import_jsonl(st, path, run_id=run_id)
    err_console.print(f"imported {count} trajectories into {st.url}")


@app.command("schema")
def schema_cmd() -> None:
    """Print the trajectory JSON Schema."""
    typer.echo(trajectory_schema_json(), nl=False)


def main() -> None:
    """Console-script entry point."""
    app()
