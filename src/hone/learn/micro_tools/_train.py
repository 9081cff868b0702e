"""Train `micro-tools` from scratch: toolgen demonstrations -> BPE tokenizer -> TRL SFT on CPU -> held-out eval.

The same machinery as `micro` (`hone.learn.micro._train`: TRL `SFTTrainer`, assistant-only loss,
safetensors checkpoint, `HFLocal` evaluation), with what tool documents need instead of what
arithmetic needs: the byte-level BPE of `_tokenizer` trained on the demonstrations' own rendered
texts plus toolgen's train corpus, a longer context, no copy curriculum, and evaluation on the
`heldout` split (tool sets never seen in training) with levels 1-2 and 3-6 reported apart.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hone.core import ConfigError, Trajectory

from ._card import write_card

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    from hone.envs.build import BuiltEnv
    from hone.learn.micro import TrainResult

# 3.67M parameters (262 K of them the tied 1024 x 256 embedding). Measured on the loaded 2-core
# machine at ~4 s per step of 8 conversations (~650 tokens/s), so the default 400 steps take
# ~25 minutes (docs/micro-tools.md, "Training: status"). A first guess for the 30-minute run,
# not yet tuned.
MICRO_TOOLS_CONFIG: dict[str, Any] = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
}
MAX_LENGTH = 1024
"""Training sequences are cut here (a toolgen demonstration averages ~330 BPE tokens)."""
DEFAULT_STEPS = 1200
DEFAULT_DEMOS = 3200
DEFAULT_BATCH_SIZE = 8
DEFAULT_LR = 1e-3
DEFAULT_WARMUP = 0.05
DEFAULT_EVAL_N = 120
DEFAULT_OUT = Path("micro-tools-checkpoint")
SFT_MIX: dict[str, float] = {"clean": 0.85, "recovered": 0.15}
"""Demonstration styles SFT learns from: no `flawed` ones (an unrepaired wrong value is supervision
to copy wrongly); a `recovered` one shows reading an error and fixing the call."""
DEFAULT_STRING_COPY_STEPS = 700
STRING_COPY_BATCH_SIZE = 16
DEFAULT_COPY_STEPS = 400
DEFAULT_CHOICE_COPY_STEPS = 0
"""Steps of `choice_copy_records` after the tool-call copies: off, a measured negative result (run O,
docs/micro-tools.md: 250 steps of 16, paid for with 200 fewer string-copy and demonstration steps, left `choice`
at 15% and the whole held-out set at 23% against M's 25% and 32.5%)."""
CHOICE_COPY_BATCH_SIZE = 16
DEFAULT_COPY_MIX = 1600
COPY_BATCH_SIZE = 8
DEFAULT_AUGMENT = 0.75
"""Share of training conversations rewritten by `randomize_record` (values and some tool names)."""
DEFAULT_SWAP = 0.9
"""Share of training conversations set in a new domain by `swap_words` (their scenario's words replaced)."""
DEFAULT_VERB_SWAP = 0.0
"""Share of the swapped conversations whose name-leading verbs (`_augment.VERBS`: get, find, count...) are
replaced too. Off: run V (0.5) measured it as a negative result (docs/micro-tools.md): the first name token still
went to `get` or `find` (0.75 for "log trip"), `choice` 15% against M's 25%."""
DEFAULT_BF16 = True
"""bf16 autocast (fp32 master weights): on a CPU with AVX-512 BF16, 1.4x fp32's training tokens/s with SDPA."""
LEVEL_GROUPS: dict[str, Sequence[str]] = {
    "levels 1-2": ("single", "choice"),
    "levels 3-6": ("parallel", "chain", "ask", "no_tool"),
}
"""How the held-out accuracy is reported (issue 14's target is on levels 1-2)."""


def new_micro_tools_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0, **overrides: Any) -> LlamaForCausalLM:
    """A freshly initialised micro-tools model (`MICRO_TOOLS_CONFIG`, `overrides` on top), declaring
    the micro models' capabilities in its `config.json` like `micro`."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from hone.models import MICRO
    from hone.models._capabilities import CONFIG_KEY

    values = {
        **MICRO_TOOLS_CONFIG,
        "vocab_size": len(tokenizer),
        CONFIG_KEY: MICRO.model_dump(exclude={"context"}),
        **overrides,
    }
    config = LlamaConfig(
        **values, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call,no-any-return]


def demo_texts(demos: Sequence[Trajectory]) -> Iterator[str]:
    """Demonstrations rendered by the micro-tools template (their mistakes and error observations too)."""
    from hone.learn.micro import sft_records

    from ._corpus import render

    for record in sft_records(demos):
        yield render(record["messages"], record["tools"])


def augmented_dataset(
    dataset: Any,
    *,
    augment: float,
    copies: int = 1,
    seed: int = 0,
    swap: float = 0.0,
    words: Sequence[str] = (),
    verb_swap: float = 0.0,
) -> Any:
    """`copies` passes over `dataset` (TRL conversational rows, `tools` as JSON text), each row's closing made
    canonical (`canonical_closing`), set in a new domain by `swap_words` (new words from `words` or made up) with
    probability `swap` (their leading verbs too with probability `verb_swap`), then rewritten by
    `randomize_record` with probability `augment` (fresh draws per copy), in one shuffled `Dataset`."""
    import random

    from datasets import Dataset

    from ._augment import canonical_closing, randomize_record, swap_words

    if not all(0.0 <= x <= 1.0 for x in (augment, swap, verb_swap)) or copies < 1:
        raise ConfigError(
            f"micro-tools: augment={augment}, swap={swap} and verb_swap={verb_swap} must be in [0, 1]"
            f" and copies={copies} at least 1"
        )
    rng = random.Random(f"hone-micro-tools-augment-{seed}")
    pool = list(words)
    rows = []
    for _ in range(copies):
        for row in map(canonical_closing, dataset):
            record = {"messages": row["messages"], "tools": json.loads(row["tools"])}
            changed = False
            if rng.random() < swap:
                record, changed = swap_words(record, rng, pool, p_verb=verb_swap), True
            if rng.random() < augment:
                record, changed = randomize_record(record, rng), True
            if changed:
                row = {"messages": record["messages"], "tools": json.dumps(record["tools"], ensure_ascii=False)}
            rows.append(row)
    rng.shuffle(rows)
    return Dataset.from_list(rows)


def train_micro_tools(
    env: str = "toolgen",
    *,
    steps: int = DEFAULT_STEPS,
    out: Path = DEFAULT_OUT,
    n_demos: int = DEFAULT_DEMOS,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    warmup_ratio: float = DEFAULT_WARMUP,
    eval_n: int = DEFAULT_EVAL_N,
    progress: bool = True,
    logging_steps: int = 25,
    threads: int | None = None,
    corpus_limit: int | None = None,
    max_length: int = MAX_LENGTH,
    model_overrides: dict[str, Any] | None = None,
    augment: float = DEFAULT_AUGMENT,
    swap: float = DEFAULT_SWAP,
    verb_swap: float = DEFAULT_VERB_SWAP,
    copies: int = 2,
    copy_steps: int = DEFAULT_COPY_STEPS,
    copy_mix: int = DEFAULT_COPY_MIX,
    string_copy_steps: int = DEFAULT_STRING_COPY_STEPS,
    choice_copy_steps: int = DEFAULT_CHOICE_COPY_STEPS,
    snapshots: Mapping[int, Path] | None = None,
    base_at: int | None = None,
    bf16: bool = DEFAULT_BF16,
    eval_constrained: bool | None = None,
) -> TrainResult:
    """Train a fresh micro-tools model on `n_demos` demonstrations of `env`'s train split; save it to `out`.

    The tokenizer (`build_tokenizer`) is trained on the demonstrations' rendered texts, then on
    `toolgen_corpus(env, limit=corpus_limit)` (train tasks and the documents of scenarios not held
    out): nothing of a held-out scenario reaches it. SFT as `micro` does it (assistant-only loss,
    cosine schedule, `max_length` tokens a conversation) with no copy curriculum. `out` receives a
    standard Hugging Face checkpoint and `training_log.json`; with `eval_n > 0` it is evaluated on
    `eval_n` tasks of the `heldout` split through `HFLocal`, by level and by group (`LEVEL_GROUPS`).
    """
    from hone.learn.micro import _train as micro

    micro._check(steps=steps, n_demos=n_demos, batch_size=batch_size, lr=lr, eval_n=eval_n, warmup_ratio=warmup_ratio)
    for name, value in (
        ("copy_steps", copy_steps),
        ("copy_mix", copy_mix),
        ("string_copy_steps", string_copy_steps),
        ("choice_copy_steps", choice_copy_steps),
    ):
        if value < 0:  # TRL reads max_steps=-1 as "train by epochs": refuse rather than run something else
            raise ConfigError(f"micro-tools: {name}={value} must be 0 or more")
    if max_length < 64:
        raise ConfigError(f"micro-tools: max_length={max_length} must be at least 64")
    if not all(0.0 <= x <= 1.0 for x in (augment, swap, verb_swap)):  # before the demonstrations are played
        raise ConfigError(f"micro-tools: augment={augment}, swap={swap} and verb_swap={verb_swap} must be in [0, 1]")
    if base_at is not None and not 0 < base_at < steps:
        raise ConfigError(f"micro-tools: base_at={base_at} must be a demonstration step between 1 and {steps - 1}")
    out = Path(out)
    base = base_dir(out) if base_at is not None else None
    if base is not None and base_at is not None:
        snapshots = {**(snapshots or {}), base_at: base}
    import torch

    from hone.envs import make_env
    from hone.envs.build import BuiltEnv
    from hone.learn.micro import sft_dataset

    from ._copy import choice_copy_records, string_copy_records, tool_copy_records
    from ._corpus import toolgen_corpus
    from ._tokenizer import build_tokenizer

    if threads is not None:
        torch.set_num_threads(threads)
    env_obj = make_env(env)
    if not isinstance(env_obj, BuiltEnv):
        raise ConfigError(f"micro-tools: {env!r} is not a built tool environment (toolgen or another BuiltEnv)")
    started = time.perf_counter()
    demos = micro._demonstrations(env_obj, n_demos, seed, SFT_MIX)
    words = scenario_words(env_obj)
    dataset = augmented_dataset(
        sft_dataset(demos), augment=augment, copies=copies, seed=seed, swap=swap, words=words, verb_swap=verb_swap
    )
    if copy_mix:
        dataset = _with_tool_copies(dataset, copy_mix, seed, words)
    demos_s = time.perf_counter() - started

    t0 = time.perf_counter()
    corpus = chain(demo_texts(demos), toolgen_corpus(env_obj, limit=corpus_limit))
    tokenizer = build_tokenizer(corpus)
    tokenizer_s = time.perf_counter() - t0
    # SDPA: 1.6x eager's training tokens/s at these lengths (~400 tokens; eager wins on micro's short ones).
    overrides = {"attn_implementation": "sdpa", **(model_overrides or {})}
    model = new_micro_tools_model(tokenizer, seed, **overrides)
    params = sum(p.numel() for p in model.parameters())

    t0 = time.perf_counter()
    string_losses = (
        _fit_copies(
            model,
            tokenizer,
            string_copy_records(string_copy_steps * STRING_COPY_BATCH_SIZE, seed, words),
            string_copy_steps,
            STRING_COPY_BATCH_SIZE,
            seed,
            progress,
            bf16,
        )
        if string_copy_steps
        else []
    )
    copy_losses = (
        _fit_copies(
            model,
            tokenizer,
            tool_copy_records(copy_steps * COPY_BATCH_SIZE, seed, words),
            copy_steps,
            COPY_BATCH_SIZE,
            seed,
            progress,
            bf16,
        )
        if copy_steps
        else []
    )
    choice_losses = (
        _fit_copies(
            model,
            tokenizer,
            choice_copy_records(choice_copy_steps * CHOICE_COPY_BATCH_SIZE, seed, words),
            choice_copy_steps,
            CHOICE_COPY_BATCH_SIZE,
            seed,
            progress,
            bf16,
        )
        if choice_copy_steps
        else []
    )
    copy_s = time.perf_counter() - t0
    fitted: dict[str, Any] = {}
    losses, tokens = micro._sft(
        model,
        tokenizer,
        dataset,
        progress,
        stats=fitted,
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, round(warmup_ratio * steps)),
        assistant_only_loss=True,
        train_sampling_strategy="group_by_length",
        logging_steps=logging_steps,
        max_length=max_length,
        callbacks=[_snapshots(tokenizer, snapshots)] if snapshots else (),
        seed=seed,
        data_seed=seed,
        bf16=bf16,
    )
    train_s = time.perf_counter() - t0

    micro._save(model, tokenizer, out)
    if eval_constrained is None:
        eval_constrained = importlib.util.find_spec("llguidance") is not None
    report, constrained = _evaluate(out, env, eval_n, seed, eval_constrained)
    result = micro.TrainResult(
        out=out,
        env=env,
        params=params,
        args={
            "model_name": "micro-tools",
            "steps": steps,
            "n_demos": n_demos,
            "seed": seed,
            "batch_size": batch_size,
            "lr": lr,
            "warmup_ratio": warmup_ratio,
            "schedule": "cosine",
            "max_length": max_length,
            "augment": augment,
            "swap": swap,
            "verb_swap": verb_swap,
            "copies": copies,
            "copy_steps": copy_steps,
            "copy_mix": copy_mix,
            "copy_final_loss": copy_losses[-1][1] if copy_losses else None,
            "string_copy_steps": string_copy_steps,
            "string_copy_final_loss": string_losses[-1][1] if string_losses else None,
            "choice_copy_steps": choice_copy_steps,
            "choice_copy_final_loss": choice_losses[-1][1] if choice_losses else None,
            "sft_mix": SFT_MIX,
            "bf16": bf16,
            "eval_n": eval_n,
            "eval_split": "heldout",
            "threads": torch.get_num_threads(),
            "tokenizer": {"vocab_size": len(tokenizer), "corpus_limit": corpus_limit},
            "model": {**MICRO_TOOLS_CONFIG, **overrides, "vocab_size": len(tokenizer)},
        },
        data={**micro._data_summary(demos, len(dataset)), **fitted},
        losses=losses,
        final_loss=losses[-1][1] if losses else None,
        timings={
            "demonstrations_s": round(demos_s, 2),
            "tokenizer_s": round(tokenizer_s, 2),
            "copy_s": round(copy_s, 2),
            "train_s": round(train_s, 2),
            "eval_s": round((report.seconds if report else 0.0) + (constrained.seconds if constrained else 0.0), 2),
            "total_s": round(time.perf_counter() - started, 2),
        },
        tokens_per_second=round(tokens / train_s, 1) if tokens and train_s else None,
        eval=report,
        versions=micro._versions(),
        eval_constrained=constrained,
    )
    if base is not None and base_at is not None:
        result.args["base_at"] = base_at
        free, graded = _evaluate(base, env, eval_n, seed, eval_constrained)
        stopped = replace(
            result,
            out=base,
            args={**result.args, "stopped_at": base_at},
            losses=[(s, v) for s, v in losses if s <= base_at],
            eval=free,
            eval_constrained=graded,
        )
        stopped.final_loss = stopped.losses[-1][1] if stopped.losses else None
        (base / "training_log.json").write_text(json.dumps(stopped.to_dict(), indent=2) + "\n")
        write_card(base / "README.md", stopped.to_dict())
    (out / "training_log.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    write_card(out / "README.md", result.to_dict())
    return result


def base_dir(out: Path) -> Path:
    """Where `train_micro_tools(base_at=...)` saves the half-trained snapshot: `OUT-base` beside `OUT` (the packaged
    pair is `checkpoint` and `checkpoint-base`). `OUT` is resolved first, so `.` or `..` name a real sibling."""
    full = Path(out).expanduser().resolve()
    if not full.name:
        raise ConfigError(f"micro-tools: --base-at needs an --out directory with a name to put -base after, not {out}")
    return full.with_name(f"{full.name}-base")


def _evaluate(path: Path, env: str, n: int, seed: int, constrained: bool) -> tuple[Any, Any]:
    """The held-out evaluation of a checkpoint: the model alone, then (`constrained`) with its calls decoded under
    the offered tools' grammar; (None, None) when `n` is 0."""
    from hone.learn.micro import _train as micro

    if not n:
        return None, None
    free = micro.evaluate_micro(path, env, n=n, split="heldout", seed=seed, phrase=None, groups=LEVEL_GROUPS)
    if not constrained:
        return free, None
    from hone.models import HFLocal

    chat = HFLocal(path, constrained_tools=True)
    try:
        graded = micro.evaluate_micro(chat, env, n=n, split="heldout", seed=seed, phrase=None, groups=LEVEL_GROUPS)
    finally:
        chat.close()
    return free, graded


def _snapshots(tokenizer: Any, at: Mapping[int, Path]) -> Any:
    """A TRL/transformers callback saving the model (a standard checkpoint) after each step in `at`."""
    from transformers import TrainerCallback

    from hone.learn.micro import _train as micro

    class Snapshots(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if state.global_step in at and model is not None:
                micro._save(model, tokenizer, Path(at[state.global_step]))
                model.config.use_cache = False

    return Snapshots()


def scenario_words(env: BuiltEnv) -> list[str]:
    """The words of the tool and parameter names of `env`'s scenarios that are not held out (sorted)."""
    out: set[str] = set()
    for scenario in env.scenarios.values():
        if not scenario.heldout:
            for doc in scenario.tools:
                out.update(doc.name.split("_"))
                for name in doc.parameters.get("properties") or {}:
                    out.update(name.split("_"))
    return sorted(w for w in out if w)


def _fit_copies(
    model: Any,
    tokenizer: Any,
    records: list[dict[str, Any]],
    steps: int,
    batch_size: int,
    seed: int,
    progress: bool,
    bf16: bool,
) -> list[tuple[int, float]]:
    """One stage of the copy curriculum (`_copy`): `steps` of SFT on `records` at a constant rate, before the
    demonstrations; returns the logged losses."""
    from datasets import Dataset

    from hone.learn.micro import _train as micro

    return micro._sft(
        model,
        tokenizer,
        Dataset.from_list(records),
        progress,
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=DEFAULT_LR,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(30, steps // 4),
        logging_steps=max(1, steps // 10),
        seed=seed,
        data_seed=seed,
        bf16=bf16,
    )[0]


def _with_tool_copies(dataset: Any, n: int, seed: int, words: Sequence[str]) -> Any:
    """`dataset` with `n` copy records mixed in (so the copying learned first is kept)."""
    from datasets import Dataset, concatenate_datasets

    from ._copy import tool_copy_records

    copies = Dataset.from_list(tool_copy_records(n, seed + 1, words)).cast(dataset.features)
    return concatenate_datasets([dataset, copies]).shuffle(seed=seed)
