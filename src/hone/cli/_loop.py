"""`hone loop ENV`: the closed learning loop (evaluate, collect, train, re-evaluate), resumable.

Its options are `LoopConfig`'s fields: names, types, defaults, help and bounds come from the model,
so a default is written once (in `hone.learn.loop._config`).
"""

from __future__ import annotations

import importlib.util
import inspect
import typing
from typing import Annotated, Any

import annotated_types
import typer

from hone.core import ConfigError, validate_options
from hone.learn.loop._config import METHODS, LoopConfig
from hone.rollout import parse_executor
from hone.store import open_store

from ._common import at_least, console, err_console, friendly, parse_kv, run_id_option
from ._eval import StoreOpt

FIELDS = (
    "model",
    "iterations",
    "method",
    "reward",
    "heldout_split",
    "heldout_n",
    "train_n",
    "k",
    "temperature",
    "focus",
    "steps",
    "batch_size",
    "max_epochs",
    "replay",
    "lr",
    "budget_s",
    "bfcl_n",
    "constrained_tools",
    "seed",
    "loop_id",
    "out",
    "threads",
    "executor",
    "workers",
    "per_worker",
)
"""The `LoopConfig` fields `hone loop` exposes, in the order `--help` lists them."""

FLAGS: dict[str, tuple[str, ...]] = {
    "model": ("--model", "-m"),
    "iterations": ("--iterations", "-i"),
    "k": ("-k",),
    "budget_s": ("--budget",),
    "bfcl_n": ("--bfcl",),
    "loop_id": ("--id",),
}
"""Option names that are not `--field-name` (a bool field gets `--name/--no-name`)."""


def flags(name: str) -> tuple[str, ...]:
    """The command-line names of `LoopConfig.name`."""
    if name in FLAGS:
        return FLAGS[name]
    flag = "--" + name.replace("_", "-")
    return (f"{flag}/--no-{flag[2:]}",) if LoopConfig.model_fields[name].annotation is bool else (flag,)


def _parameter(name: str) -> inspect.Parameter:
    field = LoopConfig.model_fields[name]
    kind: Any = field.annotation
    help_text = field.description or ""
    if typing.get_origin(kind) is typing.Literal:  # typer takes text; the model checks it (one line, the choices)
        help_text = f"{help_text} ({' | '.join(typing.get_args(kind))})"
        kind = str
    elif name == "method":  # plug-ins are looked up when the loop starts, not for --help
        help_text = f"{help_text} ({' | '.join(METHODS)} | a plug-in's, entry point group hone.learners)"
    option = typer.Option(*flags(name), help=help_text)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[kind, option], default=field.default
    )


def _check_bounds(values: dict[str, Any]) -> None:
    """Refuse a number outside its field's bounds in one line naming the command-line option."""
    for name in FIELDS:
        for bound in LoopConfig.model_fields[name].metadata:
            if isinstance(bound, annotated_types.Ge):
                at_least(flags(name)[0], values[name], float(bound.ge))  # type: ignore[arg-type]
            elif isinstance(bound, annotated_types.Gt):
                at_least(flags(name)[0], values[name], float(bound.gt), above=True)  # type: ignore[arg-type]


def _check_learner(config: LoopConfig) -> None:
    """The method names a learner, and `--set` only options its model has: one line otherwise."""
    from hone.learn.loop._registry import learner_names, learner_options, learner_spec
    from hone.learn.loop._tools import loop_reward

    names = learner_names()
    if config.method not in names:
        raise ConfigError(
            f"hone loop: option method={config.method!r}: input should be one of {', '.join(names)} "
            "(or a plug-in's, entry point group hone.learners)"
        )
    spec = learner_spec(config.method)
    spec.make(learner_options(spec, config))  # a learner checks its options when built
    loop_reward(config.reward)  # an unknown reward, before the store is opened


def _loop(env: str, store: str | None, option: list[str] | None = None, **values: Any) -> None:
    """Make a model better on ENV from its own feedback; prints each iteration and writes a report.

    Iteration 0 evaluates the starting model on the held-out split. Each iteration then
    samples on the train split, keeps what the hidden grader verified (expert iteration),
    pairs best with worst (DPO) or learns online from group-relative rewards (GRPO), trains
    a copy through TRL and evaluates it. Rerun the same command to resume. On a tool
    environment (toolgen) it evaluates on held-out tool sets and reports invalid calls, and
    can add BFCL accuracy by category at the start and the end (`--bfcl N`).
    """
    _check_bounds(values)
    values["loop_id"] = run_id_option(values["loop_id"], "--id")  # names the report directory and the run ids
    values["options"] = parse_kv(option, "--set")
    config = validate_options(LoopConfig, {"env": env, **values}, "hone loop")
    parse_executor(config.executor)  # `--executor dask`: refused before the store opens
    _check_learner(config)
    missing = [m for m in ("torch", "transformers", "trl", "datasets") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"hone loop needs {', '.join(missing)}: pip install 'hone[train]'")
    from hone.learn.loop import run_loop

    st = open_store(store)
    try:
        report = run_loop(config, st, log=lambda msg: err_console.print(msg, highlight=False))
    finally:
        st.close()
    console.print()
    console.print((report.out / "report.md").read_text(), highlight=False, markup=False)
    console.print(f"report: {report.out}/report.md, report.json, accuracy.png", highlight=False)


@friendly
def loop_cmd(env: str, store: str | None = None, option: list[str] | None = None, **values: Any) -> None:
    return _loop(env, store, option, **values)


loop_cmd.__doc__ = _loop.__doc__
loop_cmd.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            "env",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[str, typer.Argument(help="Environment to learn (e.g. arith).")],
        ),
        *(_parameter(name) for name in FIELDS),
        inspect.Parameter(
            "option",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[
                list[str] | None,
                typer.Option(
                    "--set",
                    help="Learner option KEY=VALUE (its options model's fields), or trl.NAME=VALUE for a field "
                    "of TRL's config, e.g. --set trl.loss_type=dr_grpo.",
                ),
            ],
            default=None,
        ),
        inspect.Parameter("store", inspect.Parameter.KEYWORD_ONLY, annotation=StoreOpt, default=None),
    ]
)
