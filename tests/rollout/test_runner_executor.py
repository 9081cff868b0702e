"""Runner with an executor, without a Ray cluster: the worker's own `run` (tests/rollout/test_ray_executor.py
runs the same path on a real cluster). What travels, what is recorded, what a lost worker leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from _echo_env import EchoEnv, say_number

from hone.core import Budget, Sampling, Trajectory
from hone.models import Scripted, call_tool
from hone.rollout import EpisodeLimits, RunConfig, Runner
from hone.rollout._ray import EpisodeJob, WorkerLost, _Worker
from hone.store import open_store


class InProcessExecutor:
    """RayExecutor's contract for `Runner`, with one `_Worker` body here; the job travels as JSON."""

    address, workers, per_worker = "ray://head:10001", 3, 2

    def __init__(self, env: Any, model: Any, lose: set[str] | None = None) -> None:
        self.worker = _Worker.__new__(_Worker)
        self.worker.env, self.worker.model, self.worker.error = env, model, None
        self.lose = lose or set()
        self.jobs: list[EpisodeJob] = []
        self.running = self.most = 0
        self.events: list[str] = []

    @property
    def capacity(self) -> int:
        return self.workers * self.per_worker

    async def start(self) -> None:
        self.events.append("start")

    async def close(self) -> None:
        self.events.append("close")

    async def episode(self, job: EpisodeJob) -> Trajectory:
        self.jobs.append(job)
        if job.task.id in self.lose:
            raise WorkerLost("worker 1 died (node gone) and 3 retries failed")
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            return Trajectory.model_validate_json(await self.worker.run(job.dumps()))
        finally:
            self.running -= 1


def _answers(trajs: list[Trajectory]) -> list[tuple[str, int, str | None, int | None, list[str]]]:
    return sorted((t.task_id, t.sample, t.answer, t.steps[0].call.sampling.seed, t.tags) for t in trajs)


async def test_episodes_on_an_executor_match_in_process_and_the_run_says_where(tmp_path: Path) -> None:
    cfg = RunConfig(run_id="x", k=2, tags=["a"], seed=3, concurrency=1)
    here = await Runner(EchoEnv(n=8), Scripted(say_number), cfg.model_copy(update={"run_id": "h"})).run()
    ex = InProcessExecutor(EchoEnv(n=8, step_sleep=0.02), Scripted(say_number))  # episodes overlap
    with open_store(tmp_path / "hone.db") as st:
        there = await Runner(EchoEnv(n=8), Scripted(say_number), cfg, store=st, executor=cast("Any", ex)).run()
        run = st.get_run("x")
    assert _answers(there.trajectories) == _answers(here.trajectories) and len(there.trajectories) == 16
    assert ex.events == ["start", "close"] and ex.most == 6  # capacity, not the config's concurrency 1
    assert {(j.run_id, j.split, j.sampling.temperature) for j in ex.jobs} == {("x", "test", cfg.sampling.temperature)}
    assert run is not None
    assert run.config["executor"] == {"kind": "ray", "address": "ray://head:10001", "workers": 3, "per_worker": 2}
    assert run.config["seed"] == 3 and run.split == "test"


async def test_a_fixed_sampling_seed_is_every_episodes_seed() -> None:
    cfg = RunConfig(k=2, sampling=Sampling(seed=42))
    result = await Runner(EchoEnv(n=3), Scripted(say_number), cfg).run()
    assert {t.steps[0].call.sampling.seed for t in result.trajectories} == {42}
    other = await Runner(EchoEnv(n=3), Scripted(say_number), RunConfig(k=2, seed=1)).run()
    assert {t.steps[0].call.sampling.seed for t in other.trajectories}.isdisjoint(
        {
            t.steps[0].call.sampling.seed
            for t in (await Runner(EchoEnv(n=3), Scripted(say_number), RunConfig(k=2)).run()).trajectories
        }
    )


async def test_remote_spending_counts_against_the_budget() -> None:
    ex = InProcessExecutor(EchoEnv(n=10), Scripted(say_number))
    cfg = RunConfig(budget=Budget(calls=4))
    result = await Runner(EchoEnv(n=10), Scripted(say_number), cfg, executor=cast("Any", ex)).run()
    assert result.stopped_by == "budget" and result.ledger.calls >= 4
    assert len(result.trajectories) == result.ledger.calls < 10 and result.remaining == 10 - len(result.trajectories)


async def test_a_lost_worker_leaves_a_typed_error_to_retry(tmp_path: Path) -> None:
    ex = InProcessExecutor(EchoEnv(n=3), Scripted(say_number), lose={"e1"})
    with open_store(tmp_path / "hone.db") as st:
        cfg = RunConfig(run_id="lost", tags=["t"], k=2)
        result = await Runner(EchoEnv(n=3), Scripted(say_number), cfg, store=st, executor=cast("Any", ex)).run()
        both = sorted((t for t in result.trajectories if t.task_id == "e1"), key=lambda t: t.sample)
        assert [t.sample for t in both] == [0, 1]
        lost = both[1]
        assert (lost.run_id, lost.sample, lost.env, lost.model, lost.split, lost.subset) == (
            "lost", 1, "echo", "scripted", "test", "s1",
        )  # fmt: skip
        assert (lost.status, lost.stop_reason, lost.tags) == ("error", "error", ["t"])
        assert lost.error is not None and lost.error.type == "WorkerError" and "node gone" in lost.error.message
        assert len(list(st.query(run_id="lost", status="error"))) == 2
        again = InProcessExecutor(EchoEnv(n=3), Scripted(say_number))
        cfg = RunConfig(run_id="lost", retry_errors=True, k=2)
        rerun = await Runner(EchoEnv(n=3), Scripted(say_number), cfg, store=st, executor=cast("Any", again)).run()
        assert sorted(t.task_id for t in rerun.trajectories) == ["e1", "e1"] and not list(
            st.query(run_id="lost", status="error")
        )


@pytest.mark.parametrize("k", [1, 2])
async def test_the_run_record_through_its_life(tmp_path: Path, k: int) -> None:
    with open_store(tmp_path / "hone.db") as st:
        await Runner(EchoEnv(n=2), Scripted(say_number), RunConfig(run_id="noise"), store=st).run()  # not counted
        cfg = RunConfig(run_id="life", k=k, split="test", budget=Budget(calls=3))
        first = await Runner(EchoEnv(n=4), Scripted(say_number), cfg, store=st).run()
        run = st.get_run("life")
        assert run is not None and run.status == "interrupted" and run.split == "test"
        assert run.config == cfg.model_dump(mode="json")
        assert run.summary["stopped_by"] == "budget" and run.summary["remaining"] == first.remaining == 4 * k - 3
        assert run.summary["cut_short"] == 0 and run.summary["discarded"]["calls"] == 0
        created = run.created_at
        cfg = cfg.model_copy(update={"budget": Budget()})
        await Runner(EchoEnv(n=4), Scripted(say_number), cfg, store=st).run()
        run = st.get_run("life")
        assert run is not None and run.status == "done" and run.created_at == created
        assert (run.summary["remaining"], run.summary["stopped_by"], run.summary["ledger"]["calls"]) == (0, None, 4 * k)


async def test_retrying_errors_touches_only_this_runs_errors(tmp_path: Path) -> None:
    def flaky(messages: Any, tools: object) -> str:  # fails on e1 and e2, answers e0
        if "0" not in str(messages[-1].content):
            raise RuntimeError("backend hiccup")
        return say_number(messages, tools)

    with open_store(tmp_path / "hone.db") as st:
        for run_id in ("mine", "other"):
            await Runner(EchoEnv(n=3), Scripted(flaky), RunConfig(run_id=run_id), store=st).run()
        assert len(list(st.query(run_id="mine", status="error"))) == 2 and st.count("mine") == 3
        cfg = RunConfig(run_id="mine", retry_errors=True)
        while_running: list[tuple[str, int]] = []

        def look(_: Trajectory) -> None:  # what a kill now would leave on record
            run = st.get_run("mine")
            assert run is not None
            while_running.append((run.status, run.summary["discarded"]["calls"]))

        await Runner(EchoEnv(n=3), Scripted(say_number), cfg, store=st).run(on_trajectory=look)
        assert while_running == [("running", 2)] * 2  # the two deleted errors' calls, not the ok one's
        mine, other = st.get_run("mine"), st.get_run("other")
        assert mine is not None and other is not None
        assert mine.summary["discarded"]["calls"] == 2  # this run's 2 deleted errors, not the other's
        assert len(list(st.query(run_id="other", status="error"))) == 2
        assert not list(st.query(run_id="mine", status="error")) and st.count("mine") == 3


async def test_the_runner_passes_its_settings_on() -> None:
    asked: list[tuple[str, int | None, int]] = []

    class Recording(EchoEnv):
        def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Any]:
            asked.append((split, n, seed))
            return super().tasks(split, n=n, seed=seed)

    seen: list[Trajectory] = []
    runner = Runner(Recording(n=3), Scripted(say_number), RunConfig(split="dev", n=2, seed=5))
    assert runner.run_id.startswith("run-")
    result = await runner.run(on_trajectory=seen.append)  # no store: the callback still gets each one
    assert asked == [("dev", 2, 5)] and result.run_id == runner.run_id
    assert sorted(t.id for t in seen) == sorted(t.id for t in result.trajectories) and len(seen) == 2
    assert {t.split for t in seen} == {"dev"}
    chosen = await Runner(EchoEnv(n=5), Scripted(say_number)).run(EchoEnv(n=5).tasks()[3:])
    assert sorted(t.task_id for t in chosen.trajectories) == ["e3", "e4"]
    capped = await Runner(EchoEnv(n=1), Scripted(lambda m, t: call_tool("double", {"x": 1})), RunConfig(
        limits=EpisodeLimits(max_turns=2)
    )).run()  # fmt: skip
    assert [len(t.steps) for t in capped.trajectories] == [2]


async def test_every_episode_cut_short_is_counted_and_requeued(tmp_path: Path) -> None:
    two_calls = Scripted(lambda m, t: call_tool("double", {"x": 1}) if len(m) == 1 else m[0].content.split()[-1])
    with open_store(tmp_path / "hone.db") as st:
        cfg = RunConfig(run_id="cut", concurrency=2, budget=Budget(calls=2))
        both = await Runner(EchoEnv(n=4, step_sleep=0.01), two_calls, cfg, store=st).run()
        assert (both.cut_short, both.remaining, both.stopped_by, st.count("cut")) == (2, 4, "budget", 0)
        one = await Runner(EchoEnv(n=4), two_calls, RunConfig(concurrency=1, budget=Budget(calls=3))).run()
        assert (one.cut_short, one.remaining, one.stopped_by, len(one.trajectories)) == (1, 3, "budget", 1)


async def test_a_run_that_raises_is_recorded_as_interrupted(tmp_path: Path) -> None:
    def stop(_: Trajectory) -> None:
        raise RuntimeError("the caller gave up")

    with open_store(tmp_path / "hone.db") as st:
        with pytest.raises(RuntimeError, match="gave up"):
            await Runner(EchoEnv(n=3), Scripted(say_number), RunConfig(run_id="gone"), store=st).run(on_trajectory=stop)
        run = st.get_run("gone")
        assert run is not None and run.status == "interrupted"
