from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from _echo_env import EchoEnv, say_number

from hone.core import Budget, ConfigError, Message
from hone.models import Scripted, call_tool
from hone.rollout import RunConfig, Runner
from hone.store import open_store


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
    assert sum(t.usage.calls for t in stored) <= 7
    assert result.remaining > 0 and result.stopped_by == "budget"
    run = store.get_run("b")
    assert run is not None and run.status == "interrupted"
    # in-flight episodes cut by the budget are kept, typed
    assert all(t.status == "ok" or (t.error and t.error.type == "BudgetExceeded") for t in stored)
    cfg2 = RunConfig(run_id="b", concurrency=4, budget=Budget(calls=100), retry_errors=True)
    await Runner(EchoEnv(n=10), model, cfg2, store=store).run()
    final = list(store.query(run_id="b"))
    assert sorted(t.task_id for t in final) == sorted(f"e{i}" for i in range(10))
    assert all(t.status == "ok" for t in final)


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
