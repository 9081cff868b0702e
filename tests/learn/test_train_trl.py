"""hone.learn.train: one SFT, DPO and GRPO step through TRL on a tiny random micro model (CPU)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("trl")
pytest.importorskip("torch")

import torch
from _learn_factory import make, tool_turn

from hone.core import ConfigError, Message, Sampling
from hone.envs import make_env
from hone.learn.data import preference_pairs, sft_data
from hone.learn.micro import build_tokenizer, new_micro_model
from hone.learn.micro._tokenizer import IM_END, IM_START
from hone.learn.train import TrainArgs, episode_tokens, token_rows, train_dpo, train_grpo, train_sft
from hone.models import HFLocal, resolve_model
from hone.rollout import run_episode

TINY = {"num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4}
TINY["num_key_value_heads"] = 4


def _tiny() -> tuple[Any, Any]:
    tokenizer = build_tokenizer()
    return tokenizer, new_micro_model(tokenizer, 0, **TINY)


def _snapshot(model: Any) -> list[Any]:
    return [p.detach().clone() for p in model.parameters()]


def _changed(model: Any, before: list[Any]) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def _args(steps: int, batch_size: int = 2) -> TrainArgs:
    return TrainArgs(steps=steps, batch_size=batch_size, lr=1e-2, progress=False, logging_steps=1)


def test_token_rows_mask_only_assistant_tokens() -> None:
    tokenizer, _ = _tiny()
    rows = token_rows(sft_data([make()]), tokenizer)
    (row,) = rows
    text = tokenizer.decode([t for t, m in zip(row["input_ids"], row["assistant_masks"], strict=True) if m])
    assert "The answer is 4." in text and "calc" in text
    assert "be brief" not in text and "what is 2+2" not in text  # prompt tokens are masked


def test_sft_steps_lower_the_loss() -> None:
    tokenizer, model = _tiny()
    data = sft_data([make(f"t{i}", question=f"q{i}") for i in range(4)])
    report = train_sft(model, tokenizer, data, _args(12, 4))
    assert report.steps == 12 and report.rows == 4
    assert report.losses[-1][1] < report.losses[0][1]


def test_dpo_step_changes_weights() -> None:
    tokenizer, model = _tiny()
    good = make("t0", 0, passed=True)
    bad = make("t0", 1, passed=False, turns=[(tool_turn("9*9"), [Message.tool("81", "c0", name="calc")])])
    before = _snapshot(model)
    report = train_dpo(model, tokenizer, preference_pairs([good, bad]), _args(1, 1))
    assert report.steps == 1 and report.method == "dpo"
    assert _changed(model, before)


def test_dpo_without_pairs_is_a_clear_error() -> None:
    tokenizer, model = _tiny()
    with pytest.raises(ConfigError, match="no preference pairs"):
        train_dpo(model, tokenizer, [], _args(1))  # type: ignore[arg-type]


def test_episode_tokens_mask_tool_results() -> None:
    # The trained micro model calls the calculator, so the episode has a tool result between two
    # turns (a random model answers in one turn, and there would be nothing to mask).
    chat = resolve_model("micro")
    assert isinstance(chat, HFLocal)
    env = make_env("arith", levels="2")
    task = env.tasks("train", n=1)[0]
    traj = asyncio.run(run_episode(env.clone(), chat, task, sampling=Sampling(temperature=0.0, seed=1, logprobs=True)))
    chat.close()
    assert len(traj.steps) == 2 and traj.steps[0].call.message.tool_calls, "the micro model should call the tool"
    prompt, completion, mask, logprobs = episode_tokens(traj)
    assert prompt == traj.steps[0].call.prompt_token_ids
    generated = [t for t, m in zip(completion, mask, strict=True) if m]
    assert generated == [t for s in traj.steps for t in s.call.completion_token_ids or []]
    # Masked: exactly the tool result's turn as the chat template frames it, and the next turn's header.
    masked = [t for t, m in zip(completion, mask, strict=True) if not m]
    (result,) = traj.steps[0].observations
    tool_turn_text = f"\n{IM_START}tool\n{result.text}{IM_END}\n{IM_START}assistant\n"
    assert len(masked) > 0 and chat.tokenizer.decode(masked) == tool_turn_text
    assert masked == chat.tokenizer(tool_turn_text, add_special_tokens=False)["input_ids"]
    assert len(logprobs) == len(completion) and all(lp == 0.0 for lp, m in zip(logprobs, mask, strict=True) if not m)
    assert any(lp != 0.0 for lp, m in zip(logprobs, mask, strict=True) if m)
    # The whole sequence is what the last turn saw plus what it generated.
    last = traj.steps[-1].call
    assert prompt + completion == (last.prompt_token_ids or []) + (last.completion_token_ids or [])
    # A last turn whose prompt does not extend the first (re-rendered differently) is an error, or with
    # strict=False the episode up to that turn: the first turn's tokens, nothing of the broken one.
    from hone.learn.train._grpo import _length  # what HoneRollout counts an episode as cut against

    assert last.prompt_token_ids is not None and _length(traj, len(prompt)) == len(completion)
    last.prompt_token_ids[3] += 1
    with pytest.raises(ConfigError, match="turn 1: the prompt does not extend"):
        episode_tokens(traj)
    first = traj.steps[0].call
    assert episode_tokens(traj, strict=False) == (
        prompt,
        first.completion_token_ids,
        [1] * len(first.completion_token_ids or []),
        first.completion_logprobs,
    )
    assert len(episode_tokens(traj, strict=False)[1]) < _length(traj, len(prompt))


def test_grpo_step_on_arith_episodes_changes_weights() -> None:
    tokenizer, model = _tiny()
    env = make_env("arith")
    tasks = env.tasks("train", n=2)
    before = _snapshot(model)
    # A reward that varies within each group, so advantages are non-zero whatever the random model says.
    report, rollouts = train_grpo(
        model,
        tokenizer,
        env,
        tasks,
        _args(1, 4),
        num_generations=2,
        reward=lambda t: float(sum(t.steps[0].call.completion_token_ids or []) % 7),
        max_new_tokens=16,
    )
    assert report.steps == 1 and report.method == "grpo"
    assert len(rollouts.trajectories) == 4
    assert {t.task_id for t in rollouts.trajectories} == {t.id for t in tasks}
    assert _changed(model, before)


def test_grpo_rejects_groups_of_one() -> None:
    tokenizer, model = _tiny()
    with pytest.raises(ConfigError, match="num_generations"):
        train_grpo(model, tokenizer, "arith", make_env("arith").tasks("train", n=1), _args(1), num_generations=1)
