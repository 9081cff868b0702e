"""`evaluate_run`, the one evaluate path: a resumed run is read back whole and summarised; lineage; closing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _echo_env import EchoEnv, say_number

from hone.core import Budget
from hone.models import Scripted
from hone.rollout import RunConfig, evaluate_run
from hone.store import open_store


class Closing(Scripted):
    closed = 0

    async def aclose(self) -> None:
        type(self).closed += 1


async def test_a_resumed_run_is_read_back_whole_and_summarised(tmp_path: Path) -> None:
    env = EchoEnv(n=6)
    with open_store(tmp_path / "h.db") as store:
        first = await evaluate_run(
            env, Scripted(say_number), RunConfig(run_id="r", k=2, budget=Budget(calls=5)), store=store,
            kind="loop-eval", parent_id="L",
        )  # fmt: skip
        assert first.result.stopped_by == "budget" and 0 < len(first.trajectories) < 12
        run = store.get_run("r")
        assert run is not None and (run.kind, run.parent_id) == ("loop-eval", "L")
        tasks = env.tasks("test", n=6)
        again = await evaluate_run(env, Closing(say_number), RunConfig(run_id="r", k=2), store=store, tasks=tasks)
        assert len(again.result.trajectories) < 12  # this session ran only what was missing ...
        assert len(again.trajectories) == again.summary.n_trajectories == 12  # ... and the whole run is returned
        assert (
            again.summary.accuracy == 1.0 and again.summary.k == 2 and again.summary.pass_at_k[2] == 1.0
        )  # k from the config
    assert Closing.closed == 0  # the caller's model stays open unless asked
    alone: Any = await evaluate_run(env, Closing(say_number), RunConfig(n=2), close_model=True)
    assert (
        Closing.closed == 1 and len(alone.trajectories) == alone.summary.n_trajectories == 2
    )  # no store: this session's
