"""`LoopConfig`: what `hone loop` does each iteration, and where it writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hone.rollout import EpisodeLimits

Method = Literal["expert-iteration", "grpo", "dpo"]
METHODS: tuple[Method, ...] = ("expert-iteration", "grpo", "dpo")
"""The built-in learners; `--method` also takes a registered or plug-in learner's name."""
DEFAULT_LR: dict[str, float] = {"expert-iteration": 5e-4, "grpo": 1e-5, "dpo": 1e-5}


class LoopConfig(BaseModel):
    """A closed learning loop: evaluate, collect, build data, train, repeat.

    Iteration 0 is the starting model. Each later iteration collects on the train split
    with the current model, trains a copy of it, and evaluates the result on the held-out
    split. Everything is keyed by `loop_id`, so running the same config again resumes.
    """

    model_config = ConfigDict(extra="forbid")

    env: str = Field(default="arith", description="Environment spec (`hone envs` lists them).")
    model: str = Field(
        default="micro-base",
        description="`micro-base` (the micro model stopped early: room to learn), `micro`, `micro-tools-base`, "
        "`micro-tools` (tool environments) or `hf:PATH`.",
    )
    method: str = Field(
        default="expert-iteration",
        description="How each iteration learns: a learner's name.",
    )
    iterations: int = Field(default=6, ge=0, description="Training iterations after the starting evaluation.")
    loop_id: str | None = Field(
        default=None, description="Loop id; reuse to resume (default: derived from the config)."
    )
    heldout_split: str | None = Field(
        default=None,
        description="Split evaluated (default: `heldout` for an environment built from specs, such as toolgen, "
        "whose held-out scenarios never appear in train; else `test`).",
    )
    heldout_n: int = Field(default=200, ge=1, description="Held-out tasks evaluated at temperature 0.")
    train_split: str = "train"
    train_n: int = Field(default=256, ge=1, description="Train tasks collected per iteration.")
    k: int = Field(default=4, ge=1, description="Samples per train task (the group size for GRPO and pairs).")
    temperature: float = Field(
        default=0.5,
        ge=0,
        description="Sampling temperature while collecting (measured: benchmarks/RESULTS.md).",
    )
    focus: bool = Field(
        default=True,
        description="Spread each collection over subsets (levels) by p(1-p) of the last collection's success "
        "rate p, so tasks always or never solved stop taking the budget.",
    )
    steps: int = Field(default=120, ge=1, description="Optimizer steps per iteration.")
    batch_size: int = Field(default=8, ge=1, description="Sequences per step (GRPO: episodes per step).")
    max_epochs: float = Field(
        default=4.0,
        gt=0,
        description="Expert iteration and DPO: at most this many passes over the kept data, so a few dozen "
        "successes are not overfitted (measured: benchmarks/RESULTS.md).",
    )
    replay: int = Field(
        default=6,
        ge=0,
        description="Expert iteration: also train on the verified successes of up to this many earlier "
        "collections (experience replay, de-duplicated), so skills mastered early keep being rehearsed "
        "(measured: benchmarks/RESULTS.md).",
    )
    lr: float | None = Field(
        default=None,
        gt=0,
        description="Learning rate (default: "
        + ", ".join(f"{rate:g} {method}" for method, rate in DEFAULT_LR.items())
        + "; measured: benchmarks/RESULTS.md).",
    )
    dpo_beta: float = Field(default=0.1, gt=0)
    margin: float = Field(default=0.5, ge=0, description="Minimum reward gap of a DPO pair.")
    reward: str | None = Field(
        default=None,
        description="A registered reward part (`hone.feedback.rewards`: tool_precision, toolrl, toolstar, otc, ...) "
        "the learner trains on instead of the environment's reward; expert iteration still keeps what passed.",
    )
    constrained_tools: bool = Field(
        default=False,
        description="Decode tool calls under a grammar of the offered tools (`HFLocal(constrained_tools=True)`, "
        "needs llguidance) in every evaluation and collection; logprobs stay the raw model's.",
    )
    bfcl_n: int = Field(
        default=0,
        ge=0,
        description="Evaluate the start and the final model on this many BFCL tasks per category (0: off; "
        "e.g. 50 on a tool environment).",
    )
    groups: dict[str, list[str]] | None = Field(
        default=None,
        description="Pooled held-out accuracy: group name -> subsets (default: for an environment built from specs, "
        "levels 1-2 and 3 up by the tasks' `level`; {} for none).",
    )
    seed: int = Field(default=0, description="Seeds task selection, sampling and training.")
    concurrency: int = Field(default=64, ge=1)
    budget_s: float | None = Field(default=None, gt=0, description="No new iteration starts after this many seconds.")
    limits: EpisodeLimits = Field(default_factory=EpisodeLimits)
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (default: torch's own).")
    out: Path | None = Field(default=None, description="Report directory; default .hone/reports/<loop_id>.")
    executor: str = Field(
        default="local",
        description="Where evaluations and collections run: local (this process), ray (a local Ray cluster) or "
        "ray:HOST:PORT; training stays in this process. Workers load each iteration's checkpoint from `out`, so "
        "on several machines it must be on a shared filesystem.",
    )
    workers: int = Field(default=2, ge=1, description="Ray workers (with executor ray).")
    per_worker: int = Field(default=16, ge=1, description="Episodes each Ray worker runs at once (one batch).")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The learner's further options (`--set KEY=VALUE`; `trl.NAME=VALUE` for a TRL config field).",
    )

    @property
    def learning_rate(self) -> float | None:
        """`lr`, or a built-in method's default (None for another learner: its own options model's)."""
        return self.lr if self.lr is not None else DEFAULT_LR.get(self.method)
