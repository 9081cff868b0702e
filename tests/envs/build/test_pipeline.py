"""`build`: the six stages end to end on a small bank, their cache, resumption and determinism."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _buildbank import bank_source

from hone.core import ConfigError
from hone.envs.build import STAGES, Atom, GenerationError, Scenario, TemplateGenerator, build
from hone.sandbox import Sandbox


class CountingSandbox:
    """The real sandbox, counting the programs the pipeline runs."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner, self.runs = inner, 0

    async def run(self, code: str, **kw: Any) -> Any:
        self.runs += 1
        return await self.inner.run(code, **kw)


class CountingGenerator(TemplateGenerator):
    """The template generator, counting calls per stage (and failing atoms on demand)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}
        self.fail_atoms = False

    def _count(self, stage: str) -> None:
        self.calls[stage] = self.calls.get(stage, 0) + 1

    async def decompose(self, source: Any, rng: random.Random) -> Any:
        self._count("decompose")
        return await super().decompose(source, rng)

    async def document(self, source: Any, draft: Any, rng: random.Random) -> Any:
        self._count("document")
        return await super().document(source, draft, rng)

    async def integrate(self, source: Any, draft: Any, docs: Any, rng: random.Random) -> Any:
        self._count("integrate")
        return await super().integrate(source, draft, docs, rng)

    async def atoms(self, scenario: Scenario, n: int, rng: random.Random) -> list[Atom]:
        self._count("atoms")
        if self.fail_atoms:
            raise RuntimeError("killed mid-build")
        return await super().atoms(scenario, n, rng)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout_s=60, max_output_bytes=16 * 1024 * 1024) as sb:
        yield sb


def _build(out: Path, sb: Any, gen: Any = None, **kw: Any) -> Any:
    kw.setdefault("tasks_per_level", 6)
    return build(kw.pop("source", None) or bank_source(), out, generator=gen, sandbox=sb, **kw)


def _tasks(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "tasks.jsonl").read_text().splitlines()]


def test_build_writes_every_stage_and_level(tmp_path: Path, sandbox: Sandbox) -> None:
    manifest = _build(tmp_path, sandbox)
    assert [p.name for p in sorted((tmp_path / "stages").glob("0*.json"))] == [
        f"{i + 1:02d}_{s}.json" for i, s in enumerate(STAGES)
    ]
    assert set(json.loads((tmp_path / "stages" / "cache.json").read_text())) == set(STAGES)
    assert set(manifest.by_level) == {"single", "choice", "parallel", "chain", "ask", "no_tool"}
    tasks = _tasks(tmp_path)
    assert len(tasks) == manifest.tasks and all(t["final_state"] for t in tasks)
    assert len({t["id"] for t in tasks}) == len(tasks) and len({t["prompt"] for t in tasks}) == len(tasks)
    env = json.loads((tmp_path / "hone_env.json").read_text())
    assert env["manifest"]["tasks"] == len(tasks) and {s["name"] for s in env["scenarios"]} == {"accounts", "exchange"}
    splits = json.loads((tmp_path / "splits.json").read_text())
    assert sorted(i for ids in splits.values() for i in ids) == sorted(t["id"] for t in tasks)
    assert manifest.stages.keys() == set(STAGES)


def test_rerun_reuses_every_stage(tmp_path: Path, sandbox: Sandbox) -> None:
    _build(tmp_path, sandbox)
    first = (tmp_path / "tasks.jsonl").read_text()
    gen, sb = CountingGenerator(), CountingSandbox(sandbox)
    _build(tmp_path, sb, gen)
    assert gen.calls == {} and sb.runs == 0
    assert (tmp_path / "tasks.jsonl").read_text() == first


def test_changed_input_recomputes_from_the_first_changed_stage(tmp_path: Path, sandbox: Sandbox) -> None:
    before = _build(tmp_path, sandbox)
    gen, sb = CountingGenerator(), CountingSandbox(sandbox)
    after = _build(tmp_path, sb, gen, tasks_per_level=4)  # stage 4 (tasks) is the first to read it
    assert gen.calls == {"atoms": 2} and sb.runs > 0
    assert [before.stages[s] == after.stages[s] for s in STAGES] == [True, True, True, False, False, False]
    gen, sb = CountingGenerator(), CountingSandbox(sandbox)
    third = _build(tmp_path, sb, gen, tasks_per_level=4, heldout_share=0.0)  # scaling reads the held-out side
    assert gen.calls == {} and sb.runs > 0
    assert [after.stages[s] == third.stages[s] for s in STAGES] == [True, True, True, True, False, False]
    assert third.splits["heldout"] == 0 and before.splits["heldout"] > 0


def test_killed_build_resumes_from_the_stages_it_finished(tmp_path: Path, sandbox: Sandbox) -> None:
    gen = CountingGenerator()
    gen.fail_atoms = True
    with pytest.raises(RuntimeError, match="killed"):
        _build(tmp_path, sandbox, gen)
    assert (tmp_path / "stages" / "03_integrate.json").exists() and not (tmp_path / "stages" / "04_tasks.json").exists()
    gen = CountingGenerator()
    _build(tmp_path, sandbox, gen)
    assert gen.calls == {"atoms": 2}  # decompose, document and integrate were read back
    (tmp_path / "stages" / "06_verify.json").write_text('{"stage": "verify", "da')  # a torn file is recomputed
    sb = CountingSandbox(sandbox)
    _build(tmp_path, sb, CountingGenerator())
    assert sb.runs > 0 and json.loads((tmp_path / "stages" / "06_verify.json").read_text())["stage"] == "verify"


def test_same_seed_same_tasks_other_seed_other_tasks(tmp_path: Path, sandbox: Sandbox) -> None:
    _build(tmp_path / "a", sandbox, seed=3)
    _build(tmp_path / "b", sandbox, seed=3)
    _build(tmp_path / "c", sandbox, seed=4)
    a, b, c = ((tmp_path / d / "tasks.jsonl").read_text() for d in "abc")
    assert a == b and a != c
    assert (tmp_path / "a" / "splits.json").read_text() == (tmp_path / "b" / "splits.json").read_text()


def test_phrasing_varies_per_tool(tmp_path: Path, sandbox: Sandbox) -> None:
    _build(tmp_path, sandbox, tasks_per_level=10)
    stage = json.loads((tmp_path / "stages" / "04_tasks.json").read_text())["data"]
    per_tool = stage["phrasings_per_tool"]
    # deposit: 6 accounts x 50 amounts; every atom of it should be worded differently.
    assert per_tool["accounts.deposit"] >= 20
    texts = [a["atom"]["text"] for a in stage["atoms"]["accounts"] if a["atom"]["call"]["name"] == "deposit"]
    skeletons = {t.split(" ", 2)[0] + t[-6:] for t in texts}  # opening word and ending differ too
    assert len(skeletons) >= 6


def test_failing_references_are_dropped_and_counted(tmp_path: Path, sandbox: Sandbox) -> None:
    manifest = _build(tmp_path, sandbox, source=bank_source(broken=True))
    assert manifest.dropped.get("atom_exception", 0) > 0  # every `broken` call raises ZeroDivisionError
    assert all("broken" not in [c["name"] for s in t["reference"] for c in s] for t in _tasks(tmp_path))


def test_ready_tasks_from_the_source_are_verified_too(tmp_path: Path, sandbox: Sandbox) -> None:
    source = bank_source()
    ref = [[{"name": "deposit", "arguments": {"account_id": "acc-001", "amount": 5}}]]
    bad = [[{"name": "deposit", "arguments": {"account_id": "nope", "amount": 5}}]]
    source.data["tasks"] = [
        {"scenario": "accounts", "level": 1, "prompt": "Put 5 into acc-001.", "reference": ref},
        {"scenario": "accounts", "level": 1, "prompt": "Put 5 into nope.", "reference": bad},
    ]
    manifest = _build(tmp_path, sandbox, source=source, tasks_per_level=2)
    ready = [t for t in _tasks(tmp_path) if t["prompt"].startswith("Put 5")]
    assert [t["prompt"] for t in ready] == ["Put 5 into acc-001."] and manifest.dropped["value_error"] >= 1


def test_progress_callback_and_bad_options(tmp_path: Path, sandbox: Sandbox) -> None:
    seen: list[tuple[str, int, int]] = []
    _build(tmp_path, sandbox, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert {s for s, _, _ in seen} == {"run atoms", "verify"} and all(d <= t for _, d, t in seen)
    assert seen[-1][1] == seen[-1][2]
    with pytest.raises(ConfigError, match="unknown level 7"):
        _build(tmp_path / "x", sandbox, levels=(1, 7))
    with pytest.raises(ConfigError, match="heldout_share"):
        _build(tmp_path / "x", sandbox, heldout_share=1.0)
    no_backend = bank_source()
    no_backend.backend = None
    with pytest.raises(ConfigError, match="brings no backend"):
        _build(tmp_path / "y", sandbox, source=no_backend)


def test_identical_across_processes_with_other_hash_seeds(tmp_path: Path) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); from pathlib import Path; from _buildbank import bank_source; "
        "from hone.envs.build import build; build(bank_source(), Path(sys.argv[1]), tasks_per_level=3, workers=1)"
    )
    here = str(Path(__file__).parent)
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / seed), here],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    for name in ("tasks.jsonl", "splits.json", "hone_env.json"):
        assert (tmp_path / "1" / name).read_text() == (tmp_path / "2" / name).read_text()


class OneScenarioFails(TemplateGenerator):
    """A generator that cannot integrate one scenario (as an LLM that never proposes a working backend)."""

    def __init__(self, fails: str) -> None:
        super().__init__()
        self.fails = fails
        self.asked = 0

    async def integrate(self, source: Any, draft: Any, docs: Any, rng: random.Random) -> Any:
        self.asked += 1
        if draft.name == self.fails:
            raise GenerationError(f"no working backend for {draft.name}")
        return await super().integrate(source, draft, docs, rng)

    def dropped(self) -> dict[str, int]:
        return {"llm.integrate.no_backend": 1} if self.asked else {}


def test_a_scenario_the_generator_cannot_build_is_dropped_and_counted(tmp_path: Path) -> None:
    source = bank_source()
    names = [g["name"] for g in source.data["groups"]]
    gen = OneScenarioFails(names[0])
    manifest = build(source, tmp_path / "env", generator=gen, tasks_per_level=3, heldout_share=0)
    assert manifest.scenarios == len(names) - 1
    assert manifest.dropped["scenario_not_integrated"] == 1
    assert manifest.dropped["llm.integrate.no_backend"] == 1
    tasks = [json.loads(line) for line in (tmp_path / "env/tasks.jsonl").read_text().splitlines()]
    assert tasks and all(t["scenario"] != names[0] for t in tasks)
    # A cached rerun asks the generator nothing and reports the same drops.
    again = OneScenarioFails(names[0])
    assert build(source, tmp_path / "env", generator=again, tasks_per_level=3, heldout_share=0) == manifest
    assert again.asked == 0
