"""`hone loop`'s options come from `LoopConfig`: the same names as ever, the model's defaults and bounds."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hone.cli import app
from hone.cli._loop import FIELDS, flags
from hone.learn.loop import LoopConfig

# The command line is an interface: these names are kept whatever the fields are called.
NAMES = {
    "model": "--model",
    "iterations": "--iterations",
    "method": "--method",
    "reward": "--reward",
    "heldout_split": "--heldout-split",
    "heldout_n": "--heldout-n",
    "train_n": "--train-n",
    "k": "-k",
    "temperature": "--temperature",
    "focus": "--focus",
    "steps": "--steps",
    "batch_size": "--batch-size",
    "max_epochs": "--max-epochs",
    "replay": "--replay",
    "lr": "--lr",
    "budget_s": "--budget",
    "bfcl_n": "--bfcl",
    "constrained_tools": "--constrained-tools",
    "seed": "--seed",
    "loop_id": "--id",
    "out": "--out",
    "threads": "--threads",
    "executor": "--executor",
    "workers": "--workers",
    "per_worker": "--per-worker",
}


@pytest.fixture
def help_text() -> str:
    result = CliRunner().invoke(app, ["loop", "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)  # one line: the panel's wrapping and borders gone


def test_every_option_keeps_its_name_and_shows_the_models_default_and_help(help_text: str) -> None:
    assert set(FIELDS) == set(NAMES) and [flags(n)[0].split("/")[0] for n in FIELDS] == [NAMES[n] for n in FIELDS]
    order = [help_text.index(f" {NAMES[n]} ") for n in FIELDS]
    assert order == sorted(order)  # listed in FIELDS' order, so each option's text runs to the next one
    for i, name in enumerate(FIELDS):
        field = LoopConfig.model_fields[name]
        end = order[i + 1] if i + 1 < len(order) else len(help_text)
        text = help_text[order[i] : end]
        assert (field.description or "") in re.sub(r"\s+", " ", text), name
        if field.default is None:
            assert "[default:" not in text, name
        elif isinstance(field.default, bool):
            assert f"[default: {'' if field.default else 'no-'}{name.replace('_', '-')}]" in text, name
        else:
            assert f"[default: {field.default}]" in text, name
    assert "expert-iteration | grpo | dpo" in help_text  # a Literal's values are listed


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--method", "grpp"], "option method='grpp': input should be one of expert-iteration, grpo, dpo"),
        (["--set", "nope=1"], "learner expert-iteration has no option 'nope'; accepted options: k, temperature"),
        (["--method", "grpo", "--set", "margin=1"], "learner grpo has no option 'margin'"),  # DPO's, not GRPO's
        (["--set", "trl.loss_type=ipo", "--method", "dpo", "--set", "k=0"], "learner dpo: option k='0'"),
        pytest.param(
            ["--method", "grpo", "--set", "trl.loss_typo=dr_grpo"],
            "GRPOConfig has no field 'loss_typo'",
            marks=pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="TRL's config needs trl"),
        ),
        (["--max-epochs", "0"], "--max-epochs must be > 0"),  # the model's gt=0, named by its flag
        (["--replay", "-1"], "--replay must be >= 0"),
        (["--heldout-n", "0"], "--heldout-n must be >= 1"),
        (["--bfcl", "-1"], "--bfcl must be >= 0"),
        (["--reward", "nope"], "loop: --reward: unknown reward 'nope'; known: "),
    ],
)
def test_values_are_checked_by_the_model_in_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = CliRunner().invoke(app, ["loop", "arith", *args, "--store", str(tmp_path / "h.db")])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and needle in lines[0], result.stderr
    assert not (tmp_path / "h.db").exists()
