"""HFLocal: a local Hugging Face model with batched generation (tiny random micro models)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from hone.core import ConfigError, Message, ModelCall, ModelError, Sampling, ToolSpec
from hone.envs import make_env
from hone.learn.micro import build_tokenizer, new_micro_model
from hone.models import HFLocal, resolve_model
from hone.models import _hf_engine as engine_module
from hone.models._hf import TRAIN_HINT, require_train_extra
from hone.models._hf_engine import GenResult
from hone.rollout import run_episode

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)
GREEDY = Sampling(temperature=0, max_tokens=16)
BROKEN = '<tool_call>{"name": "calculator", "arguments": {"expression": "1 +</tool_call><|im_end|>'


def tiny(tokenizer: Any, **overrides: Any) -> Any:
    # A large init range makes the random model's output depend on its prompt (the default
    # init emits the same token whatever it reads, which would hide padding bugs).
    options = {"num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 128, "initializer_range": 0.3}
    return new_micro_model(tokenizer, **{**options, **overrides})


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    # Tiny models gain nothing from intra-op threads, and on a busy machine they cost a lot.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("micro")
    tokenizer = build_tokenizer()
    tiny(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def hf(model_dir: Path) -> Any:
    model = HFLocal(model_dir, max_new_tokens=32)
    yield model
    model.close()


def conversations(n: int) -> list[list[Message]]:
    env = make_env("arith")
    return [env.prompt(task) for task in env.tasks("test", n=n)]


def force(hf: HFLocal, text: str, times: int = 1) -> None:
    """Make the next `times` calls 'generate' `text` (its token ids), then generate normally."""
    real = hf._generate_ids
    ids = hf.tokenizer(text, add_special_tokens=False)["input_ids"]
    left = [times]

    async def forced(prompt: list[int], sampling: Sampling) -> GenResult:
        if left[0] <= 0:
            return await real(prompt, sampling)
        left[0] -= 1
        finish = "eos" if ids[-1] in hf.eos_ids else "length"
        return GenResult(list(ids), [-0.5] * len(ids), finish)  # type: ignore[arg-type]

    hf._generate_ids = forced  # type: ignore[method-assign]


# --- tokens ---------------------------------------------------------------------------


async def test_prompt_ids_are_the_rendered_template(hf: HFLocal, model_dir: Path) -> None:
    messages = [Message.system("Use the calculator."), Message.user("What is 12 * (3 + 4)?")]
    call = await hf.generate(messages, [CALCULATOR], GREEDY)
    tok = hf.tokenizer
    text = tok.apply_chat_template(
        [m.to_openai(object_arguments=True) for m in messages],
        tools=[CALCULATOR.to_openai()],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert call.prompt_token_ids == tok(text, add_special_tokens=False)["input_ids"]
    assert "<tools>calculator(expression)</tools>" in text
    assert call.usage.prompt_tokens == len(call.prompt_token_ids)
    assert call.usage.completion_tokens == len(call.completion_token_ids or ())
    assert call.model == hf.name == str(model_dir)


async def test_completion_ids_decode_to_the_message_and_re_render_exactly(hf: HFLocal) -> None:
    generated = (
        'Let me compute.<tool_call>{"name": "calculator", "arguments": {"expression": "12 * (3 + 4)"}}</tool_call>'
    )
    force(hf, generated + "<|im_end|>")
    messages = [Message.system("Use the calculator."), Message.user("What is 12 * (3 + 4)?")]
    call = await hf.generate(messages, [CALCULATOR], GREEDY)
    ids = call.completion_token_ids or []
    assert hf.tokenizer.decode(ids[:-1], skip_special_tokens=False) == generated
    assert ids[-1] == hf.tokenizer.eos_token_id
    assert call.finish_reason == "tool_calls"
    assert call.message.content == "Let me compute."
    (tc,) = call.message.tool_calls or []
    assert (tc.name, tc.arguments, tc.parse_error) == ("calculator", {"expression": "12 * (3 + 4)"}, None)
    # The history the model produced renders back to exactly the tokens it generated.
    prompt_text = hf.render(messages, [CALCULATOR])
    again = hf.render([*messages, call.message, Message.tool("84", tc.id, "calculator")], [CALCULATOR])
    assert again.startswith(prompt_text + generated + "<|im_end|>\n")


async def test_real_generation_ids_round_trip(hf: HFLocal) -> None:
    call = await hf.generate(conversations(1)[0], [CALCULATOR], Sampling(temperature=1.0, seed=1, max_tokens=32))
    ids = call.completion_token_ids or []
    body = ids[:-1] if call.finish_reason != "length" and ids[-1] in hf.eos_ids else ids
    text = hf.tokenizer.decode(body, skip_special_tokens=False)
    assert hf.tool_format.parse(text) == (call.message.content, call.message.tool_calls or [])


async def test_generation_passes_the_cache_without_deprecation_warnings(hf: HFLocal) -> None:
    # transformers 5.25 renamed `past_key_values` to `cache`; the old name warned on every forward pass
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        await asyncio.gather(*(hf.generate(c, [CALCULATOR], GREEDY) for c in conversations(3)))


async def test_logprobs_cover_every_completion_token(hf: HFLocal) -> None:
    for sampling in (GREEDY, Sampling(temperature=0.8, top_p=0.9, seed=3, max_tokens=20)):
        call = await hf.generate(conversations(1)[0], [CALCULATOR], sampling)
        assert call.completion_logprobs is not None and call.completion_token_ids is not None
        assert len(call.completion_logprobs) == len(call.completion_token_ids) > 0
        assert all(lp <= 0 for lp in call.completion_logprobs)


# --- batching -------------------------------------------------------------------------


async def test_concurrent_calls_share_batches_and_match_solo_runs(hf: HFLocal) -> None:
    convs = conversations(16)
    solo = [await hf.generate(c, [CALCULATOR], GREEDY) for c in convs]
    before = hf.stats.batches
    batched = await asyncio.gather(*(hf.generate(c, [CALCULATOR], GREEDY) for c in convs))
    assert hf.stats.batches - before < 16
    assert hf.stats.max_rows > 1
    assert len({tuple(c.completion_token_ids or ()) for c in solo}) > 1  # outputs depend on the prompt
    for a, b in zip(solo, batched, strict=True):
        assert a.completion_token_ids == b.completion_token_ids
        assert a.completion_logprobs == pytest.approx(b.completion_logprobs, abs=1e-4)


async def test_rows_finish_independently_and_late_requests_join(hf: HFLocal) -> None:
    convs = conversations(12)
    # Early rows run long, late rows join them mid-batch; every row stops at its own limit.
    lengths = [40 - 3 * i for i in range(6)] + [2 + 3 * i for i in range(6)]
    samplings = [Sampling(temperature=0, max_tokens=n, extra={"ignore_eos": True}) for n in lengths]
    solo = [await hf.generate(c, [CALCULATOR], s) for c, s in zip(convs, samplings, strict=True)]
    before = hf.stats.batches

    async def late(i: int) -> ModelCall:
        while hf.stats.steps == steps:  # wait until the early batch is decoding
            await asyncio.sleep(0.001)
        return await hf.generate(convs[i], [CALCULATOR], samplings[i])

    steps = hf.stats.steps
    early = [hf.generate(convs[i], [CALCULATOR], samplings[i]) for i in range(6)]
    batched = await asyncio.gather(*early, *(late(i) for i in range(6, 12)))
    assert hf.stats.batches - before >= 2
    assert hf.stats.max_rows > 6  # late rows joined the running batch
    for a, b, s in zip(solo, batched, samplings, strict=True):
        assert len(b.completion_token_ids or ()) == s.max_tokens
        assert b.finish_reason == "length"
        assert a.completion_token_ids == b.completion_token_ids


async def test_models_without_a_plain_cache_batch_one_group_at_a_time(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "plain_full_attention", lambda config: (False, 1))
    hf = HFLocal(model_dir, max_new_tokens=16)
    assert not hf.engine.slab
    convs = conversations(8)
    samplings = [Sampling(temperature=0, max_tokens=4 + i) for i in range(8)]
    solo = [await hf.generate(c, [CALCULATOR], s) for c, s in zip(convs, samplings, strict=True)]
    batched = await asyncio.gather(*(hf.generate(c, [CALCULATOR], s) for c, s in zip(convs, samplings, strict=True)))
    for a, b in zip(solo, batched, strict=True):
        assert a.completion_token_ids == b.completion_token_ids
    await hf.aclose()


async def test_shared_prefix_is_dropped_when_weights_change() -> None:
    import torch

    tokenizer = build_tokenizer()
    model = tiny(tokenizer)
    hf = HFLocal(model, tokenizer)
    convs = conversations(4)
    await asyncio.gather(*(hf.generate(c, [CALCULATOR], GREEDY) for c in convs))
    assert hf.stats.prefix_tokens > 0  # the group computed its common prefix once
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # a training step, in place
    after = await hf.generate(convs[0], [CALCULATOR], GREEDY)
    fresh = HFLocal(model, tokenizer)
    assert after.completion_token_ids == (await fresh.generate(convs[0], [CALCULATOR], GREEDY)).completion_token_ids
    hf.close()
    fresh.close()


# --- sampling -------------------------------------------------------------------------


async def test_sampling_controls(hf: HFLocal) -> None:
    conv = conversations(1)[0]

    async def ids(sampling: Sampling) -> list[int]:
        return list((await hf.generate(conv, [CALCULATOR], sampling)).completion_token_ids or ())

    greedy = await ids(GREEDY)
    assert greedy == await ids(GREEDY)
    seeded = Sampling(temperature=1.0, seed=7, max_tokens=16)
    assert await ids(seeded) == await ids(seeded)
    others = [await ids(seeded.model_copy(update={"seed": s})) for s in range(8, 11)]
    assert any(o != others[0] for o in others)
    # top_p this small keeps only the most likely token: greedy decoding.
    assert await ids(Sampling(temperature=1.0, top_p=1e-6, seed=1, max_tokens=16)) == greedy
    call = await hf.generate(conv, [CALCULATOR], Sampling(temperature=1.0, max_tokens=5, extra={"ignore_eos": True}))
    assert len(call.completion_token_ids or ()) == 5 and call.finish_reason == "length"


async def test_stop_strings_end_a_row(hf: HFLocal) -> None:
    conv = conversations(1)[0]
    endless = Sampling(temperature=0, max_tokens=24, extra={"ignore_eos": True})
    full = list((await hf.generate(conv, [CALCULATOR], endless)).completion_token_ids or ())
    text = hf.tokenizer.decode(full, skip_special_tokens=False)
    stop = text[5:8]
    call = await hf.generate(conv, [CALCULATOR], endless.model_copy(update={"stop": [stop]}))
    ids = list(call.completion_token_ids or ())
    # The ids run to the token that completed the stop string; the text stops before it.
    assert ids == full[: len(ids)]
    assert stop in hf.tokenizer.decode(ids, skip_special_tokens=False)
    assert stop not in hf.tokenizer.decode(ids[:-1], skip_special_tokens=False)
    assert call.finish_reason in ("stop", "tool_calls")
    before = text[: text.find(stop)]
    assert hf.tool_format.parse(before) == (call.message.content, call.message.tool_calls or [])


async def test_cancelled_calls_free_their_row(hf: HFLocal) -> None:
    conv = conversations(1)[0]
    endless = Sampling(temperature=0, max_tokens=600, extra={"ignore_eos": True})
    steps = hf.stats.steps
    task = asyncio.create_task(hf.generate(conv, [CALCULATOR], endless))
    while hf.stats.steps < steps + 2:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    call = await hf.generate(conv, [CALCULATOR], GREEDY)
    assert call.completion_token_ids
    assert hf.stats.tokens < 600  # the cancelled row stopped early
    await hf.aclose()
    assert (await hf.generate(conv, [CALCULATOR], GREEDY)).completion_token_ids == call.completion_token_ids


# --- tool calls -----------------------------------------------------------------------


async def test_malformed_tool_call_json_is_kept(hf: HFLocal) -> None:
    force(hf, BROKEN)
    call = await hf.generate(conversations(1)[0], [CALCULATOR], GREEDY)
    (tc,) = call.message.tool_calls or []
    assert tc.parse_error and "invalid JSON" in tc.parse_error
    assert tc.arguments_raw == '{"name": "calculator", "arguments": {"expression": "1 +'
    assert tc.name == "calculator"
    assert call.finish_reason == "tool_calls"


async def test_episode_with_malformed_tool_call_ends_in_a_tool_error(hf: HFLocal) -> None:
    force(hf, BROKEN)
    env = make_env("arith")
    task = env.tasks("test", n=1)[0]
    traj = await run_episode(env, hf, task, sampling=GREEDY)
    assert traj.status == "error"
    assert traj.error is not None and traj.error.type == "ToolError"
    assert traj.error.raw == '{"name": "calculator", "arguments": {"expression": "1 +'
    ids = traj.steps[0].call.completion_token_ids or []
    assert hf.tokenizer.decode(ids, skip_special_tokens=False) == BROKEN


# --- errors ---------------------------------------------------------------------------


def test_paths_that_are_not_models(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a Hugging Face model directory"):
        HFLocal(tmp_path)
    not_a_model = r"nowhere is not a Hugging Face model directory or GGUF file \(no such directory\)"
    with pytest.raises(ConfigError, match=not_a_model):
        HFLocal(tmp_path / "nowhere")


def test_tokenizer_without_chat_template(tmp_path: Path) -> None:
    tokenizer = build_tokenizer()
    tiny(tokenizer).save_pretrained(tmp_path)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match=r"has no chat template; set tokenizer\.chat_template"):
        HFLocal(tmp_path)


async def test_prompt_longer_than_the_context() -> None:
    tokenizer = build_tokenizer()
    hf = HFLocal(tiny(tokenizer, max_position_embeddings=64), tokenizer, name="short")
    with pytest.raises(ModelError, match=r"prompt is \d+ tokens; short has a context of 64 tokens"):
        await hf.generate([Message.user("x" * 100)])
    # A prompt that fits gets its completion capped to the context.
    call = await hf.generate([Message.user("hi")], sampling=Sampling(max_tokens=500, extra={"ignore_eos": True}))
    assert len(call.prompt_token_ids or ()) + len(call.completion_token_ids or ()) == 64
    assert call.finish_reason == "length"
    assert hf.stats.errors == 1
    hf.close()


def test_bad_options(model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown tool_format 'nope'"):
        HFLocal(model_dir, tool_format="nope")
    with pytest.raises(ConfigError, match="dtype"):
        HFLocal(model_dir, dtype="int3")


# --- specs ----------------------------------------------------------------------------


def test_hf_spec(model_dir: Path) -> None:
    model = resolve_model(f"hf:{model_dir}", max_new_tokens=8)
    assert isinstance(model, HFLocal) and model.name == str(model_dir) and model.max_new_tokens == 8


def test_micro_spec(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for spec, var in (("micro", "HONE_MICRO_PATH"), ("micro-base", "HONE_MICRO_BASE_PATH")):
        monkeypatch.setenv(var, str(tmp_path / "missing"))
        with pytest.raises(ConfigError, match=f"the {spec} checkpoint is missing; train it with `hone micro train"):
            resolve_model(spec)
        monkeypatch.setenv(var, str(model_dir))
        model = resolve_model(spec)
        assert isinstance(model, HFLocal) and model.name == spec


def test_missing_train_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ConfigError, match=r"pip install 'hone\[train\]'"):
        require_train_extra()
    for spec in ("hf:/some/model", "micro"):
        with pytest.raises(ConfigError) as info:
            resolve_model(spec)
        assert str(info.value) == TRAIN_HINT


def test_hone_models_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import hone.models\n"
        "from hone.models import HFLocal\n"
        "try:\n    HFLocal('x')\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"ConfigError {TRAIN_HINT}"
