"""`hone loop ENV`: the closed learning loop (evaluate, collect, train, re-evaluate), resumable."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from hone.core import ConfigError
from hone.store import open_store

from ._common import at_least, check_run_options, console, err_console, friendly, run_id_option
from ._eval import StoreOpt

_METHODS = ("expert-iteration", "grpo", "dpo")


@friendly
def loop_cmd(
    env: Annotated[str, typer.Argument(help="Environment to learn (e.g. arith).")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="`micro-base`, `micro` or `hf:PATH`: a model to train.")
    ] = "micro-base",
    iterations: Annotated[int, typer.Option("--iterations", "-i", help="Learning iterations after iteration 0.")] = 6,
    method: Annotated[str, typer.Option(help="expert-iteration | grpo | dpo.")] = "expert-iteration",
    heldout_n: Annotated[int, typer.Option("--heldout-n", help="Held-out (test) tasks per evaluation.")] = 200,
    train_n: Annotated[int, typer.Option("--train-n", help="Train tasks collected per iteration.")] = 256,
    k: Annotated[int, typer.Option("-k", help="Samples per train task (GRPO group size).")] = 4,
    temperature: Annotated[float, typer.Option(help="Sampling temperature while collecting.")] = 0.5,
    focus: Annotated[
        bool, typer.Option(help="Spread collection over levels by how much each can still teach (p(1-p)).")
    ] = True,
    steps: Annotated[int, typer.Option(help="Optimizer steps per iteration.")] = 120,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Sequences (GRPO: episodes) per step.")] = 8,
    max_epochs: Annotated[
        float, typer.Option("--max-epochs", help="Expert iteration/DPO: at most this many passes over the data.")
    ] = 4.0,
    replay: Annotated[
        int, typer.Option(help="Expert iteration: also train on the successes of this many earlier collections.")
    ] = 6,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate (default: 5e-4 expert iteration, 1e-5 GRPO and DPO).")
    ] = None,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Seconds; no new iteration starts after this.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds task selection, sampling and training.")] = 0,
    loop_id: Annotated[str | None, typer.Option("--id", help="Loop id (default: derived from the config).")] = None,
    out: Annotated[Path | None, typer.Option(help="Report directory (default .hone/reports/<id>).")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    store: StoreOpt = None,
) -> None:
    """Make a model better on ENV from its own feedback; prints each iteration and writes a report.

    Iteration 0 evaluates the starting model on the held-out split. Each iteration then
    samples on the train split, keeps what the hidden grader verified (expert iteration),
    pairs best with worst (DPO) or learns online from group-relative rewards (GRPO), trains
    a copy through TRL and evaluates it. Rerun the same command to resume.
    """
    if method not in _METHODS:
        raise ConfigError(f"unknown method {method!r}; use one of: {', '.join(_METHODS)}")
    check_run_options(k=k, temperature=temperature)
    at_least("--iterations", iterations, 0)
    at_least("--heldout-n", heldout_n, 1)
    for name, count in (("--train-n", train_n), ("--steps", steps), ("--batch-size", batch_size)):
        at_least(name, count, 1)
    at_least("--threads", threads, 1)
    at_least("--replay", replay, 0)
    at_least("--max-epochs", max_epochs, 0, above=True)
    at_least("--budget", budget, 0, above=True)
    at_least("--lr", lr, 0, above=True)
    loop_id = run_id_option(loop_id, "--id")  # names the report directory and the loop's run ids
    missing = [m for m in ("torch", "transformers", "trl", "datasets") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"hone loop needs {', '.join(missing)}: pip install 'hone[train]'")
    from hone.learn.loop import LoopConfig, run_loop

    config = LoopConfig(
        env=env,
        model=model,
        method=method,  # checked above
        iterations=iterations,
        heldout_n=heldout_n,
        train_n=train_n,
        k=k,
        temperature=temperature,
        focus=focus,
        steps=steps,
        batch_size=batch_size,
        max_epochs=max_epochs,
        replay=replay,
        lr=lr,
        budget_s=budget,
        seed=seed,
        loop_id=loop_id,
        out=out,
        threads=threads,
    )
    st = open_store(store)
    try:
        report = run_loop(config, st, log=lambda msg: err_console.print(msg, highlight=False))
    finally:
        st.close()
    console.print()
    console.print((report.out / "report.md").read_text(), highlight=False, markup=False)
    console.print(f"report: {report.out}/report.md, report.json, accuracy.png", highlight=False)
