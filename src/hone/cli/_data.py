"""`hone data ...`: learning datasets from stored runs, and the tokenization-consistency check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hone.core import ConfigError, DataError, Trajectory
from hone.store import open_store

from ._common import console, friendly
from ._eval import StoreOpt

if TYPE_CHECKING:
    from hone.learn.data import Records

data_app = typer.Typer(
    help="Build learning datasets (SFT, preference pairs, KTO, GRPO groups) from stored runs, or check token ids.",
    no_args_is_help=True,
)

Runs = Annotated[list[str], typer.Argument(help="Run ids to read (`hone runs` lists them).")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Directory for the Parquet files (created).")]
MinReward = Annotated[
    float | None, typer.Option("--min-reward", help="Keep only trajectories with at least this reward.")
]


def _load(store: str | None, runs: list[str], min_reward: float | None) -> list[Trajectory]:
    from hone.learn.data import load_trajectories

    st = open_store(store)
    try:
        found: list[Trajectory] = []
        for run in runs:
            if st.get_run(run) is None:
                raise ConfigError(f"no run {run!r} in {st.url}; `hone runs` lists the stored runs")
            found += load_trajectories(st, run_id=run, min_reward=min_reward)
        return found
    finally:
        st.close()


def _write(out: Path, files: dict[str, Records], stats: Any) -> None:
    from rich.table import Table

    if not any(len(records) for records in files.values()):
        # An empty dataset is not a result: say why (the stats count what was left out) and exit 1.
        why = "  ".join(f"{k} {v}" for k, v in asdict(stats).items())
        raise DataError(f"nothing to write: the runs gave no {' or '.join(files)} rows ({why})")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write to {out}: {exc.strerror}; pass --out DIR") from exc
    table = Table(header_style="bold")
    table.add_column("file")
    table.add_column("format")
    table.add_column("rows", justify="right")
    for name, records in files.items():
        if not len(records):
            continue
        path = out / f"{name}.parquet"
        table.add_row(str(path), records.format, str(records.to_parquet(path)))
    console.print(table)
    console.print("  ".join(f"{k} {v}" for k, v in asdict(stats).items()), highlight=False)


@data_app.command("sft")
@friendly
def sft_cmd(
    runs: Runs,
    out: Out,
    min_reward: MinReward = None,
    success_reward: Annotated[
        float | None, typer.Option(help="Count a reward >= this as success too (default: hidden verdict only).")
    ] = None,
    dedup: Annotated[bool, typer.Option(help="Keep one of identical solutions.")] = True,
    store: StoreOpt = None,
) -> None:
    """Rejection-sampled SFT data: token-exact rows (`sft-tokens`) where ids chain, conversations otherwise."""
    from hone.learn.data import sft_data

    data = sft_data(_load(store, runs, min_reward), success_reward=success_reward, dedup=dedup)
    _write(out, {"sft-tokens": data.tokens, "sft-conversations": data.conversations}, data.stats)


@data_app.command("pairs")
@friendly
def pairs_cmd(
    runs: Runs,
    out: Out,
    margin: Annotated[float, typer.Option(help="Minimum reward gap (--steps: value gap, public first).")] = 0.5,
    steps: Annotated[bool, typer.Option("--steps", help="Step-level pairs: siblings that share a parent.")] = False,
    min_reward: MinReward = None,
    store: StoreOpt = None,
) -> None:
    """Preference pairs (TRL conversational format): best vs worst per task, or siblings with --steps."""
    from hone.learn.data import preference_pairs, step_pairs

    trajectories = _load(store, runs, min_reward)
    data = step_pairs(trajectories, margin=margin) if steps else preference_pairs(trajectories, margin=margin)
    _write(out, {"step-pairs" if steps else "pairs": data.records}, data.stats)


@data_app.command("kto")
@friendly
def kto_cmd(runs: Runs, out: Out, min_reward: MinReward = None, store: StoreOpt = None) -> None:
    """Unpaired KTO records: each trajectory's continuation labelled by success."""
    from hone.learn.data import kto_data

    records = kto_data(_load(store, runs, min_reward))
    labels = [bool(r["label"]) for r in records]
    _write(out, {"kto": records}, _Counts(len(labels), sum(labels), len(labels) - sum(labels)))


@data_app.command("grpo")
@friendly
def grpo_cmd(runs: Runs, out: Out, store: StoreOpt = None) -> None:
    """GRPO groups with group-relative advantages, and the zero-variance fraction (groups that teach nothing)."""
    from hone.learn.data import grpo_groups

    data = grpo_groups(_load(store, runs, None))
    if data.stats.groups and data.stats.zero_variance_groups == data.stats.groups:
        raise DataError(
            f"all {data.stats.groups} groups scored every sample alike (zero variance): no advantage to learn "
            "from; collect more samples per task (-k) or at a higher temperature"
        )
    _write(out, {"grpo": data.records, "grpo-prompts": data.prompts}, data.stats)
    console.print(f"zero-variance fraction {data.stats.zero_variance_fraction:.3f}", highlight=False)


@data_app.command("check")
@friendly
def check_cmd(
    runs: Runs,
    tokenizer: Annotated[
        str,
        typer.Option(
            help="`micro`, `micro-base`, `micro-tools`, `micro-tools-base`, a directory with the tokenizer and chat "
            "template, or a GGUF file."
        ),
    ] = "micro",
    show: Annotated[int, typer.Option(help="Mismatches to print.")] = 20,
    store: StoreOpt = None,
) -> None:
    """Re-render stored conversations with the chat template and compare with the stored token ids.

    Exits 1 when any mismatch is found (training on those rows would teach tokens the model
    never produced).
    """
    from hone.learn.data import check_tokenization

    report = check_tokenization(_load(store, runs, None), _tokenizer(tokenizer))
    for m in report.mismatches[:show]:
        typer.echo(str(m))  # plain: snippets hold template markup that rich would reflow
    if len(report.mismatches) > show:
        typer.echo(f"... and {len(report.mismatches) - show} more")
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


def _tokenizer(spec: str) -> Any:
    from hone.models import MICRO_SPECS, micro_spec_checkpoint
    from hone.models._gguf import convert, gguf_file

    path = micro_spec_checkpoint(spec) if spec in MICRO_SPECS else Path(spec).expanduser()
    gguf = gguf_file(path)
    if gguf is not None:  # the folder it was converted to (as hf:PATH does), with its tokenizer
        path, _ = convert(gguf)
    if not path.is_dir():
        raise ConfigError(f"no tokenizer directory at {path}; pass --tokenizer micro or a model directory")
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise ConfigError("hone data check needs transformers: pip install 'hone[train]'") from exc
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        from hone.models._toolformats_mistral import mistral_common_tokenizer

        mistral = mistral_common_tokenizer(path)  # a Mistral folder with only tekken.json / tokenizer.model.v*
        if mistral is not None:
            return mistral
        raise ConfigError(f"cannot load a tokenizer from {path}: {' '.join(str(exc).split())}") from exc


@dataclass
class _Counts:
    """KTO's counts, shaped like the other builders' stats for `_write`."""

    records: int
    desirable: int
    undesirable: int
