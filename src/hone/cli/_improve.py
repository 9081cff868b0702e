"""`hone improve`: a test-time strategy beside the compute-matched best-of-n, on the same tasks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hone.core import Budget, ConfigError, DataError, Sampling
from hone.envs import make_env
from hone.improve import Comparison, SolveResult, Strategy, StrategyBase, acompare, make_strategy, strategies
from hone.improve._compare import base_sampling, fair_baseline
from hone.improve._defaults import MICRO_TEMPERATURE, default_sampling, follows_instructions, judge_reserve
from hone.improve._registry import BASELINE
from hone.models import ChatModel, aclose_model
from hone.store import open_store

from ._common import check_run_options, console, err_console, friendly, parse_kv, run_id_option
from ._eval import ExecutorOpt, PerWorkerOpt, StoreOpt, WorkersOpt, build_model, ray_executor


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def comparison_table(cmp: Comparison, title: str) -> Table:
    """Accuracy with its 95% interval, calls, tokens and wall seconds per strategy."""
    # Short headers and no column rules, so the table fits an 80-column terminal or log.
    t = Table(title=escape(title), header_style="bold underline", box=None, pad_edge=False)
    for col in ("strategy", "n", "acc", "95% CI", "vs best-of-n", "calls", "tokens", "wall s"):
        t.add_column(col, justify="left" if col == "strategy" else "right", no_wrap=True)
    for row in cmp.rows():
        ci = row["ci"]
        delta = row.get("delta")
        versus = "baseline" if delta is None else f"{100 * delta:+.1f} pts {row['vs_baseline']}"
        t.add_row(
            escape(row["strategy"]),  # "mcts[oracle]" is not markup
            str(row["tasks"]),
            _pct(row["accuracy"]),
            "" if ci is None else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]",
            versus,
            f"{row['calls']:,}",
            f"{row['tokens']:,}",
            f"{row['wall_seconds']:.1f}",  # the strategy's whole pass; its attempts' sum is stored
        )
    return t


def _sample_as(strategy: Strategy, default: Sampling, max_tokens: int | None) -> None:
    """Give a strategy that leaves its sampling to the model the model's default; apply --max-tokens."""
    if not isinstance(strategy, StrategyBase):
        return
    base = strategy.sampling or default
    strategy.sampling = base if max_tokens is None else base.model_copy(update={"max_tokens": max_tokens})


def sampling_line(runs: Sequence[Strategy], model: ChatModel, *, explicit: bool) -> str:
    """How each compared strategy samples, and where that came from (printed beside the table)."""
    parts = []
    for s in runs:
        used = base_sampling(s, model)
        if used is None:
            parts.append(f"{s.name} its own")
            continue
        tokens = "" if used.max_tokens is None else f", max_tokens {used.max_tokens}"
        parts.append(f"{s.name} temperature {used.temperature:g}{tokens}")
    origin = "--temperature" if explicit else f"the default for {model.name}; --temperature to change"
    return f"sampling: {', '.join(parts)} ({origin})"


@friendly
def improve_cmd(
    env: Annotated[str, typer.Argument(help="Environment name (see `hone envs`) or pkg.module:factory.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (see `hone eval --help`).")],
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help=f"Strategy: {', '.join(strategies.names())} or pkg.module:factory.")
    ] = "mcts",
    budget: Annotated[str, typer.Option(help="Per-task budget for every strategy, e.g. calls=16,tokens=20000.")] = (
        "calls=16"
    ),
    n: Annotated[int | None, typer.Option("-n", help="Number of tasks (default: all).")] = None,
    split: Annotated[str, typer.Option(help="Task split.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed for task choice and sampling seeds.")] = 0,
    concurrency: Annotated[int, typer.Option(help="Tasks solved at once.")] = 16,
    temperature: Annotated[
        float | None,
        typer.Option(
            help=f"Base sampling temperature of the strategy and of best-of-n (default: the model's, "
            f"{MICRO_TEMPERATURE:g} for hone's micro models, 1.0 otherwise; single: greedy)."
        ),
    ] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Completion tokens per call.")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--set", help="Strategy option KEY=VALUE, e.g. --set width=3.")
    ] = None,
    oracle: Annotated[
        bool, typer.Option("--oracle", help="Let strategies choose by hidden grading (an upper bound; labelled).")
    ] = False,
    env_arg: Annotated[list[str] | None, typer.Option("--env-arg", "-e", help="Environment option KEY=VALUE.")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Prefix of the stored run ids.")] = None,
    cache: Annotated[Path | None, typer.Option(help="On-disk response cache file.")] = None,
    store: StoreOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 2,
    per_worker: PerWorkerOpt = 4,
) -> None:
    """Run a strategy and best-of-n with the same per-task budget and sampling on the same tasks; print and store both.

    The table's `wall s` is each strategy's elapsed time over all tasks; the line under it
    gives the sampling both sides used (the model's default unless --temperature is given).
    `--executor ray` solves the tasks on Ray workers (each task whole on one worker).
    """
    check_run_options(n=n, concurrency=concurrency, temperature=temperature, max_tokens=max_tokens)
    run_id = run_id_option(run_id)
    limits = Budget.parse(budget)
    if limits.is_unlimited():
        raise ConfigError("hone improve needs a budget (e.g. --budget calls=16): the comparison is at equal compute")
    remote = ray_executor(executor, workers, per_worker, env, model, parse_kv(env_arg, "--env-arg"), cache)
    model_obj = build_model(model, cache, None)
    common: dict[str, Any] = {"seed": seed}
    if temperature is not None:  # given: every strategy samples at it, single included
        common["sampling"] = Sampling(temperature=temperature, max_tokens=max_tokens)
    chosen = make_strategy(strategy, **parse_kv(option, "--set"), **common)
    _sample_as(chosen, default_sampling(model_obj), max_tokens)
    baseline = fair_baseline([chosen])  # samples as the strategy does: the same temperature and limits
    baseline.sampling = common.get("sampling", baseline.sampling)  # --temperature holds for both
    _sample_as(baseline, default_sampling(model_obj), max_tokens)
    runs = [chosen] if chosen.name == BASELINE else [baseline, chosen]
    if isinstance(chosen, StrategyBase) and (
        chosen.instruct if chosen.instruct is not None else follows_instructions(model_obj)
    ):
        judge_reserve(chosen, limits)  # a budget too small for a judge selector fails here, before any work
    env_obj = make_env(env, **parse_kv(env_arg, "--env-arg"))
    st = open_store(store)
    tasks = env_obj.tasks(split, n=n, seed=seed)
    if not tasks:
        raise DataError(f"{env}: split {split!r} has no tasks (is its dataset empty?)")
    label = " (oracle: hidden grading chose among candidates)" if oracle else ""
    settings = sampling_line(runs, model_obj, explicit=temperature is not None)
    err_console.print(
        f"improve: {env} ({split}) x {model}, {len(tasks)} tasks, budget {limits} per task, "
        f"{' vs '.join(s.name for s in runs)}{label}, store {st.url}\n{settings}",
        highlight=False,
    )
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("solved {task.fields[solved]}"),
        TimeElapsedColumn(),
        console=err_console,
    )
    bars = {
        s.name: progress.add_task(escape(s.name + ("[oracle]" if oracle else "")), total=len(tasks), solved=0)
        for s in runs
    }
    solved = dict.fromkeys(bars, 0)

    def on_result(name: str, result: SolveResult) -> None:
        solved[name] += int(result.best.passed)
        progress.update(bars[name], advance=1, solved=solved[name])

    async def go() -> Comparison:
        try:
            with progress:
                return await acompare(
                    runs,
                    env_obj,
                    model_obj,
                    limits,
                    tasks=tasks,
                    split=split,
                    concurrency=concurrency,
                    baseline=False,
                    oracle=oracle,
                    store=st,
                    run_id=run_id,
                    env_spec=env,
                    model_spec=model,
                    on_result=on_result,
                    executor=remote,
                )
        finally:
            await aclose_model(model_obj)

    cmp = asyncio.run(go())
    if json_out:
        data = {"budget": str(limits), "oracle": oracle, "tasks": len(tasks), "strategies": cmp.rows()}
        console.print_json(json.dumps(data))
        return
    title = f"{env} · {model} · budget {limits} per task" + (" · ORACLE (upper bound, not a result)" if oracle else "")
    console.print(comparison_table(cmp, title))
    console.print("vs best-of-n: paired difference on the same tasks; 'beats' only if its 95% interval is above 0")
    console.print(
        f"wall s: elapsed seconds of each strategy's whole pass over the tasks, {concurrency} at a time",
        highlight=False,
    )
    console.print(settings, highlight=False)
    for report in cmp.reports:
        console.print(f"stored {report.label} as run {report.run_id} (candidates: {report.run_id}-candidates)")
