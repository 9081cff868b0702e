"""`hone micro ...`: the embedded micro model (train it from scratch on an environment's demonstrations)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hone.core import ConfigError
from hone.learn.micro import _train as M
from hone.learn.micro_tools import _train as T

from ._common import console, err_console, friendly, is_tty

if TYPE_CHECKING:
    from hone.learn.micro import TrainResult

micro_app = typer.Typer(help="The embedded micro model: train it, inspect it.", no_args_is_help=True)

# The training modules' own defaults (they import torch only when training): a copy here went stale once, and
# `hone micro train --env toolgen` then trained another recipe than the library's.
_STEPS, _DEMOS, _BATCH, _LR = M.DEFAULT_STEPS, M.DEFAULT_DEMOS, M.DEFAULT_BATCH_SIZE, M.DEFAULT_LR
_EVAL_N, _COPY, _MIX = M.DEFAULT_EVAL_N, M.DEFAULT_COPY_STEPS, M.DEFAULT_COPY_MIX
# Built tool environments train micro-tools instead (hone.learn.micro_tools; its defaults).
_TOOL_ENVS = ("toolgen",)
_T_STEPS, _T_DEMOS, _T_EVAL_N, _T_OUT = T.DEFAULT_STEPS, T.DEFAULT_DEMOS, T.DEFAULT_EVAL_N, T.DEFAULT_OUT
_T_COPY, _T_MIX, _T_STRING = T.DEFAULT_COPY_STEPS, T.DEFAULT_COPY_MIX, T.DEFAULT_STRING_COPY_STEPS
_T_CHOICE, _T_VERB_SWAP = T.DEFAULT_CHOICE_COPY_STEPS, T.DEFAULT_VERB_SWAP


@micro_app.command("train")
@friendly
def train_cmd(
    env: Annotated[
        str,
        typer.Option("--env", help="Environment to learn (it must write demonstrations); toolgen trains micro-tools."),
    ] = "arith",
    steps: Annotated[int | None, typer.Option(help=f"Optimizer steps (default {_STEPS}; toolgen {_T_STEPS}).")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint directory, created or overwritten "
            "(default micro-checkpoint; toolgen micro-tools-checkpoint)."
        ),
    ] = None,
    demos: Annotated[
        int | None, typer.Option("--demos", help=f"Demonstrations to train on (default {_DEMOS}; toolgen {_T_DEMOS}).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for demonstrations, initial weights and data order.")] = 0,
    eval_n: Annotated[
        int | None,
        typer.Option(
            "--eval-n",
            help=f"Tasks to evaluate on afterwards: test split, toolgen heldout (0: skip) "
            f"(default {_EVAL_N}; toolgen {_T_EVAL_N}).",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Conversations per step.")] = _BATCH,
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine schedule, 5% warmup).")] = _LR,
    copy_steps: Annotated[
        int | None,
        typer.Option(
            "--copy-steps",
            help=f"Copy-curriculum steps before the demonstrations (0: none; default {_COPY}; toolgen: tool-call "
            f"copies, {_T_COPY}).",
        ),
    ] = None,
    copy_mix: Annotated[
        int | None,
        typer.Option(
            "--copy-mix", help=f"Copy conversations mixed into the demonstrations (default {_MIX}; toolgen {_T_MIX})."
        ),
    ] = None,
    string_copy_steps: Annotated[
        int | None,
        typer.Option(
            "--string-copy-steps",
            help=f"toolgen: steps of plain string copies before the tool-call copies (default {_T_STRING}).",
        ),
    ] = None,
    choice_copy_steps: Annotated[
        int | None,
        typer.Option(
            "--choice-copy-steps",
            help=f"toolgen: steps of copies offering 2-5 tools, after the tool-call copies (default {_T_CHOICE}).",
        ),
    ] = None,
    verb_swap: Annotated[
        float | None,
        typer.Option(
            "--verb-swap",
            help=f"toolgen: share of domain-swapped demonstrations whose leading verbs (get, find, count...) are "
            f"replaced too (default {_T_VERB_SWAP:g}).",
        ),
    ] = None,
    base_at: Annotated[
        int | None,
        typer.Option(
            "--base-at",
            help="toolgen: also save the model at this demonstration step to OUT-base (micro-tools-base, the loop's "
            "start), evaluated and carded like OUT.",
        ),
    ] = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Show a progress bar (default: on a terminal).")
    ] = None,
) -> None:
    """Train the micro model (micro-tools on toolgen) from scratch on CPU (TRL SFT) and save a checkpoint."""
    missing = [m for m in ("torch", "transformers", "trl", "datasets") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"hone micro train needs {', '.join(missing)}: pip install 'hone[train]'")
    show = is_tty() if progress is None else progress
    if env in _TOOL_ENVS:
        copies = (
            _T_COPY if copy_steps is None else copy_steps,
            _T_MIX if copy_mix is None else copy_mix,
            _T_STRING if string_copy_steps is None else string_copy_steps,
            _T_CHOICE if choice_copy_steps is None else choice_copy_steps,
        )
        swap = _T_VERB_SWAP if verb_swap is None else verb_swap
        _train_tools(env, steps, out, demos, seed, eval_n, batch_size, lr, show, copies, swap, base_at)
        return
    if any(x is not None for x in (string_copy_steps, choice_copy_steps, verb_swap, base_at)):
        raise ConfigError(
            "hone micro train: --string-copy-steps, --choice-copy-steps, --verb-swap and --base-at are for tool"
            " environments (--env toolgen)"
        )
    copy_steps, copy_mix = _COPY if copy_steps is None else copy_steps, _MIX if copy_mix is None else copy_mix
    from hone.learn.micro import train_micro

    steps, demos = _STEPS if steps is None else steps, _DEMOS if demos is None else demos
    eval_n, out = _EVAL_N if eval_n is None else eval_n, Path("micro-checkpoint") if out is None else out
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


def _train_tools(
    env: str,
    steps: int | None,
    out: Path | None,
    demos: int | None,
    seed: int,
    eval_n: int | None,
    batch_size: int,
    lr: float,
    progress: bool,
    copies: tuple[int, int, int, int],
    verb_swap: float,
    base_at: int | None,
) -> None:
    from hone.learn.micro_tools import train_micro_tools

    steps, demos = _T_STEPS if steps is None else steps, _T_DEMOS if demos is None else demos
    eval_n, out = _T_EVAL_N if eval_n is None else eval_n, _T_OUT if out is None else out
    err_console.print(
        f"training micro-tools on {env}: {copies[2]} string-copy steps, {copies[0]} tool-copy steps, {copies[3]} "
        f"choice-copy steps, then {steps} "
        f"steps x {batch_size} on {demos} demonstrations + {copies[1]} copies (verb swap {verb_swap:g}), lr {lr:g} "
        f"-> {out}",
        highlight=False,
    )
    result = train_micro_tools(
        env,
        steps=steps,
        out=out,
        n_demos=demos,
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        eval_n=eval_n,
        progress=progress,
        copy_steps=copies[0],
        copy_mix=copies[1],
        string_copy_steps=copies[2],
        choice_copy_steps=copies[3],
        verb_swap=verb_swap,
        base_at=base_at,
    )
    _print_result(result)
    if base_at is not None:
        console.print(f"micro-tools-base (step {base_at}): [bold]{T.base_dir(result.out)}[/]", highlight=False)


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
    if report.groups:
        groups = "  ".join(f"{k} {100 * v:.1f}%" for k, v in report.groups.items())
        console.print(f"{report.split} by group: {groups}", highlight=False)
