"""`hone.evaluate` from Python, against the local OpenAI-compatible server."""

from __future__ import annotations

from pathlib import Path

import hone
from hone.core import Budget
from hone.models import Cached, OpenAICompatible
from hone.testing import OpenAIServer


def test_evaluate_by_spec_with_store_and_resume(server: OpenAIServer, tmp_path: Path) -> None:
    db = tmp_path / "hone.db"
    spec = f"openai-compatible:{server.base_url}:x"
    res = hone.evaluate("arith", spec, n=10, k=2, store=db, run_id="py", env_args={"levels": "1-2"})
    assert res.summary.n_trajectories == 20 and res.summary.accuracy is not None
    assert res.summary.accuracy > 0.5 and 2 in res.summary.pass_at_k
    before = server.request_count
    again = hone.evaluate("arith", spec, n=10, k=2, store=db, run_id="py", env_args={"levels": "1-2"})
    assert server.request_count == before  # resumed: nothing left to run
    assert again.summary.n_trajectories == 20


async def test_aevaluate_with_objects_budget_and_cache(server: OpenAIServer, tmp_path: Path) -> None:
    from hone.envs import Arith

    model = Cached(OpenAICompatible("x", base_url=server.base_url, api_key="EMPTY"), tmp_path / "cache.db")
    res = await hone.aevaluate(Arith(levels="1"), model, n=8, store=False, budget=Budget(calls=6), concurrency=1)
    assert res.ledger.calls <= 6 and res.remaining > 0
    first = server.request_count
    res2 = await hone.aevaluate(Arith(levels="1"), model, n=2, store=False)
    assert server.request_count == first  # both tasks' calls were cached by the first run
    assert all(step.call.cached for t in res2.trajectories for step in t.steps)
    await model.aclose()
