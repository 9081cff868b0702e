"""Every strategy runs with the real embedded micro model (which cannot follow instructions)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("torch")

from hone.core import Budget
from hone.envs import make_env
from hone.improve import asolve, make_strategy
from hone.improve._defaults import follows_instructions
from hone.models import resolve_model

NAMES = ["single", "best_of_n", "refine", "reflexion", "mcts", "evolve", "deliberate"]


@pytest.fixture
def one_thread():  # type: ignore[no-untyped-def]
    """A tiny model on a shared CPU runs much faster on one thread (see HFLocal's docstring)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
async def test_each_strategy_with_the_micro_model_on_arith() -> None:
    model = resolve_model("micro")
    assert not follows_instructions(model)  # operators degrade to sampling with the feedback in context
    env = make_env("arith", levels="2,3")
    tasks = env.tasks("test", n=2)
    # all (strategy, task) pairs at once: the micro model batches concurrent calls
    jobs = [(name, task) for name in NAMES for task in tasks]
    results = await asyncio.gather(
        *(asolve(make_strategy(name, parallel=2), task, env, model, Budget(calls=4)) for name, task in jobs)
    )
    for (name, task), result in zip(jobs, results, strict=True):
        assert result.strategy == name and result.best.task_id == task.id
        assert 1 <= result.ledger.calls <= 4 and result.candidates
        assert all(c.model == "micro" and c.strategy == name for c in result.candidates)
        assert result.best.reward is not None or result.best.status == "error"
    # the micro model solves most level-2/3 expressions: not everything can be failing
    assert sum(r.best.passed for r in results) > 0
