"""`run_loop`: evaluate, collect, build data, train, re-evaluate; resumable at every phase."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hone.core import ConfigError, Sampling, Task, Trajectory, stable_hash
from hone.envs import Environment, make_env
from hone.models import ChatModel
from hone.rollout import Evaluation, RayExecutor, RemoteModel, RunConfig, evaluate_run, parse_executor
from hone.store import RunInfo, RunKind, TrajectoryStore, check_run_id

from ._bfcl import BFCL_ENV, bfcl_run, from_dict, run_check
from ._config import LoopConfig
from ._learn import check_vocabulary, save
from ._learner import LearnContext, Learner
from ._monitor import kl_to_start, monitors
from ._registry import learner_options, learner_spec
from ._report import Interrupted, Iteration, LoopReport, write_report
from ._tools import default_heldout_split, level_groups, loop_reward, tool_stats

Log = Callable[[str], None]
DONE = "hone-checkpoint-complete"
"""The packaged micro-tools checkpoints, under `hone/learn/micro_tools/`."""


def loop_id_for(config: LoopConfig, env: Environment | None = None) -> str:
    """A stable id from what defines the loop (not from how long it runs, nor what it reports), so a rerun
    resumes. The default held-out split is resolved first (`env`, else made from `config.env`)."""
    report_only = {"iterations", "loop_id", "out", "budget_s", "threads", "bfcl_n", "groups"}
    report_only |= {"executor", "workers", "per_worker"}  # where episodes run, not what they are
    keys = config.model_dump(mode="json", exclude=report_only)
    if keys["heldout_split"] is None:
        keys["heldout_split"] = default_heldout_split(env or make_env(config.env))
    for name in ("options", "reward", "constrained_tools"):
        if not keys[name]:
            del keys[name]  # the ids of loops from before these options stay the same
    return f"loop-{config.env}-{config.method}-{stable_hash(keys, 8)}"


def start_checkpoint(spec: str) -> Path:
    """The directory a trainable model spec names (`micro`, `micro-base`, `micro-tools`, `micro-tools-base` or
    `hf:PATH`)."""
    from hone.models import MICRO_SPECS, micro_spec_checkpoint

    if spec in MICRO_SPECS:
        path = micro_spec_checkpoint(spec)
        if not (path / "config.json").is_file():
            env = "toolgen" if spec.startswith("micro-tools") else "arith"
            raise ConfigError(
                f"loop: {spec} is not packaged in this install (no {path}); "
                f"train it with `hone micro train --env {env} --out DIR` and pass --model hf:DIR"
            )
    elif spec.startswith("hf:"):
        path = Path(spec[3:]).expanduser()
    else:
        raise ConfigError(
            f"loop: cannot train {spec!r}; use `micro`, `micro-base`, `micro-tools`, `micro-tools-base` or "
            "`hf:PATH` (a local Hugging Face model)"
        )
    if not (path / "config.json").is_file():
        raise ConfigError(f"loop: {path} is not a model directory (no config.json); train or download it first")
    return path


class Loop:
    """One loop's state on disk (`out/state.json`, `out/checkpoints/iter-N`) and in the store."""

    def __init__(self, config: LoopConfig, store: TrajectoryStore, log: Log | None = None) -> None:
        self.env = make_env(config.env)
        if config.heldout_split is None:
            config = config.model_copy(update={"heldout_split": default_heldout_split(self.env)})
        self.config = config
        self.store = store
        self.log: Log = log or (lambda _msg: None)
        self.loop_id = check_run_id(config.loop_id, "loop id") if config.loop_id else loop_id_for(config, self.env)
        self.out = Path(config.out or Path(".hone") / "reports" / self.loop_id)
        self.reward = loop_reward(config.reward)
        self.bfcl_env = make_env(BFCL_ENV) if config.bfcl_n else None  # its data are checked before any work
        self.heldout_split: str = config.heldout_split or "test"
        if config.groups is None:  # resolved, so the report says which subsets each group pools
            config = config.model_copy(update={"groups": level_groups(self.env, self.heldout_split, config.heldout_n)})
        self.config = config
        self.groups: dict[str, list[str]] = config.groups or {}
        spec = learner_spec(config.method)
        self.learner: Learner = spec.make(learner_options(spec, config))
        self.start = start_checkpoint(config.model)
        self.remote = self._executor(config.env)  # checked before any work: Ray missing, a cluster not there
        check_vocabulary(self.start)  # before any episode: a mismatch would fail mid-run
        if config.constrained_tools:
            from hone.models._hf_constrain import require_llguidance

            require_llguidance()  # the install hint now, not at the first evaluation
        try:
            (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"loop: cannot write to {self.out}: {exc.strerror}; pass --out DIR") from exc
        self._started = time.monotonic()
        self._spent_before = 0.0  # by earlier invocations of this loop, read from its state
        self.report = LoopReport(
            self.loop_id, config.env, config.model, config.method, self.out, config=config.model_dump(mode="json")
        )
        self._load_state()

    # -- state -------------------------------------------------------------------------
    def _state_path(self) -> Path:
        return self.out / "state.json"

    def _load_state(self) -> None:
        path = self._state_path()
        if not path.is_file():
            return
        state = json.loads(path.read_text())
        self.report.iterations = [Iteration(**it) for it in state.get("iterations", [])]
        self.report.interrupted = [Interrupted(**it) for it in state.get("interrupted", [])]
        self.report.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.report.bfcl = [from_dict(check) for check in state.get("bfcl", [])]
        self._spent_before = self.report.elapsed_s

    def elapsed(self) -> float:
        """Seconds this loop has run, over every invocation (what the budget counts)."""
        return self._spent_before + time.monotonic() - self._started

    def _save_state(self) -> None:
        self.report.elapsed_s = round(self.elapsed(), 1)
        tmp = self._state_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(self.report.to_dict(), indent=2) + "\n")
        tmp.replace(self._state_path())  # atomic: a kill leaves the old state or the new one
        summary = {
            "iterations": [asdict(it) for it in self.report.iterations],
            "out": str(self.out),
            "elapsed_s": self.report.elapsed_s,
            "bfcl": [asdict(check) for check in self.report.bfcl],
        }
        self.store.save_run(
            RunInfo(
                id=self.loop_id,
                kind="loop",
                env=self.config.env,
                model=self.config.model,
                split=self.heldout_split,
                config=self.report.config,
                status="done" if len(self.report.iterations) > self.config.iterations else "running",
                summary=summary,
            )
        )

    def _executor(self, env_spec: str, ckpt: Path | None = None) -> RayExecutor | None:
        """A `RayExecutor` for `env_spec` with the model in `ckpt` (None with --executor local)."""
        kind, address = parse_executor(self.config.executor)
        if kind != "ray":
            return None
        query = "?constrained_tools=true" if self.config.constrained_tools else ""
        where = ckpt or self.start
        remote = RayExecutor(
            env_spec,
            f"hf:{where.resolve()}{query}",
            address=address,
            workers=self.config.workers,
            per_worker=self.config.per_worker,
            model_name=f"{self.config.model}@{where.name}",
        )
        remote.check()
        return remote

    def checkpoint(self, i: int) -> Path:
        return self.start if i == 0 else self.out / "checkpoints" / f"iter-{i}"

    # -- phases ------------------------------------------------------------------------
    def run(self) -> LoopReport:
        """Run the iterations not done yet; the budget counts the time of earlier invocations too."""
        self._started = time.monotonic()
        budget = self.config.budget_s
        try:
            for i in range(self.config.iterations + 1):
                if i < len(self.report.iterations):
                    it = self.report.iterations[i]
                    self.log(f"iteration {i}: done before (held-out accuracy {it.heldout_accuracy:.1%}), skipped")
                elif i > 0 and budget and self.elapsed() > budget:
                    before = f" ({self._spent_before:.0f}s of it before this run)" if self._spent_before else ""
                    self.log(f"budget of {budget:.0f}s spent{before}: stopping before iteration {i}")
                    break
                else:
                    self._iteration(i)
                if i == 0:
                    self._bfcl(0)
            self._bfcl(len(self.report.iterations) - 1)  # the final model (the last one when the budget stopped)
        finally:  # a stopped run's time counts too, for the budget and the report
            self._save_state()
        return self.report

    def _iteration(self, i: int) -> None:
        t0 = time.monotonic()
        try:
            self._run_iteration(i, t0)
        except BaseException:  # Ctrl-C, a kill signal turned exception, a crash: keep the time it took
            self.report.interrupted.append(Interrupted(i, round(time.monotonic() - t0, 1)))
            raise

    def _run_iteration(self, i: int, t0: float) -> None:
        extra: dict[str, Any] = {}
        tokens = 0
        if i > 0:
            extra, tokens = self._learn(i - 1)
        ckpt = self.checkpoint(i)
        run_id = f"{self.loop_id}-eval-{i}"
        cfg = self.config
        evaluation = self.rollouts(
            ckpt, run_id, split=self.heldout_split, n=cfg.heldout_n, k=1, temperature=0.0, seed=0, kind="loop-eval"
        )
        trajectories, s = evaluation.trajectories, evaluation.summary
        solved = [t for t in trajectories if t.passed]
        calls = sum(t.tool_call_count for t in trajectories)
        extra |= tool_stats(trajectories, self.groups)
        extra["tool_calls"] = extra.pop("calls")
        it = Iteration(
            iteration=i,
            checkpoint=str(ckpt),
            heldout_accuracy=round(s.accuracy or 0.0, 4),
            accuracy_by_level={k: round(v.accuracy or 0.0, 4) for k, v in s.by_subset.items()},
            tool_calls_per_task=round(calls / len(trajectories), 3) if trajectories else 0.0,
            tool_calls_per_solved_task=round(sum(t.tool_call_count for t in solved) / len(solved), 3)
            if solved
            else None,
            tokens=tokens + sum(t.usage.tokens for t in trajectories),
            seconds=round(time.monotonic() - t0 + self.report.interrupted_seconds(i), 1),
            eval_run=run_id,
            **extra,
        )
        self.report.iterations.append(it)
        self._save_state()
        by = {**it.accuracy_by_level, **it.accuracy_by_group}
        solved_calls = "" if it.tool_calls_per_solved_task is None else f", per solved {it.tool_calls_per_solved_task}"
        share = "" if it.invalid_call_share is None else f", invalid calls {it.invalid_call_share:.1%}"
        self.log(
            f"iteration {i}: held-out accuracy {it.heldout_accuracy:.1%} "
            f"({', '.join(f'{k} {v:.0%}' for k, v in by.items())}), "
            f"tool calls/task {it.tool_calls_per_task}{solved_calls}{share}, {it.seconds:.0f}s"
        )

    def _bfcl(self, i: int) -> None:
        """The outside check of iteration `i`'s checkpoint on BFCL, once per `bfcl_n` (resumed like an evaluation)."""
        if self.bfcl_env is None or i < 0:
            return
        if any(c.iteration == i and c.run == bfcl_run(self.loop_id, i, self.config.bfcl_n) for c in self.report.bfcl):
            return
        self.report.bfcl = [c for c in self.report.bfcl if c.iteration != i]  # one with another --bfcl N: redone
        ckpt = self.checkpoint(i)

        def evaluate(env: Environment, run_id: str, tasks: list[Task]) -> list[Trajectory]:
            return self.rollouts(
                ckpt, run_id, split="test", n=len(tasks), k=1, temperature=0.0, seed=0, tasks=tasks,
                kind="loop-eval", env=env, env_spec=BFCL_ENV,
            ).trajectories  # fmt: skip

        check = run_check(self.bfcl_env, evaluate, self.loop_id, i, self.config.bfcl_n)
        self.report.bfcl.append(check)
        self._save_state()
        cats = ", ".join(f"{c} {v:.0%}" for c, v in check.by_category.items())
        failed = ", ".join(f"{k} {v}" for k, v in check.failures.items()) or "none"
        self.log(f"iteration {i}: BFCL {check.accuracy:.1%} ({cats}); failures: {failed}; {check.seconds:.0f}s")

    def rollouts(
        self,
        ckpt: Path,
        run_id: str,
        *,
        split: str,
        n: int,
        k: int,
        temperature: float,
        seed: int,
        tasks: list[Task] | None = None,
        kind: RunKind = "loop-collect",
        env: Environment | None = None,
        env_spec: str | None = None,
    ) -> Evaluation:
        """Run (or resume) `run_id`, a child run of the loop of `kind`: `tasks` (default: the first `n` of
        `split`) x `k` samples with the model in `ckpt` on `env` (default: the loop's; `env_spec` builds it
        on Ray workers); returns all of it, summarised. With `executor` ray the episodes run on Ray workers
        that load `ckpt` themselves; this process loads no model for them."""
        from hone.models import HFLocal

        config = RunConfig(
            run_id=run_id,
            split=split,
            n=n,
            k=k,
            seed=seed,
            concurrency=self.config.concurrency,
            limits=self.config.limits,
            sampling=Sampling(temperature=temperature, logprobs=temperature > 0),
        )

        name = f"{self.config.model}@{ckpt.name}"
        remote = self._executor(env_spec or self.config.env, ckpt) if self.remote is not None else None

        async def go() -> Evaluation:  # the engine is made on the loop that runs it
            chat: ChatModel = (
                RemoteModel(name)
                if remote is not None
                else HFLocal(ckpt, name=name, constrained_tools=self.config.constrained_tools)
            )
            return await evaluate_run(
                env or self.env,
                chat,
                config,
                store=self.store,
                tasks=tasks,
                kind=kind,
                parent_id=self.loop_id,
                close_model=True,
                executor=remote,
            )

        return asyncio.run(go())

    def context(self, i: int) -> LearnContext:
        """What the learner sees to train iteration `i`'s checkpoint into iteration `i + 1`'s."""
        cfg = self.config
        source = self.checkpoint(i)
        collect_run = f"{self.loop_id}-collect-{i}"
        task_seed = cfg.seed + 1000 * (i + 1)  # new train tasks every iteration

        def collect(tasks: list[Task], k: int, temperature: float) -> list[Trajectory]:
            return self.rollouts(
                source, collect_run, split=cfg.train_split, n=cfg.train_n, k=k, temperature=temperature,
                seed=task_seed, tasks=tasks,
            ).trajectories  # fmt: skip

        def collect_rewarded(tasks: list[Task], k: int, temperature: float) -> list[Trajectory]:
            return ctx.rewarded(collect(tasks, k, temperature))

        ctx = LearnContext(
            iteration=i,
            checkpoint=source,
            loop_id=self.loop_id,
            env=self.env,
            store=self.store,
            log=self.log,
            collect=collect_rewarded,
            collect_run=collect_run,
            store_run=self._store_run,
            seed=cfg.seed + i,
            task_seed=task_seed,
            train_split=cfg.train_split,
            train_n=cfg.train_n,
            focus=cfg.focus,
            limits=cfg.limits,
            reward=self.reward,
            env_spec=cfg.env,
            executor=cfg.executor,
            workers=cfg.workers,
        )
        return ctx

    def _store_run(self, run_id: str, kind: RunKind, trajectories: list[Trajectory]) -> list[Trajectory]:
        """Store trajectories a learner sampled itself as a finished child run of the loop."""
        run = RunInfo(
            id=run_id, kind=kind, parent_id=self.loop_id, env=self.config.env, model=self.config.model, status="done"
        )
        self.store.save_run(run)
        stored = [t.model_copy(update={"run_id": run_id, "sample": n}) for n, t in enumerate(trajectories)]
        self.store.put_many(stored)
        return stored

    def _learn(self, i: int) -> tuple[dict[str, Any], int]:
        """Train iteration `i`'s model into checkpoint `i + 1` with the learner; returns report fields and
        tokens used."""
        target = self.checkpoint(i + 1)
        marker = target / DONE
        if marker.is_file():  # trained before an interruption: reuse
            self.log(f"iteration {i + 1}: checkpoint {target} exists, training skipped")
            return json.loads(marker.read_text()), 0
        if target.exists():
            shutil.rmtree(target)  # a half-written checkpoint from a killed run
        record = self.learner.learn(self.context(i))
        save(record.model, record.tokenizer, self.checkpoint(i), target)
        train = {k: v for k, v in record.fit.to_dict().items() if k != "metrics"}
        train["losses"] = [[s, round(v, 5)] for s, v in record.fit.losses]
        tokens = int(record.fit.tokens) + sum(t.usage.tokens for t in record.collected)
        fields: dict[str, Any] = {
            "collect_run": record.collect_run,
            "data": record.data,
            "train": train,
            "monitors": monitors(record.collected),
        }
        if record.collected:
            fields["monitors"]["kl_to_start"] = self._kl(record.collected)
        marker.write_text(json.dumps(fields))
        return fields, tokens

    def _kl(self, collected: list[Trajectory]) -> float | None:
        from transformers import AutoModelForCausalLM

        start = AutoModelForCausalLM.from_pretrained(self.start)
        start.eval()  # type: ignore[no-untyped-call]
        return kl_to_start(collected, start, limit=32)


def run_loop(config: LoopConfig, store: TrajectoryStore, *, log: Log | None = None) -> LoopReport:
    """Run (or resume) the loop `config` describes; writes the report files and returns the report."""
    from transformers.utils import logging as hf_logging

    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    # The loop logs one line per phase; transformers' bar for every checkpoint load and save is noise.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        loop = Loop(config, store, log)
        report = loop.run()
    finally:
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    write_report(report)
    _write_html(report, store, log)
    return report


def _write_html(report: LoopReport, store: TrajectoryStore, log: Log | None) -> None:
    """`report.html` beside report.md: the self-contained page `hone report` writes (needs `hone[web]`)."""
    from hone.store import SQLStore

    path = report.out / "report.html"
    try:
        from hone.web import write_report as write_html
    except ImportError:
        if log:
            log(f"{path.name} not written: `hone report` needs pip install 'hone[web]'")
        return
    if isinstance(store, SQLStore):
        write_html(store, report.loop_id, path)
