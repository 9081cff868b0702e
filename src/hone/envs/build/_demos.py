"""Demonstrations for built environments (`BuiltEnv.demonstrations`, so `toolgen` and every built env).

A scripted policy that knows each task's verified reference plays it through a real episode of
the environment (`clone`, `reset`, `step`, `aclose`, `grade`): the prompt, the tool documents,
every observation and the hidden feedback are the environment's own; only the assistant turns
are written here. They are native tool calls (`ToolCall` with `arguments` and `arguments_raw`),
a question naming the missing value on level 5, a plain reply on level 6 and `Answer: <value>`,
rendered from the tool's real result, for reads.

Not every demonstration is perfect, so a model trained on them has room to improve from
feedback. Each task gets a style (`DEMONSTRATION_MIX`): `clean` (the reference path), `recovered`
(one realistic mistake the environment answers with an error or the user with a request to be
specific, then the fix: it still completes the task, with a lower tool-call score) or `flawed`
(one mistake that is not repaired: a wrong value, a distractor, a skipped call, a guessed value,
a needless call, a wrong answer; the grader decides, and it almost always fails).
`meta["style"]` and `meta["flaw"]` say which.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from types import MappingProxyType

from hone.core import (
    ConfigError,
    EnvError,
    Ledger,
    ModelCall,
    Step,
    Task,
    Trajectory,
    hidden_reward,
    stable_int,
    utcnow,
)

from .._demos import DEMONSTRATION_MODEL
from ._demoplay import DemoEnv, Player
from ._spec import BuiltTask

STYLES = ("clean", "recovered", "flawed")
DEMONSTRATION_MIX: Mapping[str, float] = MappingProxyType({"clean": 0.6, "recovered": 0.2, "flawed": 0.2})
"""Default share of each style. Level 6 has no mistake to recover from (any call fails it): its
`recovered` draws are played `clean`."""

RECOVERIES: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {
        1: ("bad_argument",),
        2: ("distractor_first", "bad_argument"),
        3: ("bad_argument",),
        4: ("bad_argument",),
        5: ("vague_question", "call_without"),
    }
)
"""Recoverable mistakes by level: `bad_argument` (a renamed, missing, stringified or off-enum argument,
which the schema check refuses, or a mangled id a read refuses), `distractor_first` (a tool that cannot
serve the request, then the right one), `vague_question` (the user asks to be specific), `call_without`
(the call without the value the user holds: the schema check names it)."""

FLAWS: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {
        1: ("wrong_value", "wrong_answer", "skipped_call"),
        2: ("wrong_tool", "wrong_value", "wrong_answer"),
        3: ("skipped_call", "wrong_value"),
        4: ("skipped_call", "wrong_value", "wrong_answer"),
        5: ("guessed",),
        6: ("needless_call",),
    }
)
"""Unrepaired mistakes by level (one is drawn among those that apply to the task; `wrong_answer` needs
an answer, `skipped_call` on level 1 a write)."""

DEFAULT_CONCURRENCY = 16
"""Episodes recorded at once (each holds one sandboxed interpreter)."""
MAX_TURNS = 12


def check_mix(mix: Mapping[str, float] | None) -> dict[str, float]:
    """`mix` (default `DEMONSTRATION_MIX`) normalised to shares of `STYLES`; `ConfigError` if invalid."""
    raw = dict(DEMONSTRATION_MIX if mix is None else mix)
    unknown = sorted(set(raw) - set(STYLES))
    if unknown:
        raise ConfigError(f"unknown demonstration style {unknown[0]!r}; styles: {', '.join(STYLES)}")
    if any(share < 0 for share in raw.values()) or sum(raw.values()) <= 0:
        raise ConfigError(f"demonstration mix {raw!r}: shares must be non-negative with a positive sum")
    total = sum(raw.values())
    return {style: raw.get(style, 0.0) / total for style in STYLES}


async def demonstrations(
    env: DemoEnv,
    n: int,
    *,
    seed: int = 0,
    split: str = "train",
    mix: Mapping[str, float] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Trajectory]:
    """`n` graded demonstrations on the tasks of `split`, in the order of `env.tasks(split, seed=seed)`.

    Past the end of the split the tasks are dealt again with another seed and drawn styles, so
    `n` may exceed the split. Deterministic for `seed` and `split` (apart from trajectory ids and
    timestamps); the list for a smaller `n` is a prefix of the list for a larger one. Held-out
    scenarios' tasks come only with `split="heldout"`.
    """
    if n < 0:
        raise ConfigError(f"{env.name}: demonstrations n={n} must be at least 0")
    if concurrency < 1:
        raise ConfigError(f"{env.name}: demonstrations concurrency={concurrency} must be at least 1")
    shares = check_mix(mix)
    chosen: list[tuple[Task, random.Random]] = []
    deal = 0
    while len(chosen) < n:
        deal_seed = seed if deal == 0 else stable_int("built-demo-deal", seed, deal)
        pool = [t for t in env.tasks(split, seed=deal_seed) if split == "heldout" or not t.meta.get("heldout")]
        if not pool:
            raise ConfigError(f"{env.name}: split {split!r} has no tasks to demonstrate")
        for task in pool[: n - len(chosen)]:
            chosen.append((task, random.Random(stable_int("built-demo", env.name, split, seed, deal, task.id))))
        deal += 1
    gate = asyncio.Semaphore(concurrency)

    async def one(task: Task, rng: random.Random) -> Trajectory:
        async with gate:
            return await record(env, task, rng, shares, split)

    return list(await asyncio.gather(*(one(task, rng) for task, rng in chosen)))


def draw(task: BuiltTask, rng: random.Random, shares: Mapping[str, float]) -> tuple[str, str | None]:
    """The style and mistake (None when clean) of one demonstration."""
    roll, total, style = rng.random(), 0.0, "clean"
    for name in STYLES:
        if shares.get(name, 0.0) > 0:
            style, total = name, total + shares[name]
            if roll < total:
                break
    options: tuple[str, ...] = ()
    if style == "recovered":
        options = RECOVERIES.get(task.level, ())
    elif style == "flawed":
        options = tuple(f for f in FLAWS[task.level] if _applies(task, f))
    if not options:
        return "clean", None
    return style, rng.choice(options)


def _applies(task: BuiltTask, flaw: str) -> bool:
    if flaw == "wrong_answer":
        return task.answer is not None
    if flaw == "skipped_call" and task.level == 1:
        return task.answer is None
    return True


async def record(
    env: DemoEnv, task: Task, rng: random.Random, shares: Mapping[str, float], split: str | None
) -> Trajectory:
    """One demonstration of `task`, played through a fresh episode of `env` and graded by it.

    Recorded as `hone.rollout` records an episode: the env's reset messages and tools, one step per
    assistant turn with the env's observations, `aclose` before `grade`, reward from the hidden feedback.
    """
    from hone.models import request_digest  # deferred: hone.models pulls in HTTP clients envs never need

    built = env.built_task(task.id)
    style, flaw = draw(built, rng, shares)
    script = Player(env, built, rng, flaw).script()
    episode = env.clone()
    traj = Trajectory(
        task_id=task.id,
        env=env.name,
        env_version=env.version,
        split=split,
        subset=task.subset,
        model=DEMONSTRATION_MODEL,
        strategy=DEMONSTRATION_MODEL,
        meta={"style": style, "flaw": flaw},
    )
    try:
        reset = await episode.reset(task)
        traj.prompt, traj.tools = list(reset.messages), list(reset.tools)
        history = list(reset.messages)
        message = next(script)
        for turn in range(MAX_TURNS):
            call = ModelCall(
                model=DEMONSTRATION_MODEL,
                request_digest=request_digest(DEMONSTRATION_MODEL, history, reset.tools, None),
                message=message,
                finish_reason="tool_calls" if message.tool_calls else "stop",
            )
            result = await episode.step(message)
            step = Step(
                call=call,
                observations=list(result.observations),
                feedback=[f.model_copy(update={"step_index": turn}) for f in result.feedback],
            )
            if result.tool_errors:
                step.error = result.tool_errors[0].model_copy(update={"step_index": turn})
            traj.steps.append(step)
            history += [message, *result.observations]
            if result.done:
                traj.answer, traj.stop_reason = result.answer, "done"
                break
            message = script.send(result)
        else:
            raise EnvError(f"{env.name}: demonstration for {task.id!r} ran past {MAX_TURNS} turns")
    except StopIteration:
        raise EnvError(f"{env.name}: demonstration for {task.id!r} did not end the episode") from None
    finally:
        await episode.aclose()
    traj.usage = Ledger(calls=len(traj.steps), tool_calls=traj.tool_call_count, env_steps=len(traj.steps))
    traj.feedback = await episode.grade(traj)
    traj.reward = hidden_reward(traj.feedback)
    traj.finished_at = utcnow()
    return traj
