"""The Runner: tasks x k samples, concurrently, within a Budget, stored as they finish, resumable.

A run with a store is leased (`SQLStore.lease`): a second process on the same run id is
refused, so work and budget are never spent twice. An episode the budget cuts short is not
stored: its (task, sample) stays to do, so rerunning the command with more budget finishes
the run, and what it spent is kept in the run record (`summary["discarded"]`) so the run's
ledger, and hence its budget, still counts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hone.core import (
    Account,
    BudgetExceeded,
    ConfigError,
    DataError,
    ErrorInfo,
    Ledger,
    Task,
    Trajectory,
    new_id,
    stable_int,
    utcnow,
)
from hone.envs import Environment
from hone.models import ChatModel
from hone.store import (
    DEFAULT_LEASE_TTL_S,
    LeaseError,
    LeaseKeeper,
    RunInfo,
    RunKind,
    TrajectoryStore,
    check_run_id,
)

from ._config import RunConfig
from ._episode import run_episode
from ._ray import EpisodeJob, RayExecutor, WorkerLost
from ._writer import StoreWriter

OnTrajectory = Callable[[Trajectory], None]


@dataclass
class RunResult:
    """What a run produced: the trajectories finished in this call and the run's totals.

    `trajectories` holds only episodes run now; on a resumed run, earlier ones are in the
    store. `ledger` is the whole run's spend, earlier sessions included. `skipped` counts
    (task, sample) pairs already stored, and `remaining` those not run (budget or stop);
    `cut_short` of those were started and cut off by the budget (not stored, rerun later).
    `stopped_by` is "budget" or "lease" (another process took the run over) when not done.
    """

    run_id: str
    trajectories: list[Trajectory] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    skipped: int = 0
    remaining: int = 0
    cut_short: int = 0
    stopped_by: str | None = None

    def __repr__(self) -> str:
        # Short: Python 3.11's asyncio.run formats the finished main task (and so this result) when it puts
        # the SIGINT handler back, which for every trajectory in full took 0.5 ms per episode.
        return (
            f"RunResult(run_id={self.run_id!r}, trajectories=<{len(self.trajectories)}>, calls={self.ledger.calls}, "
            f"skipped={self.skipped}, remaining={self.remaining}, stopped_by={self.stopped_by!r})"
        )


class Runner:
    """Runs an environment's tasks with a model, k samples each, `concurrency` at a time.

    Every finished trajectory is written to the store at once; running again with the same
    `run_id` skips what is stored, so a killed run resumes and nothing is duplicated. While
    it runs, the run id is leased in the store (`lease_ttl_s`: see `SQLStore.lease`). The run
    record gets `kind` and `parent_id` (a loop's evaluation: "loop-eval", the loop's id).
    `executor` (a `RayExecutor`) runs the episodes on Ray workers instead of in this process;
    everything else (store, lease, resume, budget) stays here (see `_ray`).
    """

    def __init__(
        self,
        env: Environment,
        model: ChatModel,
        config: RunConfig | None = None,
        *,
        store: TrajectoryStore | None = None,
        env_spec: str | None = None,
        model_spec: str | None = None,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        kind: RunKind = "eval",
        parent_id: str | None = None,
        executor: RayExecutor | None = None,
    ) -> None:
        self.env = env
        self.kind: RunKind = kind
        self.parent_id = parent_id
        self.model = model
        self.config = config or RunConfig()
        self.store = store
        self.env_spec = env_spec or env.name
        self.model_spec = model_spec or model.name
        self.run_id = check_run_id(self.config.run_id) if self.config.run_id is not None else new_id("run-")
        self.lease_ttl_s = lease_ttl_s
        self.executor = executor
        self._discarded = Ledger()
        self._cut_short = 0

    def tasks(self) -> list[Task]:
        """The environment's tasks for this run; an empty list is a `DataError` (nothing to evaluate)."""
        c = self.config
        tasks = self.env.tasks(c.split, n=c.n, seed=c.seed)
        if not tasks:
            raise DataError(f"{self.env_spec}: split {c.split!r} has no tasks (is its dataset empty?)")
        return tasks

    def _where(self) -> dict[str, Any]:
        """Where this invocation runs its episodes, for the run record (a resumed run says where it last ran)."""
        ex = self.executor
        if ex is None:
            return {}
        return {"executor": {"kind": "ray", "address": ex.address, "workers": ex.workers, "per_worker": ex.per_worker}}

    def _open_run(self) -> tuple[set[tuple[str, int]], Ledger]:
        """Create the run record, or check a resumed one matches; return what is stored."""
        if self.store is None:
            return set(), Ledger()
        existing = self.store.get_run(self.run_id)
        if existing is not None:
            if (existing.env, existing.model) != (self.env_spec, self.model_spec):
                raise ConfigError(
                    f"run {self.run_id!r} was made with env={existing.env!r} model={existing.model!r}, "
                    f"not env={self.env_spec!r} model={self.model_spec!r}; pick a new --run-id"
                )
            self._discarded = Ledger.model_validate(existing.summary.get("discarded") or {})
            if self.config.retry_errors:
                errored = Ledger.total([t.usage for t in self.store.query(run_id=self.run_id, status="error")])
                self._discarded.add(errored)  # deleted, but spent: the budget still counts it
                self.store.delete(self.run_id, status="error")
        run = RunInfo(
            id=self.run_id,
            kind=self.kind,
            parent_id=self.parent_id,
            env=self.env_spec,
            model=self.model_spec,
            split=self.config.split,
            config=self.config.model_dump(mode="json") | self._where(),
            status="running",
            created_at=existing.created_at if existing else utcnow(),
            summary={"discarded": self._discarded.model_dump()},
        )
        self.store.save_run(run)
        done = self.store.done_keys(self.run_id)
        spent = Ledger.total([t.usage for t in self.store.query(run_id=self.run_id)]) if done else Ledger()
        spent.add(self._discarded)
        return done, spent

    def _finish_run(self, status: str, result: RunResult) -> None:
        if self.store is None:
            return
        run = self.store.get_run(self.run_id)
        if run is None:
            return
        run.status = status  # type: ignore[assignment]
        run.updated_at = utcnow()
        run.summary = {
            **run.summary,
            "ledger": result.ledger.model_dump(),
            "discarded": self._discarded.model_dump(),
            "remaining": result.remaining,
            "cut_short": result.cut_short,
            "stopped_by": result.stopped_by,
        }
        self.store.save_run(run)

    async def run(self, tasks: Sequence[Task] | None = None, on_trajectory: OnTrajectory | None = None) -> RunResult:
        """Run every (task, sample) not yet stored for this run id.

        Raises `LeaseError` when another live process is working on the same run id.
        """
        tasks = list(tasks) if tasks is not None else self.tasks()
        if self.executor is not None:
            await self.executor.start()  # a setup mistake is refused here, before any episode
        try:
            if self.store is None:
                return await self._run(tasks, on_trajectory, None)
            with self.store.lease(self.run_id, self.lease_ttl_s) as lease:
                result = await self._run(tasks, on_trajectory, lease)
        finally:
            if self.executor is not None:
                await self.executor.close()
        if result.stopped_by == "lease":
            raise LeaseError(
                f"run {self.run_id!r}: another process took over its lease (this one stalled past "
                f"{self.lease_ttl_s:g} s); stopped with {result.remaining} episodes left to that process"
            )
        return result

    async def _run(self, tasks: list[Task], on_trajectory: OnTrajectory | None, lease: LeaseKeeper | None) -> RunResult:
        c = self.config
        self._cut_short = 0
        done, spent = self._open_run()
        account = Account(c.budget, ledger=spent.model_copy())
        result = RunResult(run_id=self.run_id)
        todo = [(t, s) for t in tasks for s in range(c.k) if (t.id, s) not in done]
        result.skipped = len(tasks) * c.k - len(todo)
        queue: asyncio.Queue[tuple[Task, int]] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)
        status = "running"
        writer = StoreWriter(self.store) if self.store is not None else None
        if writer is not None:
            writer.start()

        async def worker() -> None:
            while not queue.empty():
                if lease is not None and lease.lost:
                    result.stopped_by = "lease"
                    return
                if not account.can_call():
                    result.stopped_by = "budget"
                    return
                task, sample = queue.get_nowait()
                traj = await self._episode(task, sample, account)
                if traj is None:  # cut short by the budget: not stored, to be run again on resume
                    queue.put_nowait((task, sample))
                    result.stopped_by = "budget"
                    return
                if writer is not None:
                    writer.put(traj)
                result.trajectories.append(traj)
                if on_trajectory is not None:
                    on_trajectory(traj)

        in_flight = self.executor.capacity if self.executor is not None else c.concurrency
        workers = [asyncio.create_task(worker()) for _ in range(min(in_flight, max(len(todo), 1)))]
        try:
            await asyncio.gather(*workers)
            status = "done" if queue.empty() else "interrupted"
        except BaseException:
            status = "interrupted"
            for w in workers:
                w.cancel()
            raise
        finally:
            if writer is not None:
                await writer.close()
            result.remaining = queue.qsize()
            result.stopped_by = result.stopped_by if result.remaining else None
            result.cut_short = self._cut_short
            result.ledger = account.close()
            if lease is None or not lease.lost:  # the run record is the new holder's now
                self._finish_run(status, result)
        return result

    async def _episode(self, task: Task, sample: int, account: Account) -> Trajectory | None:
        c = self.config
        seed = c.sampling.seed if c.sampling.seed is not None else stable_int(c.seed, task.id, sample)
        if self.executor is not None:
            traj = await self._remote_episode(task, sample, c.sampling.model_copy(update={"seed": seed}))
            account.record_spent(traj.usage)  # checked before the next episode is handed out
            traj.tags = list(c.tags)
            return traj
        traj = await run_episode(
            self.env.clone(),
            self.model,
            task,
            sample=sample,
            sampling=c.sampling.model_copy(update={"seed": seed}),
            limits=c.limits,
            account=account,
            run_id=self.run_id,
            split=c.split,
        )
        if traj.error is not None and traj.error.type == BudgetExceeded.kind:
            if traj.steps:  # started, then cut off: an incomplete attempt, neither result nor error
                self._discarded.add(traj.usage)
                self._cut_short += 1
            return None
        traj.tags = list(c.tags)
        return traj

    async def _remote_episode(self, task: Task, sample: int, sampling: Any) -> Trajectory:
        assert self.executor is not None
        c = self.config
        job = EpisodeJob(
            task=task, sample=sample, sampling=sampling, limits=c.limits, run_id=self.run_id, split=c.split
        )
        try:
            return await self.executor.episode(job)
        except WorkerLost as exc:  # stored as an error: --retry-errors runs it again
            return Trajectory(
                run_id=self.run_id,
                task_id=task.id,
                sample=sample,
                env=self.env.name,
                model=self.model.name,
                split=c.split,
                subset=task.subset,
                status="error",
                stop_reason="error",
                error=ErrorInfo.from_exception(exc),
            )
