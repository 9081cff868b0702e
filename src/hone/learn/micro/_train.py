"""Train the micro model from scratch on an environment's demonstrations, with TRL's `SFTTrainer`.

One call does everything `hone micro train` promises: demonstrations -> conversational
dataset -> SFT on CPU -> a standard Hugging Face checkpoint (safetensors, tokenizer with
chat template, generation config) -> evaluation on the test split -> model card and
training log next to the weights.
"""

from __future__ import annotations

import asyncio
import json
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hone.core import ConfigError, Message, Sampling, Trajectory

from ._card import write_card
from ._data import sft_dataset
from ._model import MICRO_CONFIG

if TYPE_CHECKING:
    from hone.models import ChatModel

# Defaults of `hone micro train`, tuned so the committed checkpoint trains in ~10 minutes
# on two CPU cores (see benchmarks/micro_train.py and the checkpoint's README.md).
DEFAULT_STEPS = 600
DEFAULT_DEMOS = 6000
DEFAULT_BATCH_SIZE = 8
DEFAULT_LR = 1e-3
DEFAULT_WARMUP = 0.05
DEFAULT_COPY_STEPS = 600
DEFAULT_COPY_MIX = 3000
COPY_BATCH_SIZE = 16
COPY_LR = 1e-3
DEMO_CHUNK = 6000
DEFAULT_EVAL_N = 200
DEFAULT_OUT = Path("micro-checkpoint")
MAX_LENGTH = 1024
MAX_NEW_TOKENS = 256
ANSWER_PHRASE = "The answer is"


@dataclass
class EvalReport:
    """How a checkpoint does on an environment split at temperature 0.

    `well_formed` is the share of assistant turns that are either tool calls that parse or
    a plain-text answer containing "The answer is" (any non-empty text for an environment
    whose replies vary, see `summarize`); `tool_use` the share of episodes that called a tool
    at least once; `errors` counts episodes that ended in an error; `groups` the accuracy of
    groups of levels when asked (`micro-tools`: levels 1-2 and 3-6).
    """

    env: str
    split: str
    n: int
    accuracy: float
    by_level: dict[str, float]
    well_formed: float
    turns: int
    tool_use: float
    errors: int
    seconds: float
    groups: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """What `train_micro` did: where the checkpoint is, how training went, how it evaluates."""

    out: Path
    env: str
    params: int
    args: dict[str, Any]
    data: dict[str, Any]
    losses: list[tuple[int, float]]
    final_loss: float | None
    timings: dict[str, float]
    tokens_per_second: float | None
    eval: EvalReport | None = None
    versions: dict[str, str] = field(default_factory=dict)
    eval_constrained: EvalReport | None = None
    """micro-tools: the same evaluation with tool calls decoded under the tools' grammar (`constrained_tools`)."""

    def to_dict(self) -> dict[str, Any]:
        """The training log (`training_log.json`) as a JSON-ready dict."""
        out = asdict(self)
        out["out"] = str(self.out)
        out["losses"] = [{"step": s, "loss": round(v, 5)} for s, v in self.losses]
        return out


def well_formed(message: Message, phrase: str | None = ANSWER_PHRASE) -> bool:
    """True for a turn the environment can use: tool calls that all parse, or a plain answer
    (containing `phrase`; with None any non-empty text: a question or a refusal is a reply too)."""
    if message.tool_calls:
        return all(call.parse_error is None for call in message.tool_calls)
    return bool(message.text.strip()) if phrase is None else phrase in message.text


def summarize(
    trajectories: Sequence[Trajectory],
    *,
    env: str,
    split: str,
    seconds: float = 0.0,
    phrase: str | None = ANSWER_PHRASE,
    groups: dict[str, Sequence[str]] | None = None,
) -> EvalReport:
    """An `EvalReport` from graded trajectories: accuracy overall and by subset as `hone.metrics.summarize`
    counts them (an errored episode never passes), plus the micro model's well-formed turns (see
    `well_formed`) and tool use; `groups` names sets of subsets whose pooled accuracy to report."""
    from hone.metrics import summarize as summarize_run

    turns = [step.call.message for t in trajectories for step in t.steps]
    summary = summarize_run(trajectories)
    n = len(trajectories)
    accuracy = summary.accuracy or 0.0
    by_level = {name: sub.accuracy or 0.0 for name, sub in summary.by_subset.items()}
    return EvalReport(
        env=env,
        split=split,
        n=n,
        accuracy=accuracy,
        by_level=by_level or ({"all": accuracy} if n else {}),  # no subsets: one level
        well_formed=sum(well_formed(m, phrase) for m in turns) / len(turns) if turns else 0.0,
        turns=len(turns),
        tool_use=sum(t.tool_call_count > 0 for t in trajectories) / n if n else 0.0,
        errors=sum(t.status == "error" for t in trajectories),
        seconds=round(seconds, 2),
        groups={name: _pooled(trajectories, subsets) for name, subsets in (groups or {}).items()},
    )


def _pooled(trajectories: Sequence[Trajectory], subsets: Sequence[str]) -> float:
    chosen = [t for t in trajectories if t.subset in subsets]
    return sum(t.passed and t.status != "error" for t in chosen) / len(chosen) if chosen else 0.0


def evaluate_micro(
    model: str | Path | ChatModel,
    env: str = "arith",
    *,
    n: int = DEFAULT_EVAL_N,
    split: str = "test",
    seed: int = 0,
    phrase: str | None = ANSWER_PHRASE,
    groups: dict[str, Sequence[str]] | None = None,
) -> EvalReport:
    """Evaluate a checkpoint directory (or any `ChatModel`) on `env`'s `split`: `n` tasks at temperature 0.

    Episode limits are `hone eval`'s defaults (a calculator failure is an observation the
    model can recover from; a tool call that does not parse ends the episode), so the figures
    match `hone eval ENV --model micro -n N` (with `seed` 0).
    """
    from hone.envs import make_env
    from hone.models import HFLocal
    from hone.rollout import RunConfig, evaluate_run

    config = RunConfig(
        split=split,
        n=n,
        seed=seed,
        concurrency=64,  # HFLocal batches every episode in flight
        sampling=Sampling(temperature=0),
    )

    async def run() -> list[Trajectory]:
        chat: ChatModel = HFLocal(model) if isinstance(model, str | Path) else model
        closing = chat is not model  # close only what was opened here
        return (await evaluate_run(make_env(env), chat, config, close_model=closing)).trajectories

    started = time.perf_counter()
    trajectories = asyncio.run(run())
    seconds = time.perf_counter() - started
    return summarize(trajectories, env=env, split=split, seconds=seconds, phrase=phrase, groups=groups)


def train_micro(
    env: str = "arith",
    *,
    steps: int = DEFAULT_STEPS,
    out: Path = DEFAULT_OUT,
    n_demos: int = DEFAULT_DEMOS,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    warmup_ratio: float = DEFAULT_WARMUP,
    copy_steps: int = DEFAULT_COPY_STEPS,
    copy_mix: int = DEFAULT_COPY_MIX,
    eval_n: int = DEFAULT_EVAL_N,
    progress: bool = True,
    logging_steps: int = 25,
    threads: int | None = None,
    model_overrides: dict[str, Any] | None = None,
    backend: Callable[[Path], ChatModel] | None = None,
) -> TrainResult:
    """Train a fresh micro model on `n_demos` demonstrations of `env` and save it to `out`.

    SFT with TRL on CPU: assistant-only loss (the template's `{% generation %}` spans), no
    packing, a cosine schedule with `warmup_ratio` warmup, `steps` optimizer steps of
    `batch_size` conversations, after `copy_steps` of the copy curriculum (see `_copy`;
    0 skips it), with `copy_mix` copy conversations mixed into the demonstrations.
    Demonstrations come in chunks of 6,000 with their own seeds, so a large
    `n_demos` is all distinct problems. `out` receives the model (safetensors), tokenizer, generation
    config, `training_log.json` and a `README.md` model card. With `eval_n > 0` the result
    is evaluated on the test split first (see `evaluate_micro`; `backend` loads the saved
    checkpoint as a `ChatModel`, default `HFLocal`). `threads` sets torch's CPU threads (default: torch's own).
    """
    _check(
        steps=steps,
        n_demos=n_demos,
        batch_size=batch_size,
        lr=lr,
        eval_n=eval_n,
        warmup_ratio=warmup_ratio,
        copy_steps=copy_steps,
    )
    import torch

    from hone.envs import Demonstrator, make_env

    from ._tokenizer import build_tokenizer

    if threads is not None:
        torch.set_num_threads(threads)
    env_obj = make_env(env)
    if not isinstance(env_obj, Demonstrator):
        raise ConfigError(f"micro: environment {env!r} cannot write demonstrations to train on")
    started = time.perf_counter()
    demos = _demonstrations(env_obj, n_demos, seed)
    dataset = _with_copies(sft_dataset(demos), copy_mix, seed)
    demos_s = time.perf_counter() - started

    tokenizer = build_tokenizer()
    overrides = dict(model_overrides or {})
    # Eager attention: at this size it is ~2x faster than SDPA on CPU; inference keeps the default.
    model = _new_model(tokenizer, seed, overrides)
    params = sum(p.numel() for p in model.parameters())

    t0 = time.perf_counter()
    copy_losses = _fit_copy(model, tokenizer, copy_steps, seed, progress)[0] if copy_steps else []
    fitted: dict[str, Any] = {}
    losses, tokens = _fit(
        model, tokenizer, dataset, steps, batch_size, lr, warmup_ratio, seed, logging_steps, progress, fitted
    )
    train_s = time.perf_counter() - t0

    out = Path(out)
    _save(model, tokenizer, out)
    report = None
    if eval_n:
        report = evaluate_micro(backend(out) if backend is not None else out, env, n=eval_n)
    result = TrainResult(
        out=out,
        env=env,
        params=params,
        args={
            "steps": steps,
            "n_demos": n_demos,
            "seed": seed,
            "batch_size": batch_size,
            "lr": lr,
            "warmup_ratio": warmup_ratio,
            "schedule": "cosine",
            "copy_steps": copy_steps,
            "copy_mix": copy_mix,
            "copy_final_loss": copy_losses[-1][1] if copy_losses else None,
            "max_length": MAX_LENGTH,
            "eval_n": eval_n,
            "threads": torch.get_num_threads(),
            "model": {**MICRO_CONFIG, **overrides},
        },
        data={**_data_summary(demos, len(dataset)), **fitted},
        losses=losses,
        final_loss=losses[-1][1] if losses else None,
        timings={
            "demonstrations_s": round(demos_s, 2),
            "train_s": round(train_s, 2),
            "eval_s": report.seconds if report else 0.0,
            "total_s": round(time.perf_counter() - started, 2),
        },
        tokens_per_second=round(tokens / train_s, 1) if tokens and train_s else None,
        eval=report,
        versions=_versions(),
    )
    (out / "training_log.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    write_card(out / "README.md", result.to_dict())
    return result


def _demonstrations(env: Any, n: int, seed: int, mix: dict[str, float] | None = None) -> list[Trajectory]:
    # In chunks with their own seeds: an environment's small levels run out of distinct
    # problems in one long task list, while fresh chunks keep every example new.
    out: list[Trajectory] = []
    chunk = 0
    while len(out) < n:
        size = min(DEMO_CHUNK, n - len(out))
        more = {"mix": mix} if mix is not None else {}
        out += env.demonstrations(size, seed=seed * 1000 + chunk, split="train", **more)
        chunk += 1
    return out


def _new_model(tokenizer: Any, seed: int, overrides: dict[str, Any]) -> Any:
    from ._model import new_micro_model

    return new_micro_model(tokenizer, seed, **{"attn_implementation": "eager", **overrides})


def _fit(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    steps: int,
    batch_size: int,
    lr: float,
    warmup_ratio: float,
    seed: int,
    logging_steps: int,
    progress: bool,
    stats: dict[str, Any] | None = None,
) -> tuple[list[tuple[int, float]], float]:
    """Run SFT on the demonstrations; returns the logged (step, loss) history and the tokens seen."""
    return _sft(
        model,
        tokenizer,
        dataset,
        progress,
        stats=stats,
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, round(warmup_ratio * steps)),
        assistant_only_loss=True,
        # Batches of similar length: a third less padding than random batches.
        train_sampling_strategy="group_by_length",
        logging_steps=logging_steps,
        seed=seed,
        data_seed=seed,
    )


def _fit_copy(
    model: Any, tokenizer: Any, steps: int, seed: int, progress: bool
) -> tuple[list[tuple[int, float]], float]:
    """The copy curriculum (see `_copy`): `steps` of SFT on pure-copy conversations."""
    from datasets import Dataset

    from ._copy import copy_records

    dataset = Dataset.from_list(copy_records(steps * COPY_BATCH_SIZE, seed))
    return _sft(
        model,
        tokenizer,
        dataset,
        progress,
        max_steps=steps,
        per_device_train_batch_size=COPY_BATCH_SIZE,
        learning_rate=COPY_LR,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(50, steps // 4),
        assistant_only_loss=True,
        logging_steps=max(1, steps // 10),
        seed=seed,
        data_seed=seed,
    )


def _with_copies(dataset: Any, n: int, seed: int) -> Any:
    """`dataset` with `n` copy records mixed in (so the copying learned first is kept)."""
    if not n:
        return dataset
    from datasets import Dataset, concatenate_datasets

    from ._copy import copy_records

    copies = Dataset.from_list(copy_records(n, seed + 1)).cast(dataset.features)
    return concatenate_datasets([dataset, copies]).shuffle(seed=seed)


def _sft(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    progress: bool,
    callbacks: Sequence[Any] = (),
    stats: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[list[tuple[int, float]], float]:
    """One `SFTTrainer` run on CPU with the micro model's settings plus `options` (and TRL `callbacks`).

    The conversations are tokenized here as TRL would (`token_rows`: loss on the template's
    assistant spans), so one whose assistant tokens pass `max_length` is left out and counted
    (`within_length`, a log line; `stats["dropped_too_long"]`) rather than cut by TRL unseen.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    from hone.learn.train import TrainArgs, token_rows, within_length
    from hone.learn.train._common import fit, quiet_datasets

    # bf16 off by default: TRL turns it on, and for micro's short sequences it is slower and lossy on CPU.
    options = {"max_length": MAX_LENGTH, "bf16": False, **options, "assistant_only_loss": False}  # mask column does it
    rows, dropped = within_length(token_rows(dataset, tokenizer), options["max_length"], "micro SFT")
    if stats is not None:
        stats["dropped_too_long"] = dropped
    dataset = Dataset.from_list(rows)

    with tempfile.TemporaryDirectory(prefix="hone-micro-") as scratch, quiet_datasets(progress):
        config = SFTConfig(
            output_dir=scratch,  # required by TRL; nothing is saved there (save_strategy="no")
            weight_decay=0.0,
            # beta2 0.95 (not TRL's 0.999): with it the model learns to copy characters
            # (the expression into the tool call, the result into the answer); without it,
            # 2,000 steps did not.
            adam_beta2=0.95,
            use_cpu=True,
            activation_checkpointing=False,  # TRL turns it on by default: it only costs time here
            packing=False,
            save_strategy="no",
            report_to=[],
            logging_first_step=True,
            disable_tqdm=not progress,
            dataloader_num_workers=0,
            **options,
        )
        trainer = SFTTrainer(
            model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=list(callbacks)
        )
        report = fit(trainer, TrainArgs(progress=progress), rows=len(dataset))
    return report.losses, report.tokens


def _save(model: Any, tokenizer: Any, out: Path) -> None:
    from transformers import GenerationConfig

    out.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        eos_token_id=tokenizer.eos_token_id,  # <|im_end|>: a turn ends the generation
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=MAX_NEW_TOKENS,
    )
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _data_summary(demos: Sequence[Trajectory], rows: int) -> dict[str, Any]:
    styles = Counter(str(t.meta.get("style", "unknown")) for t in demos)
    n = len(demos)
    return {
        "demonstrations": n,
        "rows": rows,
        "split": "train",
        "styles": {k: round(v / n, 4) for k, v in sorted(styles.items())} if n else {},
        "passed": round(sum(t.passed for t in demos) / n, 4) if n else 0.0,
    }


def _versions() -> dict[str, str]:
    import torch
    import transformers
    import trl

    from hone import __version__

    return {
        "hone": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
    }


def _check(**values: float) -> None:
    for name in ("steps", "n_demos", "batch_size"):
        if values[name] < 1:
            raise ConfigError(f"micro: {name}={values[name]} must be at least 1")
    if values.get("copy_steps", 0) < 0:
        raise ConfigError(f"micro: copy_steps={values['copy_steps']} must be at least 0")
    if values["lr"] <= 0:
        raise ConfigError(f"micro: lr={values['lr']} must be positive")
    if values["eval_n"] < 0:
        raise ConfigError(f"micro: eval_n={values['eval_n']} must be at least 0")
    if not 0 <= values["warmup_ratio"] < 1:
        raise ConfigError(f"micro: warmup_ratio={values['warmup_ratio']} must be in [0, 1)")
