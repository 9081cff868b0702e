"""Training micro-tools at toy scale: toolgen demonstrations -> BPE -> TRL SFT -> a plain HF checkpoint
that HFLocal serves as hermes, evaluated on held-out environments by level; the CLI dispatches on the env."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")

from hone.core import ConfigError, Message
from hone.learn.micro import TrainResult
from hone.learn.micro._train import well_formed
from hone.learn.micro_tools import CHAT_TEMPLATE, LEVEL_GROUPS, train_micro_tools

TOY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
}
LEVEL_NAMES = {"single", "choice", "parallel", "chain", "ask", "no_tool"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("micro-tools") / "ckpt"
    return train_micro_tools(
        steps=6,
        out=out,
        n_demos=24,
        batch_size=4,
        lr=3e-3,
        eval_n=12,
        progress=False,
        logging_steps=1,
        corpus_limit=40,
        model_overrides=TOY,
        string_copy_steps=2,  # every copy stage runs (a few steps: the path, not the skill)
        choice_copy_steps=2,
        copy_steps=2,
        copy_mix=4,
        verb_swap=0.5,
        base_at=3,
    )


def test_sft_runs_on_train_demonstrations_and_logs(trained: TrainResult) -> None:
    assert [s for s, _ in trained.losses] == [1, 2, 3, 4, 5, 6]
    assert trained.losses[-1][1] < trained.losses[0][1]  # 3e-3 on 24 conversations: it fits a little
    assert trained.data["demonstrations"] == 24 and trained.data["split"] == "train"
    assert trained.args["string_copy_final_loss"] > 0 and trained.args["copy_final_loss"] > 0
    assert trained.args["choice_copy_final_loss"] > 0
    copies = trained.args["copies"]  # randomized passes over the demonstrations, then the copy mix
    assert copies == 2 and trained.data["rows"] == 24 * copies + 4
    assert set(trained.data["styles"]) <= {"clean", "recovered"}  # no flawed demonstration is supervision
    assert trained.params < 100_000  # the toy override took
    log = json.loads((trained.out / "training_log.json").read_text())
    assert log["args"]["model_name"] == "micro-tools" and log["args"]["eval_split"] == "heldout"
    assert log["eval"]["groups"].keys() == LEVEL_GROUPS.keys()
    card = (trained.out / "README.md").read_text()
    assert "# hone micro-tools (toolgen)" in card and f"{trained.params:,} parameters" in card
    # The card's command reproduces this run: every stage's steps, with options the CLI has.
    (command,) = [line for line in card.splitlines() if line.startswith("hone micro train")]
    flags = dict(zip(command.split()[3::2], command.split()[4::2], strict=False))
    expected = {"--string-copy-steps": "2", "--copy-steps": "2", "--choice-copy-steps": "2", "--copy-mix": "4"}
    expected["--verb-swap"], expected["--base-at"] = "0.5", "3"
    assert flags.items() >= {**expected, "--steps": "6", "--demos": "24", "--lr": "0.003"}.items(), command
    from typer.testing import CliRunner

    from hone.cli import app

    usage = CliRunner().invoke(app, ["micro", "train", "--help"], env={"COLUMNS": "200"}).output
    assert all(flag in usage for flag in flags if flag.startswith("--")), (flags, usage)
    # evaluated twice: the model alone, and with calls decoded under the tools' grammar (llguidance installed)
    constrained = log["eval_constrained"]
    assert constrained["n"] == 12 and constrained["split"] == "heldout"
    assert "| level | accuracy | constrained tool calls |" in card
    for level, acc in log["eval"]["by_level"].items():
        assert f"| {level} | {100 * acc:.1f}% | {100 * constrained['by_level'][level]:.1f}% |" in card
    assert trained.timings["eval_s"] == round(trained.eval.seconds + constrained["seconds"], 2)  # type: ignore[union-attr]


def test_checkpoint_loads_with_plain_transformers(trained: TrainResult) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json"):
        assert (trained.out / name).is_file(), name
    model = AutoModelForCausalLM.from_pretrained(trained.out)
    tok = AutoTokenizer.from_pretrained(trained.out)
    assert model.config.model_type == "llama" and model.config.hidden_size == TOY["hidden_size"]
    assert model.config.vocab_size == len(tok) == 1024
    assert tok.chat_template == CHAT_TEMPLATE
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert model.config.hone_capabilities["tools"] is True
    tools = [{"type": "function", "function": {"name": "get_x", "description": "X.", "parameters": {}}}]
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "x?"}], tools=tools, add_generation_prompt=True, return_dict=False
    )
    with torch.no_grad():
        generated = model.generate(torch.tensor([prompt]), max_new_tokens=4)
    assert generated.shape[1] > len(prompt)


def test_hflocal_detects_hermes(trained: TrainResult) -> None:
    from hone.models import HFLocal

    hf = HFLocal(trained.out, device="cpu")
    assert hf.tool_format.name == "hermes"
    assert hf.tool_format.dict_arguments is False


def test_evaluation_is_on_heldout_environments_by_level(trained: TrainResult) -> None:
    report = trained.eval
    assert report is not None
    assert report.env == "toolgen" and report.split == "heldout" and report.n == 12
    assert set(report.by_level) <= LEVEL_NAMES and len(report.by_level) >= 2
    assert set(report.groups) == {"levels 1-2", "levels 3-6"}
    assert all(0.0 <= v <= 1.0 for v in report.groups.values())
    assert report.turns >= report.n


def test_toolgen_replies_are_well_formed_without_the_arith_phrase() -> None:
    reply = Message(role="assistant", content="Answer: BO-115")
    assert not well_formed(reply)  # micro's arith check wants "The answer is"
    assert well_formed(reply, None)
    assert not well_formed(Message(role="assistant", content="  "), None)


def test_bad_arguments_fail_with_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a built tool environment"):
        train_micro_tools("arith", steps=1, out=tmp_path / "x", n_demos=1, eval_n=0, progress=False)
    with pytest.raises(ConfigError, match="steps=0"):
        train_micro_tools(steps=0, out=tmp_path / "x", eval_n=0, progress=False)
    # -1 would be "by epochs" in TRL
    for bad in ({"copy_steps": -1}, {"string_copy_steps": -5}, {"copy_mix": -1}, {"choice_copy_steps": -2}):
        with pytest.raises(ConfigError, match=f"{next(iter(bad))}=-"):
            train_micro_tools(steps=1, out=tmp_path / "x", eval_n=0, progress=False, **bad)
    assert not (tmp_path / "x").exists()


def test_base_at_saves_the_same_run_stopped_early_with_its_own_evaluation_and_card(trained: TrainResult) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from hone.learn.micro_tools._train import base_dir

    base = base_dir(trained.out)
    assert base.name == f"{trained.out.name}-base" and base.parent == trained.out.resolve().parent
    AutoModelForCausalLM.from_pretrained(base)  # a standard checkpoint
    log = json.loads((base / "training_log.json").read_text())
    assert log["args"]["stopped_at"] == 3 and log["args"]["steps"] == 6
    assert [r["step"] for r in log["losses"]] == [1, 2, 3] and log["final_loss"] == pytest.approx(
        log["losses"][-1]["loss"], abs=1e-4
    )
    assert log["eval"]["n"] == 12 and log["eval_constrained"]["n"] == 12  # evaluated itself, not the final's copy
    final = load_file(trained.out / "model.safetensors")
    early = load_file(base / "model.safetensors")
    assert any(not (final[k] == early[k]).all() for k in final)  # step 3's weights, not step 6's
    card = (base / "README.md").read_text()
    assert "# hone micro-tools-base (toolgen)" in card and "demonstration step 3 of 6" in card
    assert "stopped_at" not in json.loads((trained.out / "training_log.json").read_text())["args"]


def test_bad_base_at_or_verb_swap_is_refused_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the environment was opened: the check came after work started")

    monkeypatch.setattr("hone.envs.make_env", no_work)
    monkeypatch.chdir(tmp_path)
    from hone.learn.micro_tools._train import base_dir

    assert base_dir(Path(".")) == tmp_path.resolve().with_name(f"{tmp_path.name}-base")  # beside, not inside
    with pytest.raises(ConfigError, match="--base-at needs an --out directory with a name"):
        train_micro_tools(steps=6, out=Path("/"), base_at=3, eval_n=0, progress=False)
    for bad in (0, 6, 9):
        with pytest.raises(ConfigError, match=f"base_at={bad} must be a demonstration step between 1 and 5"):
            train_micro_tools(steps=6, out=tmp_path / "x", base_at=bad, eval_n=0, progress=False)
    with pytest.raises(ConfigError, match=r"verb_swap=1.5 must be in \[0, 1\]"):
        train_micro_tools(steps=6, out=tmp_path / "x", verb_swap=1.5, eval_n=0, progress=False)
    assert not (tmp_path / "x").exists()


def test_cli_trains_with_the_library_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hone micro train --env toolgen` with no options trains the recipe `train_micro_tools` documents (a stale
    copy of the defaults in the CLI once trained 800 demonstration steps instead of 1,200)."""
    import inspect

    from typer.testing import CliRunner

    import hone.learn.micro_tools as package
    from hone.cli import app

    seen: dict[str, Any] = {}

    def capture(env: str, **kwargs: Any) -> None:
        seen.update(kwargs, env=env)
        raise ConfigError("captured")  # stop before any work

    monkeypatch.setattr(package, "train_micro_tools", capture)
    result = CliRunner().invoke(app, ["micro", "train", "--env", "toolgen", "--out", str(tmp_path / "x")])
    assert "captured" in result.output and seen["env"] == "toolgen"
    defaults = {k: p.default for k, p in inspect.signature(train_micro_tools).parameters.items()}
    passed = {k: v for k, v in seen.items() if k in defaults and k not in {"out", "progress", "env"}}
    assert {
        "steps",
        "n_demos",
        "copy_steps",
        "copy_mix",
        "string_copy_steps",
        "choice_copy_steps",
        "verb_swap",
    } <= passed.keys()
    assert passed == {k: defaults[k] for k in passed}, passed


def test_cli_env_toolgen_trains_micro_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hone.cli import app
    from hone.learn.micro_tools import _corpus, _train

    real = _corpus.toolgen_corpus

    def small(env: Any = None, *, split: str = "train", limit: int | None = None) -> Iterator[str]:
        return real(env, split=split, limit=20)  # the whole train corpus takes ~5 s to render

    monkeypatch.setattr(_corpus, "toolgen_corpus", small)
    monkeypatch.setattr(_train, "MICRO_TOOLS_CONFIG", {**_train.MICRO_TOOLS_CONFIG, **TOY})
    out = tmp_path / "ckpt"
    args = ["micro", "train", "--env", "toolgen", "--steps", "2", "--demos", "8", "--batch-size", "4"]
    args += ["--copy-steps", "1", "--string-copy-steps", "1", "--copy-mix", "2", "--choice-copy-steps", "1"]
    args += ["--verb-swap", "0.5", "--base-at", "1"]
    result = CliRunner().invoke(app, [*args, "--eval-n", "6", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "toolgen heldout, 6 tasks" in result.output and "micro-tools-base (step 1)" in result.output
    assert json.loads((tmp_path / "ckpt-base" / "training_log.json").read_text())["args"]["stopped_at"] == 1
    assert "levels 1-2" in result.output and "levels 3-6" in result.output
    log = json.loads((out / "training_log.json").read_text())["args"]
    stages = (log["copy_steps"], log["string_copy_steps"], log["copy_mix"], log["choice_copy_steps"])
    assert log["model_name"] == "micro-tools" and stages == (1, 1, 2, 1) and log["verb_swap"] == 0.5
    assert log["choice_copy_final_loss"] is not None


@pytest.mark.parametrize("spec", ["micro-tools", "micro-tools-base"])
def test_packaged_checkpoints_load_without_hone_and_solve_held_out_tasks(spec: str) -> None:
    """The committed checkpoints: plain `transformers` loads them, their logs and cards say what they are, and
    through hone (constrained tool calls, as evaluated) they solve tool sets never seen in training."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hone.learn.micro import evaluate_micro
    from hone.models import HFLocal, micro_spec_checkpoint

    path = micro_spec_checkpoint(spec)
    assert (path / "model.safetensors").stat().st_size < 20_000_000
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert 3_000_000 < sum(p.numel() for p in model.parameters()) < 5_000_000
    assert tokenizer.chat_template == CHAT_TEMPLATE and len(tokenizer) == 1024
    log = json.loads((path / "training_log.json").read_text())
    base = spec.endswith("-base")
    assert ("stopped_at" in log["args"]) is base and log["eval"]["split"] == "heldout" and log["eval"]["n"] == 120
    assert 0.15 <= log["eval_constrained"]["accuracy"] <= 0.6  # measured, below issue 14's target (docs)
    card = (path / "README.md").read_text()
    assert card.startswith("---") and f"# hone {spec} (toolgen)" in card
    chat = HFLocal(path, constrained_tools=True)
    try:
        report = evaluate_micro(chat, "toolgen", n=12, split="heldout", phrase=None, groups=LEVEL_GROUPS)
    finally:
        chat.close()
    assert report.n == 12 and report.accuracy >= 2 / 12 and report.well_formed >= 0.8
