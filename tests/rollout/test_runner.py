from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from _echo_env import EchoEnv, say_number

from hone.core import Budget, ConfigError, DataError, Message, Sampling
from hone.models import Scripted, call_tool
from hone.rollout import RunConfig, Runner
from hone.store import LeaseError, open_store
from hone.store._tables import leases


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    st = open_store(tmp_path / "hone.db")
    yield st
    st.close()


async def test_run_stores_every_pair_once_and_resume_skips(store) -> None:  # type: ignore[no-untyped-def]
    seen = []
    runner = Runner(EchoEnv(n=10), Scripted(say_number), RunConfig(run_id="r1", k=3, concurrency=4), store=store)
    result = await runner.run(on_trajectory=seen.append)
    assert len(result.trajectories) == 30 == len(seen) and result.remaining == 0
    assert store.count("r1") == 30
    run = store.get_run("r1")
    assert run is not None and run.status == "done"
    again = await Runner(EchoEnv(n=10), Scripted(say_number), RunConfig(run_id="r1", k=3), store=store).run()
    assert again.trajectories == [] and again.skipped == 30
    keys = Counter((t.task_id, t.sample) for t in store.query(run_id="r1"))
    assert len(keys) == 30 and set(keys.values()) == {1}


async def test_a_child_run_records_its_kind_and_parent(store) -> None:  # type: ignore[no-untyped-def]
    for i in (0, 1):
        cfg = RunConfig(run_id=f"L-eval-{i}")
        await Runner(EchoEnv(n=2), Scripted(say_number), cfg, store=store, kind="loop-eval", parent_id="L").run()
    await Runner(EchoEnv(n=2), Scripted(say_number), RunConfig(run_id="alone"), store=store).run()
    assert [(r.id, r.kind, r.status) for r in store.child_runs("L")] == [
        ("L-eval-0", "loop-eval", "done"),
        ("L-eval-1", "loop-eval", "done"),
    ]
    alone = store.get_run("alone")
    assert alone is not None and (alone.kind, alone.parent_id) == ("eval", None)


async def test_samples_get_distinct_reproducible_seeds(store) -> None:  # type: ignore[no-untyped-def]
    runner = Runner(EchoEnv(n=2), Scripted(say_number), RunConfig(run_id="s", k=3), store=store)
    result = await runner.run()
    seeds = {(t.task_id, t.sample): t.steps[0].call.sampling.seed for t in result.trajectories}
    assert len(set(seeds.values())) == 6
    again = await Runner(EchoEnv(n=2), Scripted(say_number), RunConfig(k=3), store=None).run()
    assert {(t.task_id, t.sample): t.steps[0].call.sampling.seed for t in again.trajectories} == seeds


async def test_run_budget_holds_across_concurrent_episodes_and_resume_finishes(store) -> None:  # type: ignore[no-untyped-def]
    model = Scripted(lambda m, t: call_tool("double", {"x": 1}) if len(m) == 1 else m[0].content.split()[-1])
    cfg = RunConfig(run_id="b", concurrency=4, budget=Budget(calls=7))
    result = await Runner(EchoEnv(n=10), model, cfg, store=store).run()
    stored = list(store.query(run_id="b"))
    assert result.remaining > 0 and result.stopped_by == "budget"
    run = store.get_run("b")
    assert run is not None and run.status == "interrupted"
    # episodes cut short by the budget are not stored (neither results nor errors)...
    assert all(t.status == "ok" for t in stored) and result.cut_short > 0
    assert result.remaining == 10 - len(stored)
    # ...but what they spent is: the run's ledger is every call made, within the budget
    spent = sum(t.usage.calls for t in stored) + run.summary["discarded"]["calls"]
    assert spent == result.ledger.calls == run.summary["ledger"]["calls"] == 7
    # the same budget again runs nothing; a larger one finishes without retry_errors
    again = await Runner(EchoEnv(n=10), model, cfg, store=store).run()
    assert again.trajectories == [] and again.stopped_by == "budget" and again.ledger.calls == 7
    cfg2 = RunConfig(run_id="b", concurrency=4, budget=Budget(calls=100))
    done = await Runner(EchoEnv(n=10), model, cfg2, store=store).run()
    assert done.remaining == 0 and done.stopped_by is None
    final = list(store.query(run_id="b"))
    assert sorted(t.task_id for t in final) == sorted(f"e{i}" for i in range(10))
    assert all(t.status == "ok" for t in final)
    # 2 calls per episode, plus what the cut-short attempts spent: all inside the 100
    assert done.ledger.calls == 20 + run.summary["discarded"]["calls"] <= 100


async def test_deleted_errors_still_count_against_the_budget(store) -> None:  # type: ignore[no-untyped-def]
    def flaky(messages: list[Message], tools: object) -> str:
        raise RuntimeError("backend hiccup")

    await Runner(EchoEnv(n=4), Scripted(flaky), RunConfig(run_id="e"), store=store).run()
    assert store.count("e") == 4
    cfg = RunConfig(run_id="e", budget=Budget(calls=6), retry_errors=True)
    result = await Runner(EchoEnv(n=4), Scripted(say_number), cfg, store=store).run()
    # 4 calls went into the deleted errors: 2 are left for the retries
    assert result.ledger.calls == 6 and len(result.trajectories) == 2 and result.stopped_by == "budget"


async def test_a_leased_run_is_refused_and_a_lost_lease_stops_the_run(store) -> None:  # type: ignore[no-untyped-def]
    with store.lease("busy"), pytest.raises(LeaseError, match="'busy' is in use by pid"):
        await Runner(EchoEnv(n=2), Scripted(say_number), RunConfig(run_id="busy"), store=store).run()
    assert store.get_run("busy") is None and store.count("busy") == 0  # refused before anything

    env = EchoEnv(n=40, step_sleep=0.2)  # about 4 s of work: the renewal (every 0.1 s) sees the theft first
    runner = Runner(env, Scripted(say_number), RunConfig(run_id="stolen", concurrency=2), store=store, lease_ttl_s=0.4)

    async def steal() -> None:
        while store.count("stolen") < 2:
            await asyncio.sleep(0.02)
        with store._engine.begin() as conn:  # as another process would after an expiry
            conn.execute(leases.update().where(leases.c.run_id == "stolen").values(owner="thief"))
        run = store.get_run("stolen")
        assert run is not None
        store.save_run(run.model_copy(update={"summary": {"by": "thief"}}))  # the new holder's record

    thief = asyncio.create_task(steal())
    with pytest.raises(LeaseError, match="took over its lease"):
        await runner.run()
    await thief
    assert 2 <= store.count("stolen") < 40
    run = store.get_run("stolen")  # the loser leaves the new holder's run record alone
    assert run is not None and (run.status, run.summary) == ("running", {"by": "thief"}), run


async def test_no_tasks_is_an_error_and_unsafe_ids_are_refused(store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="no tasks"):
        await Runner(EchoEnv(n=0), Scripted(say_number), RunConfig(run_id="z"), store=store).run()
    for bad in ("../x", "a/b", "nul\x00", "x" * 129):
        with pytest.raises(ConfigError, match="run id"):
            Runner(EchoEnv(n=1), Scripted(say_number), RunConfig(run_id=bad), store=store)


def test_invalid_config_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        RunConfig.build(k=0)
    assert str(info.value) == "invalid k: Input should be greater than or equal to 1, got 0"
    with pytest.raises(ConfigError, match="temperature must be >= 0"):
        RunConfig.build(sampling=Sampling(temperature=-1))
    with pytest.raises(ConfigError, match="max_tokens must be >= 1"):
        RunConfig.build(sampling=Sampling(max_tokens=0))


async def test_resume_with_other_model_is_refused(store) -> None:  # type: ignore[no-untyped-def]
    await Runner(EchoEnv(n=1), Scripted(say_number, name="a"), RunConfig(run_id="x"), store=store).run()
    with pytest.raises(ConfigError, match="pick a new --run-id"):
        await Runner(EchoEnv(n=1), Scripted(say_number, name="b"), RunConfig(run_id="x"), store=store).run()


async def test_failing_episodes_do_not_stop_the_run(store) -> None:  # type: ignore[no-untyped-def]
    def flaky(messages: list[Message], tools: object) -> str:
        x = int(messages[0].content.split()[-1])
        if x % 3 == 0:
            raise RuntimeError("backend hiccup")
        return str(x)

    result = await Runner(EchoEnv(n=9), Scripted(flaky), RunConfig(run_id="f"), store=store).run()
    statuses = Counter(t.status for t in result.trajectories)
    assert statuses == {"ok": 6, "error": 3}
    assert store.count("f") == 9


def test_a_run_result_is_not_formatted_whole_when_asyncio_run_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.11's asyncio.run formats the main task's result on the way out: every trajectory of a large
    run, once per run, unless the result's repr is short."""
    from hone.core import Trajectory
    from hone.rollout import RunResult

    formatted: list[int] = []
    real = Trajectory.__repr__
    monkeypatch.setattr(Trajectory, "__repr__", lambda self: formatted.append(1) or real(self))
    many = [Trajectory(run_id="r", task_id=f"t{i}", env="e", model="m") for i in range(50)]

    async def main() -> RunResult:
        return RunResult("r", trajectories=many)

    result = asyncio.run(main())
    assert not formatted and "trajectories=<50>" in repr(result)


async def test_resume_runs_the_missing_samples_of_a_half_done_task(store) -> None:  # type: ignore[no-untyped-def]
    """Stopped between two samples of one task (concurrency 1: pairs run in order), a rerun runs exactly
    the missing (task, sample) pairs: not the stored ones again, and not skipping a task whose first
    sample is stored."""
    env = EchoEnv(n=3)
    first = await Runner(
        env, Scripted(say_number), RunConfig(run_id="half", k=3, concurrency=1, budget=Budget(calls=4)), store=store
    ).run()
    ids = [t.id for t in env.tasks("test", n=3)]
    assert [(t.task_id, t.sample) for t in first.trajectories] == [(ids[0], 0), (ids[0], 1), (ids[0], 2), (ids[1], 0)]
    assert first.stopped_by == "budget" and first.remaining == 5
    rest = await Runner(env, Scripted(say_number), RunConfig(run_id="half", k=3, concurrency=1), store=store).run()
    assert [(t.task_id, t.sample) for t in rest.trajectories] == [(ids[1], 1), (ids[1], 2)] + [
        (ids[2], s) for s in range(3)
    ]
    assert rest.skipped == 4 and rest.remaining == 0
    keys = Counter((t.task_id, t.sample) for t in store.query(run_id="half"))
    assert set(keys) == {(i, s) for i in ids for s in range(3)} and set(keys.values()) == {1}
