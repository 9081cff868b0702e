"""`hone env build` and `hone env show`: build a tool-use environment from a spec, and look inside one."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from hone.core import ConfigError, HoneError

from ._common import at_least, console, err_console, friendly, is_tty

if TYPE_CHECKING:
    from hone.envs.build import BuildManifest, BuiltTask, Call
    from hone.envs.build._env import BuiltEnv

env_app = typer.Typer(
    help="Build tool-use environments from specs (hone env build) and inspect them (hone env show).",
    no_args_is_help=True,
)

GENERATORS = ("template", "llm")
# What a build writes into DIR; `--force` removes exactly these (never anything else in DIR).
_OUTPUTS = ("hone_env.json", "tasks.jsonl", "splits.json", "pyproject.toml", "stages", "src")


def _check_out_dir(out: Path, force: bool) -> None:
    """Refuse an output path that is a file, or a non-empty directory that holds no earlier build."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o {out}: is a file, not a directory")
    if not out.is_dir():
        return
    earlier = (out / "hone_env.json").is_file() or (out / "stages").is_dir()
    if any(out.iterdir()) and not earlier and not force:
        raise ConfigError(
            f"-o {out}: the directory is not empty and holds no built environment; pass --force to use it"
        )
    if force:
        import shutil

        for name in _OUTPUTS:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()


@env_app.command("build")
@friendly
def build_cmd(
    spec: Annotated[
        Path,
        typer.Argument(
            help="The spec: a .py module, JSON tool specs, an OpenAPI 3 or an FSM document; or `catalog` "
            "(the shipped toolgen scenarios) / `catalog:NAME,NAME` (some of them)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the environment to.")],
    kind: Annotated[
        str | None, typer.Option("--kind", help="Input kind when the file does not say: python, json, openapi, fsm.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="The environment's name (default: from the spec).")] = None,
    generator: Annotated[str, typer.Option("--generator", help="template (offline, seeded) or llm.")] = "template",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model spec for --generator llm (openai-compatible:URL:NAME...)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice (the same seed rebuilds the same tasks).")] = 0,
    tasks_per_level: Annotated[int, typer.Option("--tasks-per-level", help="Tasks per level and scenario.")] = 20,
    heldout_share: Annotated[
        float, typer.Option("--heldout-share", help="Share of scenarios held out (the heldout split).")
    ] = 0.2,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild from scratch: drop an earlier build's files and stage cache.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Build a tool-use environment from SPEC into DIR (cached stages: a rerun resumes)."""
    from hone.envs.build._inputs import load_source
    from hone.envs.build._pipeline import build

    # Every setup mistake is one line here, before any generator call or sandbox run.
    if generator not in GENERATORS:
        raise ConfigError(f"--generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
    if generator == "llm" and not model:
        raise ConfigError("--generator llm needs --model (e.g. openai-compatible:http://localhost:8000/v1:NAME)")
    if generator == "template" and model:
        raise ConfigError("--model is only used with --generator llm")
    at_least("--tasks-per-level", tasks_per_level, 1)
    if not 0 <= heldout_share < 1:
        raise ConfigError(f"--heldout-share must be in [0, 1), got {heldout_share:g}")
    text = str(spec)
    if (text == "catalog" or text.startswith("catalog:")) and not spec.is_file():
        from hone.envs.build._catalog import load_catalog

        if kind not in (None, "catalog"):
            raise ConfigError(f"--kind {kind} does not apply to the shipped catalog")
        names = [n for n in text.removeprefix("catalog").lstrip(":").split(",") if n] or None
        source = load_catalog(names)
        if name:
            source = source.model_copy(update={"name": name})
    elif not spec.is_file():
        raise ConfigError(f"{spec}: no such file (give a .py module, JSON tool specs, an OpenAPI or FSM document)")
    else:
        source = load_source(spec, name=name, kind=kind)
    gen = None
    if generator == "llm":
        from hone.envs.build._llm import LLMGenerator
        from hone.models import resolve_model

        gen = LLMGenerator(resolve_model(str(model)))
    _check_out_dir(out, force)
    start = time.perf_counter()
    manifest = build(
        source,
        out,
        generator=gen,
        seed=seed,
        tasks_per_level=tasks_per_level,
        heldout_share=heldout_share,
        progress=is_tty(),
    )
    seconds = time.perf_counter() - start
    if json_out:
        console.print_json(
            json.dumps({**manifest.model_dump(mode="json"), "seconds": round(seconds, 3), "out": str(out)})
        )
    else:
        _print_manifest(manifest, out, seconds)
    if manifest.tasks == 0:
        dropped = ", ".join(f"{k} {v}" for k, v in manifest.dropped.items()) or "none"
        raise HoneError(f"the build verified no task (dropped: {dropped}); see {out / 'stages'}")


def _print_manifest(m: BuildManifest, out: Path, seconds: float) -> None:
    head = Table(title=f"built {escape(m.name)} -> {escape(str(out))}", header_style="bold", show_header=False)
    head.add_column("field")
    head.add_column("value")
    rows = [
        ("source", f"{m.kind} · generator {m.generator} · seed {m.seed}"),
        ("scenarios", str(m.scenarios)),
        ("tools", str(m.tools)),
        ("tasks (verified)", str(m.tasks)),
        ("splits", " · ".join(f"{k} {v}" for k, v in m.splits.items()) or "-"),
        ("dropped", " · ".join(f"{k} {v}" for k, v in sorted(m.dropped.items())) or "none"),
        ("seconds", f"{seconds:.1f}"),
    ]
    for field, value in rows:
        head.add_row(field, escape(value))
    console.print(head)
    levels = Table(title="tasks by level", header_style="bold")
    levels.add_column("level")
    levels.add_column("tasks", justify="right")
    for level, count in m.by_level.items():
        levels.add_row(escape(level), str(count))
    console.print(levels)
    err_console.print(f"evaluate with: hone eval {escape(str(out))} --model MODEL", highlight=False)


def render_call(call: Call) -> str:
    """`name(arg=value, ...)` with JSON values."""
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in call.arguments.items())
    return f"{call.name}({args})"


def render_reference(task: BuiltTask) -> str:
    """The reference solution: steps in order (`->`), parallel calls of a step joined by ` | `."""
    if not task.reference:
        return "(no call: answer directly)"
    return " -> ".join(" | ".join(render_call(c) for c in step) for step in task.reference)


@env_app.command("show")
@friendly
def show_cmd(
    path: Annotated[str, typer.Argument(help="A directory written by `hone env build`, or a built env's name.")],
    tasks: Annotated[int, typer.Option("--tasks", help="Tasks to show (dealt level by level).")] = 6,
    level: Annotated[int | None, typer.Option("--level", help="Only tasks of this level (1-6).")] = None,
    split: Annotated[str, typer.Option(help="Split the tasks are drawn from.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the task choice.")] = 0,
) -> None:
    """Print a built environment's tools, levels and a few tasks with their reference solutions."""
    from hone.envs.build._spec import LEVELS

    at_least("--tasks", tasks, 0)
    if level is not None and level not in LEVELS:
        raise ConfigError(f"--level must be 1-6 ({', '.join(f'{k} {v}' for k, v in LEVELS.items())}), got {level}")
    env = _load_built(path)
    m = env.manifest
    console.print(
        f"[bold]{escape(m.name)}[/] (version {env.version}): {m.scenarios} scenarios, {m.tools} tools, "
        f"{m.tasks} tasks; built from {m.kind} by {m.generator}, seed {m.seed}",
        highlight=False,
    )
    console.print(_tools_table(env))
    console.print(_levels_table(env))
    shown = [env.built_task(t.id) for t in env.tasks(split, seed=seed)]
    if level is not None:
        shown = [t for t in shown if t.level == level]
    if tasks:
        console.print(_tasks_table(shown[:tasks], split))


def _load_built(spec: str) -> BuiltEnv:
    """A built directory, else a registered environment that is a built one (`toolgen`, an installed package)."""
    from hone.envs import envs, make_env
    from hone.envs.build._env import BuiltEnv

    if Path(spec).is_dir() or spec not in envs.names():
        return BuiltEnv.load(spec)
    env = make_env(spec)
    if not isinstance(env, BuiltEnv):
        raise ConfigError(f"{spec!r} is not a built environment (hone env show reads `hone env build` output)")
    return env


def _tools_table(env: BuiltEnv) -> Table:
    t = Table(title="tools", header_style="bold")
    for column in ("scenario", "tool", "effect", "arguments", "description"):
        t.add_column(column)
    for scenario in env.scenarios.values():
        label = scenario.name + (" (heldout)" if scenario.heldout else "")
        for doc in scenario.tools:
            props: dict[str, Any] = doc.parameters.get("properties") or {}
            required = set(doc.parameters.get("required") or [])
            args = ", ".join(f"{k}{'' if k in required else '?'}: {v.get('type', 'any')}" for k, v in props.items())
            t.add_row(escape(label), escape(doc.name), doc.effect, escape(args), escape(doc.description))
    return t


def _levels_table(env: BuiltEnv) -> Table:
    from hone.envs.build._spec import LEVELS

    t = Table(title="levels", header_style="bold")
    t.add_column("level")
    t.add_column("name")
    splits = ("train", "test", "heldout")
    for s in splits:
        t.add_column(s, justify="right")
    counts: dict[tuple[int, str], int] = {}
    for s in splits:
        for task in env.built_tasks(s):
            counts[task.level, s] = counts.get((task.level, s), 0) + 1
    for level, label in LEVELS.items():
        t.add_row(str(level), label, *(str(counts.get((level, s), 0)) for s in splits))
    return t


def _tasks_table(tasks: list[BuiltTask], split: str) -> Table:
    t = Table(title=f"tasks ({split})", header_style="bold", show_lines=True)
    for column in ("id", "level", "prompt", "reference solution", "answer"):
        t.add_column(column)
    for task in tasks:
        prompt = task.prompt
        if task.hidden_facts:
            prompt += "\n[user knows: " + ", ".join(f"{k}={v}" for k, v in task.hidden_facts.items()) + "]"
        t.add_row(
            escape(task.id),
            str(task.level),
            escape(prompt),
            escape(render_reference(task)),
            escape(task.answer if task.answer is not None else "-"),
        )
    return t
