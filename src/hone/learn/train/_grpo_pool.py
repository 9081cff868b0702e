"""GRPO's generation on Ray workers, apart from the trainer (extra `hone[ray]`), with a bounded lag.

verl, SkyRL and OpenRLHF place rollout workers and training workers in separate Ray groups and let
generation run ahead of training by a bounded number of policy versions ("one-step off-policy" in
verl). hone does the same with TRL's `GRPOTrainer` kept as it is: its `rollout_func` (`HoneRollout`)
hands episodes to a `GenerationPool` of Ray actors, each holding an `HFLocal` copy of the policy;
after every optimizer step the trainer publishes its weights to Ray's object store with their version
(the step count) and each actor loads a newer version before its next batch. While the trainer takes
step t on batch t, the pool already generates batch t + 1 with the weights of step t (`max_lag` >= 1),
so generation and training overlap; a batch older than `max_lag` versions when the trainer wants it
is dropped and generated again. Every batch's lag is recorded (`Rollouts.lags`), and every
trajectory carries the policy version that sampled it (`meta["policy_version"]`).

TRL's own pieces here: `rollout_func` (custom multi-turn rollouts, token ids and sampling logprobs),
`vllm_mode="server"` (generation on other GPUs through a vLLM server, weights synced every step) and
`experimental.async_grpo` (bounded staleness, but tied to a vLLM server and its NCCL weight
transfer). None of them runs on Ray or with a Hugging Face model as the generator, and TRL applies its
truncated importance-sampling correction only with vLLM: with this pool the loss treats a lagged
batch as on-policy, which is why the lag is bounded (default 1) and recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hone.core import ConfigError, Sampling, Task, Trajectory
from hone.rollout import EpisodeLimits


class _Generator:
    """One generation actor: the environment, and the policy as an `HFLocal` over its own copy."""

    def __init__(self, env_spec: str, env_args: dict[str, Any], checkpoint: str, max_new_tokens: int) -> None:
        self.error: str | None = None
        self.version = -1
        try:
            from hone.envs import make_env
            from hone.models import HFLocal

            self.env = make_env(env_spec, **env_args)
            self.chat = HFLocal(checkpoint, max_new_tokens=max_new_tokens, name="policy")
        except Exception as exc:  # reported by ready(): refused in one line before training starts
            self.error = f"{type(exc).__name__}: {exc}"

    def ready(self) -> str | None:
        return self.error

    async def generate(
        self, weights: list[Any], version: int, jobs: list[dict[str, Any]], limits: dict[str, Any]
    ) -> tuple[int, list[str]]:
        """Load `weights` (a one-item list holding an object ref, so Ray does not fetch it unless needed)
        when newer than the copy here, then run `jobs` (task, sampling) at once; returns the version used
        and the trajectories as JSON."""
        import ray

        from hone.rollout import run_episode

        if version > self.version:
            state = ray.get(weights[0])
            self.chat.model.load_state_dict(state)
            self.version = version
        bounds = EpisodeLimits.model_validate(limits)
        done = await asyncio.gather(
            *(
                run_episode(
                    self.env.clone(),
                    self.chat,
                    Task.model_validate(job["task"]),
                    sampling=Sampling.model_validate(job["sampling"]),
                    limits=bounds,
                    split="train",
                )
                for job in jobs
            )
        )
        return self.version, [t.model_dump_json() for t in done]


@dataclass
class Batch:
    """Episodes handed to the pool: their tasks' keys, and what will come back."""

    keys: list[str]
    refs: list[Any]
    version: int


@dataclass
class GenerationPool:
    """`workers` Ray actors that generate GRPO's episodes from `checkpoint`'s policy, updated by `publish`.

    `address` None starts a local Ray cluster (stopped by `close`), else connects to a running one.
    `max_lag` bounds how many optimizer steps a batch may lag the trainer (0: no generation ahead).
    """

    env_spec: str
    checkpoint: Path
    env_args: dict[str, Any] = field(default_factory=dict)
    workers: int = 2
    max_lag: int = 1
    max_new_tokens: int = 160
    address: str | None = None
    version: int = -1
    _actors: list[Any] = field(default_factory=list)
    _weights: Any = None
    _started_ray: bool = False

    def start(self) -> None:
        """Start the actors; one that cannot build the environment or load the policy refuses the run."""
        from hone.rollout._ray import RayExecutor

        if self.max_lag < 0:
            raise ConfigError(f"GRPO: max_lag={self.max_lag} must be >= 0")
        RayExecutor(self.env_spec, "", address=self.address, workers=self.workers).check()
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            self._started_ray = True
        remote = ray.remote(num_cpus=0, max_restarts=0)(_Generator)
        self._actors = [
            remote.options(scheduling_strategy="SPREAD", max_concurrency=1).remote(  # one batch at a time: one version
                self.env_spec, self.env_args, str(self.checkpoint.resolve()), self.max_new_tokens
            )
            for _ in range(self.workers)
        ]
        for error in ray.get([a.ready.remote() for a in self._actors]):
            if error:
                self.close()
                raise ConfigError(f"GRPO: a generation worker cannot start ({error})")

    def publish(self, model: Any, version: int) -> None:
        """Make `model`'s weights (after `version` optimizer steps) the ones the next batches use."""
        import ray

        state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
        self._weights, self.version = ray.put(state), version

    def submit(
        self, tasks: Sequence[Task], sampling: Sequence[Sampling], keys: list[str], limits: EpisodeLimits
    ) -> Batch:
        """Start generating one episode per (task, sampling), split over the actors, with the published weights."""
        jobs = [
            {"task": t.model_dump(mode="json"), "sampling": s.model_dump(mode="json")}
            for t, s in zip(tasks, sampling, strict=True)
        ]
        share = -(-len(jobs) // len(self._actors))
        bounds = limits.model_dump(mode="json")
        refs = [
            actor.generate.remote([self._weights], self.version, jobs[i * share : (i + 1) * share], bounds)
            for i, actor in enumerate(self._actors)
            if jobs[i * share : (i + 1) * share]
        ]
        return Batch(keys, refs, self.version)

    def collect(self, batch: Batch) -> tuple[list[Trajectory], int]:
        """The batch's trajectories in the order submitted (each with `meta["policy_version"]`), and the
        oldest version among them."""
        import ray

        out: list[Trajectory] = []
        oldest = batch.version
        for version, trajectories in ray.get(batch.refs):
            oldest = min(oldest, version)
            for data in trajectories:
                traj = Trajectory.model_validate_json(data)
                traj.meta["policy_version"] = version
                out.append(traj)
        return out, oldest

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
