"""The Runner: tasks x k samples, concurrently, within a Budget, stored as they finish, resumable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hone.core import (
    Account,
    BudgetExceeded,
    ConfigError,
    Ledger,
    Task,
    Trajectory,
    new_id,
    stable_int,
    utcnow,
)
from hone.envs import Environment
from hone.models import ChatModel
from hone.store import RunInfo, TrajectoryStore

from ._config import RunConfig
from ._episode import run_episode
from ._writer import StoreWriter

OnTrajectory = Callable[[Trajectory], None]


@dataclass
class RunResult:
    """What a run produced: the trajectories finished in this call and the run's totals.

    `trajectories` holds only episodes run now; on a resumed run, earlier ones are in the
    store. `ledger` is the whole run's spend, earlier sessions included. `skipped` counts
    (task, sample) pairs already stored, and `remaining` those not run (budget or stop).
    """

    run_id: str
    trajectories: list[Trajectory] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    skipped: int = 0
    remaining: int = 0
    stopped_by: str | None = None


class Runner:
    """Runs an environment's tasks with a model, k samples each, `concurrency` at a time.

    Every finished trajectory is written to the store at once; running again with the same
    `run_id` skips what is stored, so a killed run resumes and nothing is duplicated.
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
    ) -> None:
        self.env = env
        self.model = model
        self.config = config or RunConfig()
        self.store = store
        self.env_spec = env_spec or env.name
        self.model_spec = model_spec or model.name
        self.run_id = self.config.run_id or new_id("run-")

    def tasks(self) -> list[Task]:
        c = self.config
        return self.env.tasks(c.split, n=c.n, seed=c.seed)

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
            if self.config.retry_errors:
                self.store.delete(self.run_id, status="error")
        run = RunInfo(
            id=self.run_id,
            env=self.env_spec,
            model=self.model_spec,
            split=self.config.split,
            config=self.config.model_dump(mode="json"),
            status="running",
            created_at=existing.created_at if existing else utcnow(),
        )
        self.store.save_run(run)
        done = self.store.done_keys(self.run_id)
        spent = Ledger.total([t.usage for t in self.store.query(run_id=self.run_id)]) if done else Ledger()
        return done, spent

    def _finish_run(self, status: str, result: RunResult) -> None:
        if self.store is None:
            return
        run = self.store.get_run(self.run_id)
        if run is None:
            return
        run.status = status  # type: ignore[assignment]
        run.updated_at = utcnow()
        run.summary = {**run.summary, "ledger": result.ledger.model_dump(), "remaining": result.remaining}
        self.store.save_run(run)

    async def run(self, tasks: Sequence[Task] | None = None, on_trajectory: OnTrajectory | None = None) -> RunResult:
        """Run every (task, sample) not yet stored for this run id."""
        c = self.config
        tasks = list(tasks) if tasks is not None else self.tasks()
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
                if not account.can_call():
                    result.stopped_by = "budget"
                    return
                task, sample = queue.get_nowait()
                traj = await self._episode(task, sample, account)
                if traj is None:  # refused before its first call: not started, not stored
                    queue.put_nowait((task, sample))
                    result.stopped_by = "budget"
                    return
                if writer is not None:
                    writer.put(traj)
                result.trajectories.append(traj)
                if on_trajectory is not None:
                    on_trajectory(traj)

        workers = [asyncio.create_task(worker()) for _ in range(min(c.concurrency, max(len(todo), 1)))]
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
            result.ledger = account.close()
            self._finish_run(status, result)
        return result

    async def _episode(self, task: Task, sample: int, account: Account) -> Trajectory | None:
        c = self.config
        seed = c.sampling.seed if c.sampling.seed is not None else stable_int(c.seed, task.id, sample)
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
        if traj.error is not None and traj.error.type == BudgetExceeded.kind and not traj.steps:
            return None
        traj.tags = list(c.tags)
        return traj
