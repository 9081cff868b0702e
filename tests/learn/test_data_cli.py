"""`hone data`: datasets from stored runs as Parquet, and the consistency check from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("pyarrow")

import pyarrow.parquet as pq
from _learn_factory import ids, make, tool_turn, with_token_ids
from typer.testing import CliRunner

from hone.cli import app
from hone.core import Message, Trajectory
from hone.learn.micro import build_tokenizer
from hone.store import RunInfo, open_store

runner = CliRunner()


def _store(tmp_path: Path, trajectories: list[Trajectory]) -> str:
    db = str(tmp_path / "hone.db")
    st = open_store(db)
    for run in {t.run_id for t in trajectories}:
        st.save_run(RunInfo(id=run, kind="eval", env="arith", model="m", status="done"))
    st.put_many(trajectories)
    st.close()
    return db


def _group(run: str = "run-a") -> list[Trajectory]:
    tok = build_tokenizer()
    wrong = [
        (tool_turn("2+3", "c0"), [Message.tool("5", "c0", name="calc")]),
        (Message.assistant("The answer is 5."), []),
    ]
    return [
        with_token_ids(tok, make("t0", 0, run_id=run)),
        with_token_ids(tok, make("t0", 1, run_id=run, turns=wrong, answer="5", passed=False)),
        with_token_ids(tok, make("t1", 0, run_id=run, question="what is 1+3?")),
        with_token_ids(tok, make("t1", 1, run_id=run, question="what is 1+3?")),
    ]


def test_sft_pairs_kto_grpo_write_parquet(tmp_path: Path) -> None:
    db = _store(tmp_path, _group())
    out = tmp_path / "data"
    for cmd in (["sft"], ["pairs"], ["kto"], ["grpo"]):
        result = runner.invoke(app, ["data", *cmd, "run-a", "-o", str(out), "--store", db])
        assert result.exit_code == 0, result.output
    sft = pq.read_table(out / "sft-tokens.parquet").to_pylist()
    # t0's success and t1's (its two samples are identical: de-duplicated to one); the failure is left out.
    assert len(sft) == 2 and all(sum(r["assistant_masks"]) > 0 for r in sft)
    assert not (out / "sft-conversations.parquet").exists()
    pairs = pq.read_table(out / "pairs.parquet").to_pylist()
    assert len(pairs) == 1 and "4" in pairs[0]["chosen"][-1]["content"] and "5" in pairs[0]["rejected"][-1]["content"]
    assert [r["label"] for r in pq.read_table(out / "kto.parquet").to_pylist()].count(False) == 1
    grpo = pq.read_table(out / "grpo.parquet").to_pylist()
    assert len(grpo) == 4 and sorted(round(r["advantage"], 3) for r in grpo if r["task_id"] == "t0") == [-0.707, 0.707]
    result = runner.invoke(app, ["data", "grpo", "run-a", "-o", str(out), "--store", db])
    assert "zero-variance fraction 0.500" in result.output  # t1's two samples both passed


def test_check_passes_consistent_ids_and_fails_on_a_planted_mismatch(tmp_path: Path) -> None:
    good = _group()
    bad = _group("run-b")
    prompt = bad[0].steps[1].call.prompt_token_ids
    assert prompt is not None
    prompt[5] = ids(build_tokenizer(), "#")[0]
    db = _store(tmp_path, good + bad)
    ok = runner.invoke(app, ["data", "check", "run-a", "--store", db])
    assert ok.exit_code == 0, ok.output
    assert "checked 8 steps of 4 trajectories (0 without token ids): no mismatches" in ok.output
    found = runner.invoke(app, ["data", "check", "run-b", "--store", db])
    assert found.exit_code == 1
    assert "prefix mismatch at token 5" in found.output and "2 mismatches in 1 trajectories" in found.output


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    db = _store(tmp_path, _group())
    missing = runner.invoke(app, ["data", "sft", "nope", "-o", str(tmp_path / "d"), "--store", db])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output and "Traceback" not in missing.output
    failed = [make("t9", 0, passed=False, run_id="run-f")]
    (tmp_path / "f").mkdir()
    db2 = _store(tmp_path / "f", failed)
    nothing = runner.invoke(app, ["data", "sft", "run-f", "-o", str(tmp_path / "d"), "--store", db2])
    assert nothing.exit_code == 2 and "nothing to learn from" in nothing.output
    tok = runner.invoke(app, ["data", "check", "run-a", "--tokenizer", str(tmp_path / "none"), "--store", db])
    assert tok.exit_code == 2 and "no tokenizer directory" in tok.output


def test_a_dataset_with_nothing_to_learn_is_not_a_success(tmp_path: Path) -> None:
    # Both samples of t1 passed: GRPO has no advantage to learn from and there is no preference pair.
    db = _store(tmp_path, [t for t in _group() if t.task_id == "t1"])
    out = tmp_path / "data"
    grpo = runner.invoke(app, ["data", "grpo", "run-a", "-o", str(out), "--store", db])
    assert grpo.exit_code == 1 and "zero variance" in grpo.output, grpo.output
    pairs = runner.invoke(app, ["data", "pairs", "run-a", "-o", str(out), "--store", db])
    assert pairs.exit_code != 0 and "no preference pairs" in pairs.output, pairs.output
    assert not out.exists() or not any(out.iterdir())
