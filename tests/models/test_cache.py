import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from hone.core import Message, ModelError, Sampling, ToolSpec
from hone.models import Cached, OpenAICompatible
from hone.testing import OpenAIServer


def cached(server: OpenAIServer, path: Path) -> Cached:
    return Cached(OpenAICompatible("mock-model", base_url=server.base_url, max_retries=0), path)


async def test_second_identical_call_is_a_hit(
    server: OpenAIServer, tmp_path: Path, tools: list[ToolSpec], question: list[Message]
) -> None:
    model = cached(server, tmp_path / "cache" / "responses.db")
    first = await model.generate(question, tools, Sampling(seed=1))
    second = await model.generate(question, tools, Sampling(seed=1))
    assert server.request_count == 1 and model.hits == 1 and model.misses == 1
    assert not first.cached and second.cached
    assert second.model_copy(update={"cached": False}) == first  # latency, usage and tokens as stored
    await model.aclose()

    reopened = cached(server, tmp_path / "cache" / "responses.db")
    assert (await reopened.generate(question, tools, Sampling(seed=1))).cached and server.request_count == 1
    await reopened.aclose()


async def test_another_seed_is_a_miss(server: OpenAIServer, tmp_path: Path, question: list[Message]) -> None:
    model = cached(server, tmp_path / "c.db")
    await model.generate(question, sampling=Sampling(seed=1))
    call = await model.generate(question, sampling=Sampling(seed=2))
    assert not call.cached and server.request_count == 2 and len(model) == 2
    await model.aclose()


async def test_failures_are_not_cached(server: OpenAIServer, tmp_path: Path, question: list[Message]) -> None:
    model = cached(server, tmp_path / "c.db")
    server.fail_next(1, 400)
    with pytest.raises(ModelError):
        await model.generate(question)
    assert len(model) == 0
    assert not (await model.generate(question)).cached and server.request_count == 2
    await model.aclose()


async def test_concurrent_calls(server: OpenAIServer, tmp_path: Path, question: list[Message]) -> None:
    model = cached(server, tmp_path / "c.db")
    samplings = [Sampling(seed=i % 10) for i in range(30)]
    await asyncio.gather(*(model.generate(question, sampling=s) for s in samplings[:10]))
    calls = await asyncio.gather(*(model.generate(question, sampling=s) for s in samplings))
    assert all(c.cached for c in calls) and server.request_count == 10 and len(model) == 10
    await model.aclose()


def test_a_dropped_cache_closes_its_database(tmp_path: Path) -> None:
    # Python 3.13 reports an sqlite3 connection left to the garbage collector ("unclosed database").
    script = (
        "import gc, sys\n"
        "from hone.models import Cached, Scripted\n"
        "c = Cached(Scripted(['x']), sys.argv[1])\n"
        "del c\n"
        "gc.collect()\n"
        "print('done')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", script, str(tmp_path / "c.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
    assert "unclosed database" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
