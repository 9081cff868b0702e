"""`hone micro ...`: the embedded micro model (train it from scratch on an environment's demonstrations)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hone.core import ConfigError

from ._common import console, err_console, friendly, is_tty

if TYPE_CHECKING:
    from hone.learn.micro import TrainResult

micro_app = typer.Typer(help="The embedded micro model: train it, inspect it.", no_args_is_help=True)

# Mirrors hone.learn.micro's defaults without importing it (and torch) to build the CLI.
_STEPS, _DEMOS, _BATCH, _LR, _EVAL_N, _COPY, _MIX = 600, 6000, 8, 1e-3, 200, 600, 3000


@micro_app.command("train")
@friendly
def train_cmd(
    env: Annotated[str, typer.Option("--env", help="Environment to learn (it must write demonstrations).")] = "arith",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = _STEPS,
    out: Annotated[Path, typer.Option(help="Checkpoint directory (created or overwritten).")] = Path(
        "micro-checkpoint"
    ),
    demos: Annotated[int, typer.Option("--demos", help="Demonstrations to train on.")] = _DEMOS,
    seed: Annotated[int, typer.Option(help="Seed for demonstrations, initial weights and data order.")] = 0,
    eval_n: Annotated[int, typer.Option("--eval-n", help="Test tasks to evaluate on afterwards (0: skip).")] = _EVAL_N,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Conversations per step.")] = _BATCH,
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine schedule, 5% warmup).")] = _LR,
    copy_steps: Annotated[
        int, typer.Option("--copy-steps", help="Steps of the copy curriculum before the demonstrations (0: none).")
    ] = _COPY,
    copy_mix: Annotated[
        int, typer.Option("--copy-mix", help="Copy conversations mixed into the demonstrations.")
    ] = _MIX,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Show a progress bar (default: on a terminal).")
    ] = None,
) -> None:
    """Train the micro model from scratch on CPU (TRL SFT) and save a checkpoint with its model card."""
    missing = [m for m in ("torch", "transformers", "trl", "datasets") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"hone micro train needs {', '.join(missing)}: pip install 'hone[train]'")
    from hone.learn.micro import train_micro

    show = is_tty() if progress is None else progress
    err_console.print(
        f"training micro on {env}: {copy_steps} copy steps, then {steps} steps x {batch_size} on {demos} "
        f"demonstrations + {copy_mix} copies, lr {lr:g} -> {out}",
        highlight=False,
    )
    result = train_micro(
        env,
        steps=steps,
        out=out,
        n_demos=demos,
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        copy_steps=copy_steps,
        copy_mix=copy_mix,
        eval_n=eval_n,
        progress=show,
    )
    _print_result(result)


def _print_result(result: TrainResult) -> None:
    t = result.timings
    loss = "n/a" if result.final_loss is None else f"{result.final_loss:.4f}"
    console.print(f"checkpoint: [bold]{result.out}[/] ({result.params:,} parameters)", highlight=False)
    console.print(f"trained in {t['train_s']:.0f} s ({t['total_s']:.0f} s in all), final loss {loss}", highlight=False)
    report = result.eval
    if report is None:
        return
    levels = "  ".join(f"{k} {100 * v:.0f}%" for k, v in report.by_level.items())
    console.print(
        f"{report.env} {report.split}, {report.n} tasks: accuracy [bold]{100 * report.accuracy:.1f}%[/] "
        f"({levels}); well-formed turns {100 * report.well_formed:.1f}%",
        highlight=False,
    )
