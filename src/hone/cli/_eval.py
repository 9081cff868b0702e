"""`hone eval`: run a model on an environment with a live progress bar and a summary table."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hone.core import Budget, ConfigError, GradeError, HoneError, ModelError, Sampling, Trajectory
from hone.envs import make_env
from hone.metrics import summarize
from hone.models import Cached, ChatModel, Replay, aclose_model, resolve_model
from hone.models._toolformats import tool_format_notice
from hone.rollout import EpisodeLimits, RayExecutor, RunConfig, Runner, RunResult, parse_executor

from ._common import (
    at_least,
    check_run_options,
    cli_store,
    console,
    err_console,
    friendly,
    parse_kv,
    run_id_option,
    writable_file,
)
from ._render import subset_table, summary_table

StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Store path or SQLAlchemy URL (default: $HONE_STORE or .hone/hone.db).")
]


ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor", help="local (this process), ray (a local Ray cluster) or ray:HOST:PORT (a running one)."
    ),
]
WorkersOpt = Annotated[int, typer.Option(help="Ray workers (with --executor ray).")]
PerWorkerOpt = Annotated[int, typer.Option("--per-worker", help="Episodes (or tasks) each Ray worker runs at once.")]


def ray_executor(
    executor: str,
    workers: int,
    per_worker: int,
    env: str,
    model: str,
    env_args: dict[str, Any],
    cache: Path | None = None,
    record: Path | None = None,
) -> RayExecutor | None:
    """The `RayExecutor` `--executor` asks for (None: in-process), checked before anything loads."""
    kind, address = parse_executor(executor)
    if kind != "ray":
        return None
    if cache is not None or record is not None:
        raise ConfigError("--cache and --record keep files on this machine; they do not work with --executor ray")
    at_least("--workers", workers, 1)
    at_least("--per-worker", per_worker, 1)
    remote = RayExecutor(env, model, env_args, address=address, workers=workers, per_worker=per_worker)
    remote.check()
    return remote


def build_model(spec: str, cache: Path | None, record: Path | None) -> ChatModel:
    model = resolve_model(spec)
    notice = tool_format_notice(model)
    if notice:  # tools are never dropped silently: say how hone shows them
        err_console.print(notice, markup=False, highlight=False, soft_wrap=True)
    card = getattr(model, "gguf", None)
    if card is not None:  # a GGUF file's card: its quantisation and the dtype it was dequantised to
        err_console.print(f"model {spec}: {card.describe()}", markup=False, highlight=False, soft_wrap=True)
    if record is not None:
        model = Replay(record, model, mode="record")
    if cache is not None:
        model = Cached(model, cache)
    return model


@friendly
def eval_cmd(
    env: Annotated[str, typer.Argument(help="Environment name (see `hone envs`) or pkg.module:factory.")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model spec: openai:NAME, openai-compatible:URL:NAME, replay:PATH.")
    ],
    split: Annotated[str, typer.Option(help="Task split.")] = "test",
    n: Annotated[int | None, typer.Option("-n", help="Number of tasks (default: all).")] = None,
    k: Annotated[int, typer.Option("-k", help="Samples per task.")] = 1,
    concurrency: Annotated[int, typer.Option(help="Episodes in flight at once.")] = 32,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Name the run; an existing id resumes it.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature (default 0 for k=1, else 1).")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Completion tokens per call.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for task choice and per-sample sampling seeds.")] = 0,
    max_turns: Annotated[int, typer.Option("--max-turns", help="Model calls per episode.")] = 10,
    max_tool_calls: Annotated[int, typer.Option("--max-tool-calls", help="Tool calls per episode.")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds per episode.")] = 300.0,
    budget: Annotated[str | None, typer.Option(help="Run budget, e.g. calls=1000,tokens=2e6,cost=5.")] = None,
    tool_errors: Annotated[
        str,
        typer.Option(
            "--tool-errors", help="fail: end the episode; observe: show the error; auto: the environment's choice."
        ),
    ] = "auto",
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="On resume, rerun episodes that errored.")
    ] = False,
    env_arg: Annotated[list[str] | None, typer.Option("--env-arg", "-e", help="Environment option KEY=VALUE.")] = None,
    cache: Annotated[Path | None, typer.Option(help="On-disk response cache file.")] = None,
    record: Annotated[Path | None, typer.Option(help="Record every model call to this JSONL cassette.")] = None,
    store: StoreOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 2,
    per_worker: PerWorkerOpt = 16,
) -> None:
    """Evaluate a model on an environment: n tasks x k samples, every trajectory stored."""
    # Every setup mistake is refused here, before a model is called: a run that then loses
    # its results (no store, no cassette) or runs 0 tasks must not look like a model's failure.
    if tool_errors not in ("fail", "observe", "auto"):
        raise ConfigError(f"--tool-errors must be fail, observe or auto, got {tool_errors!r}")
    check_run_options(n=n, k=k, concurrency=concurrency, temperature=temperature, max_tokens=max_tokens)
    at_least("--max-turns", max_turns, 1)
    at_least("--max-tool-calls", max_tool_calls, 0)
    at_least("--timeout", timeout, 0, above=True)
    run_id = run_id_option(run_id)
    run_budget = Budget.parse(budget) if budget else Budget()
    writable_file(record, "--record")
    remote = ray_executor(executor, workers, per_worker, env, model, parse_kv(env_arg, "--env-arg"), cache, record)
    env_obj = make_env(env, **parse_kv(env_arg, "--env-arg"))
    st = cli_store(store)
    model_obj = build_model(model, cache, record)
    temp = temperature if temperature is not None else (0.0 if k == 1 else 1.0)
    config = RunConfig(
        run_id=run_id,
        split=split,
        n=n,
        k=k,
        seed=seed,
        concurrency=concurrency,
        sampling=Sampling(temperature=temp, max_tokens=max_tokens),
        limits=EpisodeLimits(
            max_turns=max_turns,
            max_tool_calls=max_tool_calls,
            timeout_s=timeout,
            tool_errors=tool_errors,
        ),
        budget=run_budget,
        retry_errors=retry_errors,
    )
    runner = Runner(env_obj, model_obj, config, store=st, env_spec=env, model_spec=model, executor=remote)
    tasks = runner.tasks()
    total = len(tasks) * k
    err_console.print(
        f"run [bold]{escape(runner.run_id)}[/]: {escape(env)} ({escape(split)}) x {escape(model)}, "
        f"{len(tasks)} tasks x {k} samples, store {escape(st.url)}",
        highlight=False,
    )
    stats = {"passed": 0, "done": 0, "errors": 0}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("acc {task.fields[acc]}  errors {task.fields[errors]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    already = len(st.done_keys(runner.run_id)) if not retry_errors else 0
    bar = progress.add_task("eval", total=total, completed=min(already, total), acc="-", errors=0)

    def on_traj(tr: Trajectory) -> None:
        stats["done"] += 1
        stats["passed"] += int(tr.passed)
        stats["errors"] += int(tr.status == "error")
        acc = f"{100 * stats['passed'] / stats['done']:.1f}%"
        progress.update(bar, advance=1, acc=acc, errors=stats["errors"])

    outcome: list[RunResult] = []

    async def go() -> None:
        try:
            with progress:
                outcome.append(await runner.run(tasks, on_trajectory=on_traj))
        finally:
            await aclose_model(model_obj)

    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        err_console.print(
            f"[yellow]interrupted; stored work is kept. Resume with --run-id {escape(runner.run_id)}[/]",
            highlight=False,
        )
        raise typer.Exit(130) from None
    result = outcome[0]
    trajectories = list(st.query(run_id=runner.run_id))
    summary = summarize(trajectories, k=k)
    run = st.get_run(runner.run_id)
    if run is not None:
        run.summary = {**run.summary, "accuracy": summary.accuracy, "n": summary.n_trajectories}
        st.save_run(run)
    stopped = stopped_line(result.remaining, result.cut_short, result.stopped_by, total, str(run_budget))
    if json_out:
        extra = {"not_run": result.remaining, "cut_short": result.cut_short, "stopped_by": result.stopped_by}
        console.print_json(json.dumps({"run_id": runner.run_id, **summary.model_dump(mode="json"), **extra}))
    else:
        console.print(summary_table(summary, title=f"{env} · {model} · run {runner.run_id}"))
        sub = subset_table(summary)
        if sub is not None:
            console.print(sub)
        if stopped:
            console.print(f"[yellow]{escape(stopped)}[/]", highlight=False)
    if not trajectories:
        raise HoneError(f"run {runner.run_id!r} has no finished episode ({stopped or 'nothing ran'})")
    now = result.trajectories
    errors = [t.error for t in now if t.error is not None]
    kinds = sorted({e.type for e in errors})
    if now and len(errors) == len(now) and set(kinds) <= {ModelError.kind, GradeError.kind}:
        # The backend never answered (a wrong URL, a server down, a bad key) or nothing could be graded (a
        # broken reference, a failing sandbox): a setup error, not a score of 0. The episodes are kept; a rerun
        # with --retry-errors redoes them.
        first = errors[0]
        fix = "the model spec and that its server is reachable" if first.type == ModelError.kind else "the grader"
        raise HoneError(
            f"all {len(now)} episodes failed with {' or '.join(kinds)} (first: {first.message}); "
            f"check {fix}, then rerun with --run-id {runner.run_id} --retry-errors"
        )


def stopped_line(remaining: int, cut_short: int, stopped_by: str | None, total: int, budget: str) -> str | None:
    """The line saying a run is unfinished and why, or None when it is done (`hone eval`, `hone show`)."""
    if not remaining:
        return None
    cut = f", {cut_short} of them cut short mid-episode and not kept" if cut_short else ""
    if stopped_by == "budget":
        return (
            f"stopped by budget ({budget}): {remaining} of {total} episodes not run{cut}; these are not errors: "
            "rerun the same command with a larger --budget, or none, to finish them"
        )
    return f"{remaining} of {total} episodes not run (stopped by {stopped_by or 'interruption'}); rerun to finish"
