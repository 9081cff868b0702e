"""Training the micro model: the SFT path lowers the loss, checkpoints load without hone, the CLI works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from hone.learn.micro import TrainResult, build_tokenizer, new_micro_model, render_card, train_micro

TINY = {"num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 128}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("micro") / "ckpt"
    return train_micro(
        "arith",
        steps=30,
        out=out,
        n_demos=120,
        batch_size=8,
        lr=3e-3,
        copy_steps=5,
        eval_n=0,
        progress=False,
        logging_steps=10,
        model_overrides=TINY,
    )


def test_a_few_sft_steps_lower_the_loss(trained: TrainResult) -> None:
    steps = [s for s, _ in trained.losses]
    assert steps[0] == 1 and steps[-1] == 30
    assert trained.losses[-1][1] < trained.losses[0][1]
    assert trained.final_loss == trained.losses[-1][1]
    assert trained.params < 200_000  # the override took
    assert trained.args["copy_steps"] == 5 and trained.args["copy_final_loss"] is not None


def test_checkpoint_is_standard_and_complete(trained: TrainResult) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = trained.out
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "README.md"):
        assert (out / name).is_file(), name
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == "llama" and model.config.hidden_size == TINY["hidden_size"]
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.do_sample is False and model.generation_config.max_new_tokens == 256
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Compute: 2 + 2"}], add_generation_prompt=True, return_dict=False
    )
    with torch.no_grad():
        generated = model.generate(torch.tensor([prompt]), max_new_tokens=5)
    assert generated.shape[1] <= len(prompt) + 5
    log = json.loads((out / "training_log.json").read_text())
    assert log["args"]["steps"] == 30 and log["data"]["demonstrations"] == 120
    assert set(log["data"]["styles"]) <= {"tool", "direct", "clumsy"}
    assert log["eval"] is None and "Not evaluated" in (out / "README.md").read_text()


def test_card_shows_loss_curve_and_evaluation(trained: TrainResult) -> None:
    log = trained.to_dict()
    log["eval"] = {
        "env": "arith",
        "split": "test",
        "n": 10,
        "accuracy": 0.5,
        "by_level": {"L1": 1.0, "L5": 0.0},
        "well_formed": 0.97,
        "turns": 25,
        "tool_use": 0.9,
        "errors": 0,
        "seconds": 1.0,
    }
    card = render_card(log)
    assert "| 30 |" in card and "Loss: `" in card
    assert "| L1 | 100.0% |" in card and "**50.0%**" in card and "97.0%" in card


def test_bad_arguments_fail_with_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hone.core import ConfigError

    data = tmp_path / "gsm8k.jsonl"  # an environment without demonstrations, independent of shared data
    data.write_text('{"question": "1 + 1?", "answer": "#### 2"}\n')
    monkeypatch.setenv("HONE_GSM8K", str(data))
    with pytest.raises(ConfigError, match="steps"):
        train_micro(steps=0, out=tmp_path)
    with pytest.raises(ConfigError, match="demonstrations"):
        train_micro("gsm8k", steps=1, n_demos=1, out=tmp_path, eval_n=0)


def test_new_micro_model_matches_the_default_size() -> None:
    model = new_micro_model(build_tokenizer())
    assert 1_000_000 < sum(p.numel() for p in model.parameters()) < 2_000_000  # the issue asks for 1-5M


def test_cli_trains_evaluates_and_reports(tmp_path: Path) -> None:
    pytest.importorskip("hone.models._hf")
    from typer.testing import CliRunner

    from hone.cli import app

    out = tmp_path / "ckpt"
    args = ["micro", "train", "--steps", "5", "--demos", "20", "--eval-n", "4", "--batch-size", "4", "--out", str(out)]
    args += ["--copy-steps", "3", "--copy-mix", "10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"checkpoint: {out}" in result.output
    assert "accuracy" in result.output and "well-formed" in result.output
    log = json.loads((out / "training_log.json").read_text())
    assert log["eval"]["n"] == 4 and log["args"]["steps"] == 5 and log["args"]["copy_mix"] == 10


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hone.cli import app

    result = CliRunner().invoke(app, ["micro", "train", "--steps", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "error:" in result.output and "steps" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("base", "band"), [(False, (0.35, 0.75)), (True, (0.2, 0.45))], ids=["micro", "micro-base"])
def test_committed_checkpoint_loads_without_hone_and_solves_easy_tasks(base: bool, band: tuple[float, float]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hone.models import micro_checkpoint

    path = micro_checkpoint(base=base)  # micro-base: the same recipe stopped early, the loop's start
    assert (path / "model.safetensors").stat().st_size < 10_000_000  # a few MB, in the package
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert 1_000_000 < sum(p.numel() for p in model.parameters()) < 5_000_000 and tokenizer.chat_template
    log = json.loads((path / "training_log.json").read_text())
    assert band[0] <= log["eval"]["accuracy"] <= band[1] and log["eval"]["well_formed"] >= 0.95
    # Greedy episodes through hone: level-1 sums are what the micro model was trained to get right.
    from hone.envs import make_env
    from hone.learn.micro import evaluate_micro

    report = evaluate_micro(path, "arith", n=10)
    assert report.n == 10 and report.by_level["L1"] >= 0.5
    assert make_env("arith").tasks("test", n=10)[0].meta["level"] == 1
