"""GRPO through TRL's `GRPOTrainer`, with hone's multi-turn tool episodes as the rollouts.

TRL generates single turns itself; for multi-turn tool use it accepts a `rollout_func`.
hone's is `run_episode` on the environment with an `HFLocal` view of the policy being
trained: every turn's prompt and completion token ids are chained into one completion,
the model's tokens marked 1 in `env_mask` (trained) and tool results and template tokens
between turns 0 (masked from the loss). The reward is hone's (`Composite` or any
`Trajectory -> float`), so the trainer never re-renders a conversation it did not see.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hone.core import ConfigError, Sampling, Task, Trajectory
from hone.envs import Environment, make_env
from hone.learn.data import reward_of
from hone.rollout import EpisodeLimits, run_episode

from ._common import FitReport, TrainArgs, fit, quiet_datasets, trl_config
from ._grpo_pool import Batch, GenerationPool

RewardFn = Callable[[Trajectory], float]


def _default_reward(traj: Trajectory) -> float:
    value = reward_of(traj)
    return 0.0 if value is None else value  # an ungraded (failed) episode earns nothing


@dataclass
class Rollouts:
    """Every trajectory GRPO sampled, in order, for monitors and the store."""

    trajectories: list[Trajectory] = field(default_factory=list)
    cut: int = 0
    """Episodes trained only up to a turn whose prompt did not extend the turns before it (`episode_tokens`)."""
    lags: list[int] = field(default_factory=list)
    """With a `GenerationPool`: per batch, optimizer steps between the weights that sampled it and the trainer's."""
    regenerated: int = 0
    """Batches generated ahead that were dropped: older than `max_lag` when wanted, or not the prompts TRL asked."""


def episode_tokens(traj: Trajectory, *, strict: bool = True) -> tuple[list[int], list[int], list[int], list[float]]:
    """`(prompt_ids, completion_ids, env_mask, logprobs)` of one token-exact trajectory.

    The completion is everything after the first prompt: each turn's generated tokens
    (mask 1, their sampling log-probabilities) and the tool results and template tokens
    between turns (mask 0, log-probability 0). When a turn's prompt does not extend the previous
    prompt + completion (a re-rendered history: see `hone.learn.data.check_tokenization`), raises
    `ConfigError`, or with `strict=False` returns the turns before it. `HFLocal` keeps generated ids, so
    this is left to turns the template writes back differently: a call written as no call object
    (`<tool_call> here.`) or cut at the token limit (54 of 320 episodes of micro-tools' first GRPO
    iteration on toolgen, sampled without the grammar).
    """
    if not traj.steps:
        raise ConfigError(f"GRPO: trajectory {traj.id} has no model turn ({traj.error.message if traj.error else ''})")
    calls = [s.call for s in traj.steps]
    if any(c.prompt_token_ids is None or c.completion_token_ids is None for c in calls):
        raise ConfigError("GRPO: the model returned no token ids; rollouts need a local model (HFLocal)")
    prompt = list(calls[0].prompt_token_ids or [])
    seen = list(prompt)
    completion: list[int] = []
    mask: list[int] = []
    logprobs: list[float] = []
    for i, call in enumerate(calls):
        ids = list(call.prompt_token_ids or [])
        if ids[: len(seen)] != seen:
            if not strict:
                break
            raise ConfigError(
                f"GRPO: trajectory {traj.id} turn {i}: the prompt does not extend the previous turn's tokens "
                "(the chat template re-renders history differently); run hone.learn.data.check_tokenization"
            )
        between = ids[len(seen) :]
        out = list(call.completion_token_ids or [])
        lps = list(call.completion_logprobs or [0.0] * len(out))
        completion += between + out
        mask += [0] * len(between) + [1] * len(out)
        logprobs += [0.0] * len(between) + lps
        seen = ids + out
    return prompt, completion, mask, logprobs


class HoneRollout:
    """A TRL `rollout_func`: runs one hone episode per prompt with the policy being trained."""

    def __init__(
        self,
        env: Environment,
        tasks: Sequence[Task],
        tokenizer: Any,
        *,
        reward: RewardFn,
        temperature: float,
        max_new_tokens: int,
        limits: EpisodeLimits,
        seed: int,
        pool: GenerationPool | None = None,
    ) -> None:
        self.env = env
        self.by_prompt = {self.key(env_prompt(env, t)): t for t in tasks}
        self.order = [self.key(env_prompt(env, t)) for t in tasks] if pool is not None else []
        self.pool = pool  # TRL's order is the dataset's with `shuffle_dataset=False`: the next batch is known
        self._ahead: Batch | None = None
        self._next = 0  # where in `order` the next batch starts
        self.tokenizer = tokenizer
        self.reward = reward
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.limits = limits
        self.samples = itertools.count(seed * 1_000_003)
        self.record = Rollouts()
        self._chat: Any = None

    @staticmethod
    def key(prompt: Sequence[dict[str, Any]]) -> str:
        return json.dumps([[m.get("role"), m.get("content")] for m in prompt])

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from hone.models import HFLocal

        if self._chat is None:  # one engine over the live policy; it notices weight updates
            model = trainer.accelerator.unwrap_model(trainer.model)
            self._chat = HFLocal(model, self.tokenizer, max_new_tokens=self.max_new_tokens, name="policy")
        keys = [self.key(p) for p in prompts]
        tasks = [self.by_prompt[k] for k in keys]
        local = self.pool is None
        trajectories = asyncio.run(self._episodes(tasks)) if local else self._from_pool(keys, trainer)
        self.record.trajectories += trajectories
        out: dict[str, Any] = {
            "prompt_ids": [],
            "completion_ids": [],
            "logprobs": [],
            "env_mask": [],
            "hone_reward": [],
        }
        for traj in trajectories:
            prompt, completion, mask, logprobs = episode_tokens(traj, strict=False)
            self.record.cut += len(completion) < _length(traj, len(prompt))
            out["prompt_ids"].append(prompt)
            out["completion_ids"].append(completion)
            out["env_mask"].append(mask)
            out["logprobs"].append(logprobs)
            out["hone_reward"].append(float(self.reward(traj)))
        return out

    def _sampling(self, n: int) -> list[Sampling]:
        return [Sampling(temperature=self.temperature, logprobs=True, seed=next(self.samples)) for _ in range(n)]

    def _from_pool(self, keys: list[str], trainer: Any) -> list[Trajectory]:
        """This batch from the generation pool (generated ahead when it could be), then the next batch started
        with the weights of now, to be generated while the trainer trains on this one."""
        assert self.pool is not None
        pool, now = self.pool, int(trainer.state.global_step)
        if pool.version < now:
            pool.publish(trainer.accelerator.unwrap_model(trainer.model), now)
        batch, self._ahead = self._ahead, None
        if batch is not None and (batch.keys != keys or now - batch.version > pool.max_lag):
            pool.collect(batch)  # wasted: counted, never trained on
            self.record.regenerated += 1
            batch = None
        if batch is None:
            batch = pool.submit([self.by_prompt[k] for k in keys], self._sampling(len(keys)), keys, self.limits)
        trajectories, version = pool.collect(batch)
        self.record.lags.append(now - version)
        if pool.max_lag > 0:
            ahead = self._next_keys(keys)
            tasks = [self.by_prompt[k] for k in ahead]
            self._ahead = pool.submit(tasks, self._sampling(len(ahead)), ahead, self.limits)
        return trajectories

    def _next_keys(self, keys: list[str]) -> list[str]:
        """The prompts TRL asks for next without shuffling: the following tasks in dataset order, each
        repeated as often as in `keys`; a batch that would run past the end starts again at the first
        (TRL's sampler drops an incomplete last batch). A wrong guess costs one batch, generated again."""
        unique = list(dict.fromkeys(keys))
        repeat = len(keys) // len(unique)
        here = (
            self._next if self.order[self._next : self._next + len(unique)] == unique else self.order.index(unique[0])
        )
        start = here + len(unique)
        if start + len(unique) > len(self.order):
            start = 0
        self._next = start
        return [k for k in self.order[start : start + len(unique)] for _ in range(repeat)]

    async def _episodes(self, tasks: list[Task]) -> list[Trajectory]:
        sampling = self._sampling(len(tasks))
        return list(
            await asyncio.gather(
                *(
                    run_episode(self.env.clone(), self._chat, t, sampling=s, limits=self.limits, split="train")
                    for t, s in zip(tasks, sampling, strict=True)
                )
            )
        )


def _length(traj: Trajectory, prompt: int) -> int:
    """The completion length `episode_tokens` gives `traj` when every turn extends the one before."""
    last = traj.steps[-1].call
    return len(last.prompt_token_ids or []) + len(last.completion_token_ids or []) - prompt


def env_prompt(env: Environment, task: Task) -> list[dict[str, Any]]:
    """The opening messages of `task` as OpenAI-style dicts (what the GRPO dataset holds)."""
    opening = asyncio.run(env.clone().reset(task))
    return [m.to_openai() for m in opening.messages]


def _hone_reward(prompts: list[Any], completions: list[Any], hone_reward: list[float], **_: Any) -> list[float | None]:
    return list(hone_reward)


def train_grpo(
    model: Any,
    tokenizer: Any,
    env: Environment | str,
    tasks: Sequence[Task],
    args: TrainArgs | None = None,
    *,
    num_generations: int = 4,
    reward: RewardFn | None = None,
    temperature: float = 1.0,
    beta: float = 0.0,
    max_new_tokens: int = 160,
    max_completion_length: int = 768,
    limits: EpisodeLimits | None = None,
    pool: GenerationPool | None = None,
) -> tuple[FitReport, Rollouts]:
    """Train `model` in place with GRPO on `tasks` of `env`, rollouts being hone episodes.

    Each step samples `args.batch_size` episodes (`args.batch_size / num_generations`
    prompts, `num_generations` episodes each), scores them with `reward` (default: the
    trajectory's reward, else hidden grading), and takes one policy-gradient step with
    group-relative advantages; tool results are masked from the loss. `beta` > 0 adds TRL's
    KL penalty to a frozen copy. Returns the training report and every sampled trajectory.
    `pool` (a `GenerationPool`, started here and closed at the end) generates the episodes on Ray
    workers, up to `pool.max_lag` optimizer steps ahead of the trainer; tasks are then taken in
    order (no shuffling), so the next batch can be generated before TRL asks for it.
    """
    from datasets import Dataset

    args = args or TrainArgs()
    if num_generations < 2:
        raise ConfigError(f"GRPO: num_generations={num_generations} must be at least 2 (advantages are relative)")
    if args.batch_size % num_generations:
        raise ConfigError(f"GRPO: batch_size={args.batch_size} must be a multiple of num_generations={num_generations}")
    if not tasks:
        raise ConfigError("GRPO: no tasks to train on")
    env_obj = make_env(env) if isinstance(env, str) else env
    rollout = HoneRollout(
        env_obj,
        tasks,
        tokenizer,
        reward=reward or _default_reward,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        limits=limits or EpisodeLimits(),
        seed=args.seed,
        pool=pool,
    )
    dataset = Dataset.from_list([{"prompt": env_prompt(env_obj, t)} for t in tasks])
    if pool is not None:
        pool.start()  # a worker that cannot load the policy refuses the run before any step
    try:
        return _fit_grpo(model, tokenizer, dataset, rollout, args, num_generations, temperature, beta,
                         max_completion_length)  # fmt: skip
    finally:
        if pool is not None:
            pool.close()


def _fit_grpo(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    rollout: HoneRollout,
    args: TrainArgs,
    num_generations: int,
    temperature: float,
    beta: float,
    max_completion_length: int,
) -> tuple[FitReport, Rollouts]:
    from trl import GRPOConfig, GRPOTrainer  # type: ignore[attr-defined]

    with tempfile.TemporaryDirectory(prefix="hone-grpo-") as scratch, quiet_datasets(args.progress):
        config = trl_config(
            GRPOConfig,
            args,
            output_dir=scratch,
            num_generations=num_generations,
            temperature=temperature,
            beta=beta,
            max_completion_length=max_completion_length,
            **({"shuffle_dataset": False} if rollout.pool is not None else {}),
        )
        with warnings.catch_warnings():  # hone pins the TRL versions whose rollout_func it speaks
            warnings.filterwarnings("ignore", message=".*rollout_func.*experimental", category=UserWarning)
            trainer = GRPOTrainer(
                model=model,
                reward_funcs=[_hone_reward],
                args=config,
                train_dataset=dataset,
                processing_class=tokenizer,
                rollout_func=rollout,
            )
        report = fit(trainer, args, rows=len(dataset))
    return report, rollout.record
