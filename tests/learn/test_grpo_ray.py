"""GRPO with generation on Ray workers and training here: the workers sample with the weights the trainer
publishes, generation runs at most `max_lag` steps ahead and every batch's lag is recorded; the loop's
evaluations and collections run on the executor with the same results as in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")
ray = pytest.importorskip("ray", reason="Ray tests need the hone[ray] extra")

from hone.core import ConfigError, Sampling  # noqa: E402
from hone.envs import make_env  # noqa: E402
from hone.learn.loop import LoopConfig, run_loop  # noqa: E402
from hone.learn.micro import build_tokenizer, new_micro_model  # noqa: E402
from hone.learn.train import GenerationPool, TrainArgs, train_grpo  # noqa: E402
from hone.models import HFLocal  # noqa: E402
from hone.rollout import EpisodeLimits, run_episode  # noqa: E402
from hone.store import SQLStore  # noqa: E402

pytestmark = pytest.mark.timeout(300)
TINY = {"num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-grpo")
    tokenizer = build_tokenizer()
    model = new_micro_model(tokenizer, 0, **TINY)
    model.generation_config.max_new_tokens = 12
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _load(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def test_workers_sample_with_the_published_weights(ray_cluster: None, tiny: Path) -> None:
    import torch

    model, tokenizer = _load(tiny)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5, alpha=1.0)  # another policy than the checkpoint's
    env = make_env("arith", levels="1")
    task = env.tasks("train", n=1)[0]
    sampling = Sampling(temperature=0.0, logprobs=True, seed=3, max_tokens=8)
    limits = EpisodeLimits(max_turns=1)
    pool = GenerationPool("arith", tiny, env_args={"levels": "1"}, workers=1, max_new_tokens=8)
    pool.start()
    try:
        pool.publish(model, 5)
        (remote,), version = pool.collect(pool.submit([task], [sampling], ["k"], limits))
    finally:
        pool.close()
    here = HFLocal(model, tokenizer, max_new_tokens=8)
    local = asyncio.run(run_episode(env.clone(), here, task, sampling=sampling, limits=limits, split="train"))
    start = HFLocal(tiny, max_new_tokens=8)
    before = asyncio.run(run_episode(env.clone(), start, task, sampling=sampling, limits=limits, split="train"))
    assert version == 5 and remote.meta["policy_version"] == 5
    got, want = remote.steps[0].call, local.steps[0].call
    assert got.completion_token_ids == want.completion_token_ids
    assert got.completion_logprobs == pytest.approx(want.completion_logprobs, abs=1e-4)
    assert got.completion_logprobs != pytest.approx(before.steps[0].call.completion_logprobs, abs=1e-4)


def _varied(traj: Any) -> float:
    """A reward that differs between a group's samples (a random model solves nothing), so steps move weights."""
    return float(sum(traj.steps[0].call.completion_token_ids or []) % 7)


@pytest.mark.parametrize(("max_lag", "lags", "versions"), [(1, [0, 1, 1, 1], [0, 0, 1, 2]), (0, [0] * 4, [0, 1, 2, 3])])
def test_generation_runs_ahead_of_training_by_at_most_max_lag(
    ray_cluster: None, tiny: Path, max_lag: int, lags: list[int], versions: list[int]
) -> None:
    model, tokenizer = _load(tiny)
    env = make_env("arith", levels="1")
    tasks = env.tasks("train", n=6)
    pool = GenerationPool("arith", tiny, env_args={"levels": "1"}, workers=2, max_lag=max_lag, max_new_tokens=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report, rollouts = train_grpo(
        model, tokenizer, env, tasks, TrainArgs(steps=4, batch_size=4, lr=1e-3, seed=0, progress=False),
        num_generations=2, max_new_tokens=8, limits=EpisodeLimits(max_turns=1), pool=pool, reward=_varied,
    )  # fmt: skip
    assert report.steps == 4 and len(rollouts.trajectories) == 16
    assert rollouts.lags == lags and rollouts.regenerated == 0  # the next batch was guessed right every step
    by_batch = [t.meta["policy_version"] for t in rollouts.trajectories[::4]]
    assert by_batch == versions
    # batches follow the dataset's order, a group's k samples of one task together
    ids = [t.task_id for t in rollouts.trajectories[::2]]
    assert ids == [t.id for t in tasks] + [t.id for t in tasks[:2]]
    assert any(not v.equal(model.state_dict()[k]) for k, v in before.items())  # it trained
    assert pool._actors == []  # closed


def test_a_pool_that_cannot_load_the_policy_is_refused(ray_cluster: None, tmp_path: Path) -> None:
    pool = GenerationPool("arith", tmp_path / "nothing-here", workers=1)
    with pytest.raises(ConfigError, match="a generation worker cannot start") as info:
        pool.start()
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="max_lag"):
        GenerationPool("arith", tmp_path, max_lag=-1).start()


def test_the_loop_on_ray_matches_the_loop_here(ray_cluster: None, tiny: Path, tmp_path: Path) -> None:
    base: dict[str, Any] = dict(
        model=f"hf:{tiny}", method="grpo", iterations=1, heldout_n=4, train_n=4, k=2, steps=2, batch_size=4,
        concurrency=4, env="arith", seed=1,
    )  # fmt: skip
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
        here = run_loop(LoopConfig(**base, out=tmp_path / "here", loop_id="here"), store)
        cfg = LoopConfig(**base, out=tmp_path / "ray", loop_id="ray", executor="ray", workers=2, per_worker=2)
        there = run_loop(cfg, store)
        for a, b in zip(here.iterations, there.iterations, strict=True):
            assert a.heldout_accuracy == b.heldout_accuracy
            ours = sorted((t.task_id, t.answer, t.model) for t in store.query(run_id=a.eval_run))
            theirs = sorted((t.task_id, t.answer, t.model) for t in store.query(run_id=b.eval_run))
            assert [x[:2] for x in ours] == [x[:2] for x in theirs] and len(theirs) == 4
            assert store.get_run(b.eval_run).config["executor"]["workers"] == 2  # type: ignore[union-attr]
            assert "executor" not in store.get_run(a.eval_run).config  # type: ignore[union-attr]
        lag = there.iterations[1].data["policy_lag"]
        assert lag["bound"] == 1 and lag["per_step"] == [0, 1] and lag["regenerated"] == 0
        assert "policy_lag" not in here.iterations[1].data
        assert store.count(there.iterations[1].collect_run) == 8


def test_cli_loop_refuses_a_bad_executor_before_anything_starts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hone.cli import app

    db = tmp_path / "never.db"
    out = CliRunner().invoke(app, ["loop", "arith", "--executor", "dask", "--store", str(db), "--out", str(tmp_path)])
    assert out.exit_code == 2 and "use local, ray" in out.output and not db.exists()
    far = CliRunner().invoke(app, ["loop", "arith", "--executor", "ray:127.0.0.1:1", "--out", str(tmp_path / "o")])
    assert far.exit_code == 2 and "cannot reach a Ray cluster" in far.output
