"""`RayExecutor`: the Runner's episodes on Ray workers (extra `hone[ray]`).

Each worker is a Ray actor that builds the environment and the model from their specs once
(`make_env(env_spec, **env_args)`, `resolve_model(model_spec)`: its own model client and sandbox
pool) and runs up to `per_worker` episodes at once on its own event loop. The driver (the process
that called the Runner) keeps everything else as in-process runs have it: it hands out (task,
sample) pairs, stores what comes back through the same writer, holds the run's lease, and keeps
the run's one `Account`. So results, resumption and store semantics are the same; only the
budget is enforced between episodes instead of between calls: a worker's episode runs to its
end, the driver counts what it spent (`Account.record_spent`) and hands out no more work once
the budget is spent, so a budget is exceeded by at most the episodes already in flight.

A worker that dies (its process killed, its node gone) loses only the episodes it was running:
they go back to the queue and run on a fresh worker (`retries` times each; then the pair is
stored as an errored trajectory, `WorkerError`, and `--retry-errors` reruns it). Nothing is stored
twice, as the store's (run, task, sample) key is unique.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from hone.core import ConfigError, HoneError, Sampling, Task, Trajectory

from ._config import EpisodeLimits

DEFAULT_WORKERS = 2
DEFAULT_PER_WORKER = 16
DEFAULT_BATCH = 8
ADD_TRIES = 8
"""Attempts at starting a replacement worker (each after a longer pause) before the run stops."""


class _Died(Exception):
    """Worker `index` (`actor`) died under a call: the caller replaces it and tries again."""

    def __init__(self, index: int, actor: Any, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.index, self.actor, self.cause = index, actor, cause


def _ray_died() -> tuple[type[BaseException], ...]:
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

    return (ActorDiedError, ActorUnavailableError, RayActorError)


class WorkerLost(HoneError):
    """A Ray worker died while running an episode; the episode can run again elsewhere."""

    kind = "WorkerError"


@dataclass
class EpisodeJob:
    """One (task, sample) as a worker runs it."""

    task: Task
    sample: int
    sampling: Sampling
    limits: EpisodeLimits
    run_id: str
    split: str | None

    def dumps(self) -> dict[str, Any]:
        return {
            "task": self.task.model_dump(mode="json"),
            "sample": self.sample,
            "sampling": self.sampling.model_dump(mode="json"),
            "limits": self.limits.model_dump(mode="json"),
            "run_id": self.run_id,
            "split": self.split,
        }


class _Worker:
    """The actor's body (wrapped by `ray.remote` when a RayExecutor starts)."""

    def __init__(self, env_spec: str, env_args: dict[str, Any], model_spec: str, model_name: str | None) -> None:
        self.error: str | None = None
        try:
            from hone.envs import make_env
            from hone.models import resolve_model

            self.env = make_env(env_spec, **env_args)
            self.model = resolve_model(model_spec)
            if model_name is not None:
                self.model.name = model_name
        except Exception as exc:  # reported by ready(): the driver refuses the run in one line
            self.error = f"{type(exc).__name__}: {exc}"

    async def ready(self) -> dict[str, Any]:
        import ray

        node = ray.get_runtime_context().get_node_id()
        return {"pid": os.getpid(), "host": socket.gethostname(), "node": node, "error": self.error}

    async def run(self, job: dict[str, Any]) -> str:
        from hone.core import Account

        from ._episode import run_episode

        traj = await run_episode(
            self.env.clone(),
            self.model,
            Task.model_validate(job["task"]),
            sample=job["sample"],
            sampling=Sampling.model_validate(job["sampling"]),
            limits=EpisodeLimits.model_validate(job["limits"]),
            account=Account(),  # the run's budget is the driver's
            run_id=job["run_id"],
            split=job["split"],
        )
        return traj.model_dump_json()

    async def run_many(self, jobs: list[dict[str, Any]]) -> list[str]:
        """Several episodes in one call (the driver's micro-batch), run at once; in the order given."""
        return list(await asyncio.gather(*(self.run(job) for job in jobs)))

    async def apply(self, fn: Any, *args: Any) -> Any:
        """`await fn(env, model, *args)` with this worker's environment and model: how a higher layer (a
        test-time strategy solving one task) runs its own work here. `fn` travels pickled by reference."""
        return await fn(self.env, self.model, *args)


@dataclass
class RemoteModel:
    """The model as the driver sees it when a `RayExecutor` runs every episode: a name only (the
    workers hold the weights or clients). Calling it here is a bug, not a fallback."""

    name: str

    async def generate(self, messages: Any, tools: Any = None, sampling: Any = None) -> Any:
        raise HoneError(f"{self.name} runs on Ray workers; the driver holds no model to call")


def parse_executor(spec: str | None) -> tuple[str, str | None]:
    """`local`, `ray` or `ray:ADDRESS` -> (kind, address); anything else is a one-line `ConfigError`."""
    if spec in (None, "", "local"):
        return "local", None
    assert spec is not None
    kind, _, address = spec.partition(":")
    if kind != "ray":
        raise ConfigError(f"--executor {spec!r}: use local, ray (a local Ray cluster) or ray:HOST:PORT")
    return "ray", address or None


def _reachable(address: str) -> None:
    """Refuse an address nothing listens on, at once (ray.init would retry for a long time)."""
    if address == "auto":
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--executor ray:{address}: give the cluster's HOST:PORT (its GCS address), or `auto`")
    try:
        socket.create_connection((host.removeprefix("ray://") or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}; start one with "
            f"`ray start --head` or leave the address out for a local one"
        ) from exc


@dataclass
class RayExecutor:
    """Runs episodes on `workers` Ray actors, `per_worker` at once each.

    `address` None starts a local Ray cluster (stopped by `close`); else connects to a running one
    (`auto`, or the head's `HOST:PORT`). The environment and model are rebuilt in every worker from
    `env_spec` (with `env_args`) and `model_spec`; models are usually HTTP endpoints (vLLM, an
    OpenAI-compatible server), so workers on other machines reach them too.
    """

    env_spec: str
    model_spec: str
    env_args: dict[str, Any] = field(default_factory=dict)
    address: str | None = None
    workers: int = DEFAULT_WORKERS
    per_worker: int = DEFAULT_PER_WORKER
    retries: int = 2
    num_cpus: int | None = None
    model_name: str | None = None  # the name the workers' model records in trajectories (default: its own)
    batch: int = DEFAULT_BATCH  # episodes sent to a worker in one call, at most
    lost: int = 0  # worker deaths seen
    retried: int = 0  # episodes sent again after their worker died
    _actors: list[Any] = field(default_factory=list)
    _load: list[int] = field(default_factory=list)
    _queue: list[tuple[dict[str, Any], asyncio.Future[str]]] = field(default_factory=list)
    _info: list[dict[str, Any]] = field(default_factory=list)
    _started_ray: bool = False
    _remote: Any = None

    @property
    def capacity(self) -> int:
        """Episodes in flight at once."""
        return self.workers * self.per_worker

    def check(self) -> None:
        """Refuse a setup mistake in one line, cheaply, before anything starts: Ray missing, bad
        counts, a cluster address nothing listens on."""
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise ConfigError("--executor ray needs Ray: pip install 'hone[ray]'") from exc
        if self.batch < 1:
            raise ConfigError(f"Ray batch ({self.batch}) must be >= 1")
        if self.workers < 1 or self.per_worker < 1:
            raise ConfigError(f"Ray workers ({self.workers}) and episodes per worker ({self.per_worker}) must be >= 1")
        if self.address is not None:
            _reachable(self.address)

    def portable(self, obj: Any, what: str) -> None:
        """Refuse, in one line and before any work, what cannot travel to a worker (a strategy holding
        an open client or a lock): Ray sends it pickled."""
        from ray import cloudpickle

        try:
            cloudpickle.dumps(obj)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise ConfigError(
                f"{what} cannot be sent to Ray workers ({type(exc).__name__}: {exc}); "
                "give it as a spec or leave --executor out"
            ) from exc

    async def start(self) -> None:
        """Connect (or start a local cluster) and start the workers; a worker that cannot build the
        environment or model refuses the run in one line, before any episode."""
        self.check()
        import ray

        if not ray.is_initialized():
            ray.init(
                address=self.address,
                num_cpus=self.num_cpus if self.address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            self._started_ray = True
        self._remote = ray.remote(num_cpus=0, max_restarts=0)(_Worker)
        for _ in range(self.workers):
            await self._add_worker()

    async def _add_worker(self) -> int:
        """Start one more worker; returns its index. A worker placed on a node that is dying is
        started again elsewhere (Ray may not know yet that the node is gone)."""
        from ray.exceptions import RayActorError

        for attempt in range(ADD_TRIES):
            # SPREAD: workers go to different nodes where there are several, so losing a node
            # loses only its share of the episodes in flight.
            actor = self._remote.options(max_concurrency=self.per_worker, scheduling_strategy="SPREAD").remote(
                self.env_spec, self.env_args, self.model_spec, self.model_name
            )
            try:
                info = await actor.ready.remote()
            except RayActorError:
                if attempt == ADD_TRIES - 1:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            if info["error"]:
                raise ConfigError(
                    f"a Ray worker on {info['host']} cannot build {self.env_spec!r} / {self.model_spec!r}: "
                    f"{info['error']}; the environment's module must be importable there"
                )
            self._actors.append(actor)
            self._load.append(0)
            self._info.append(info)
            return len(self._actors) - 1
        raise AssertionError("unreachable")

    def pids(self) -> list[int]:
        """The workers' process ids (for fault tests)."""
        return [int(info["pid"]) for info in self.where()]

    def where(self) -> list[dict[str, Any]]:
        """Each live worker's pid, host and Ray node id (as each reported when it started: asking a busy
        worker would wait behind its calls)."""
        return [info for a, info in zip(self._actors, self._info, strict=True) if a is not None]

    async def episode(self, job: EpisodeJob) -> Trajectory:
        """Run `job` on the least loaded worker; a dead worker is replaced and the job retried.

        Episodes handed out in the same turn of the event loop travel together, up to `batch` per
        call (one Ray call costs about a millisecond of CPU on each side; `benchmarks/ray_scaling.py`)."""
        data = await self.call("run", job.dumps())
        return Trajectory.model_validate_json(data)

    async def apply(self, fn: Any, *args: Any) -> Any:
        """`await fn(env, model, *args)` on a worker, with its environment and model (`fn` a module-level
        async function, `args` picklable); a dead worker is replaced and the call made again."""
        return await self.call("apply", fn, *args)

    async def call(self, method: str, *args: Any) -> Any:
        """`method(*args)` on the least loaded worker; a worker that dies is replaced and the call
        made again (`retries` times; then `WorkerLost`)."""
        for attempt in range(self.retries + 1):
            try:
                if method == "run" and self.batch > 1:
                    return await self._batched(args[0])
                i, actor = await self._pick(1)
                try:
                    return await getattr(actor, method).remote(*args)
                except _ray_died() as exc:
                    raise _Died(i, actor, exc) from exc
                finally:
                    self._load[i] -= 1
            except _Died as died:
                if self._actors[died.index] is died.actor:  # the first to notice replaces it
                    self._actors[died.index] = None
                    self.lost += 1
                    await self._add_worker()
                if attempt == self.retries:
                    why = str(died.cause).strip().splitlines()[0] if str(died.cause).strip() else "died"
                    raise WorkerLost(f"its Ray worker died {attempt + 1} times: {why}") from died.cause
                self.retried += 1
        raise AssertionError("unreachable")

    async def _pick(self, n: int) -> tuple[int, Any]:
        """The least loaded live worker (one started if none is left), its load raised by `n`."""
        live = [i for i, a in enumerate(self._actors) if a is not None]
        i = min(live, key=lambda j: self._load[j]) if live else await self._add_worker()
        self._load[i] += n
        return i, self._actors[i]

    async def _batched(self, job: dict[str, Any]) -> str:
        """`run(job)` in the next micro-batch: the jobs queued in this turn of the event loop."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append((job, done))
        if len(self._queue) == 1:  # the first of this turn sends them all, once the turn is over
            asyncio.get_running_loop().create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        queued, self._queue = self._queue, []
        sends = []
        size = min(self.batch, self.per_worker)
        for start in range(0, len(queued), size):
            chunk = queued[start : start + size]
            i, actor = await self._pick(len(chunk))
            sends.append(self._send(i, actor, chunk))
        await asyncio.gather(*sends)

    async def _send(self, i: int, actor: Any, chunk: list[tuple[dict[str, Any], asyncio.Future[str]]]) -> None:
        try:
            results = await actor.run_many.remote([job for job, _ in chunk])
        except _ray_died() as exc:
            for _, done in chunk:
                done.set_exception(_Died(i, actor, exc))
        except Exception as exc:  # an episode that raised: each of the chunk's callers sees it, as unbatched
            for _, done in chunk:
                done.set_exception(exc)
        else:
            for (_, done), data in zip(chunk, results, strict=True):
                done.set_result(data)
        finally:
            self._load[i] -= len(chunk)

    async def close(self) -> None:
        import ray

        for actor in self._actors:
            if actor is not None:
                ray.kill(actor)
        self._actors, self._load, self._info = [], [], []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
