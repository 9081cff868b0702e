"""`build`: the six stages of `hone env build`, each written to `DIR/stages/NN_<stage>.json` and cached.

    decompose -> document -> integrate -> tasks (atoms, executed) -> scale (levels) -> verify

A stage's cache key is the sha256 of its inputs (the source, the previous stage's output, its own
parameters), the generator's name and config, the seed and `IR_VERSION`; `DIR/stages/cache.json`
maps each stage to its key. A stage whose key and file match is read back instead of recomputed,
so a rerun makes no generator call and no sandbox run, and a changed input recomputes from the
first stage it reaches. Files are replaced atomically, so a killed build resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hone.core import ConfigError, run_sync, stable_int
from hone.sandbox import Sandbox

from ._generator import GenerationError, Generator
from ._output import assign_splits, choose_heldout, write_output
from ._scale import PlannedTask, VerifiedAtom, make_task, scale
from ._spec import IR_VERSION, LEVELS, BuildManifest, BuiltTask, Call, Scenario, ScenarioDraft, SourceSpec, ToolDoc
from ._template import TemplateGenerator
from ._verify import PROGRAM_TIMEOUT_S, execute, render_answer, verify_tasks

log = logging.getLogger(__name__)

STAGES = ("decompose", "document", "integrate", "tasks", "scale", "verify")
RULES_VERSION = 1
"""Bumped when scaling or verification rules change (part of every cache key, like the generator's config)."""
DEFAULT_TASKS_PER_LEVEL = 20
ProgressFn = Callable[[str, int, int], None]
"""`progress(stage, done, total)`, called as sandbox work finishes."""


def build(
    source: SourceSpec,
    out_dir: Path | str,
    *,
    generator: Generator | None = None,
    seed: int = 0,
    tasks_per_level: int | Mapping[int, int] = DEFAULT_TASKS_PER_LEVEL,
    levels: Sequence[int] = (1, 2, 3, 4, 5, 6),
    heldout_share: float = 0.2,
    test_share: float = 0.2,
    workers: int | None = None,
    progress: bool | ProgressFn = False,
    sandbox: Sandbox | None = None,
) -> BuildManifest:
    """Build the environment of `source` into `out_dir` (see `abuild`)."""
    return run_sync(
        abuild(
            source,
            out_dir,
            generator=generator,
            seed=seed,
            tasks_per_level=tasks_per_level,
            levels=levels,
            heldout_share=heldout_share,
            test_share=test_share,
            workers=workers,
            progress=progress,
            sandbox=sandbox,
        )
    )


async def abuild(
    source: SourceSpec,
    out_dir: Path | str,
    *,
    generator: Generator | None = None,
    seed: int = 0,
    tasks_per_level: int | Mapping[int, int] = DEFAULT_TASKS_PER_LEVEL,
    levels: Sequence[int] = (1, 2, 3, 4, 5, 6),
    heldout_share: float = 0.2,
    test_share: float = 0.2,
    workers: int | None = None,
    progress: bool | ProgressFn = False,
    sandbox: Sandbox | None = None,
) -> BuildManifest:
    """Run (or resume) the pipeline and write the built environment to `out_dir`; returns its manifest.

    `tasks_per_level` is per scenario (an int for every level in `levels`, or `{level: n}`).
    `heldout_share` of the scenarios (at least one when there are two or more) form the
    `heldout` split; the other scenarios' tasks split into `train`/`test` by `test_share`.
    `workers` sandbox programs run at once (default: the CPU count); pass `sandbox` to reuse one.
    """
    counts = _counts(tasks_per_level, levels)
    for what, share in (("heldout_share", heldout_share), ("test_share", test_share)):
        if not 0 <= share < 1:
            raise ConfigError(f"{what} must be in [0, 1), got {share!r}")
    gen: Generator = generator or TemplateGenerator()
    run = _Run(Path(out_dir), source, gen, seed, _Bars(progress), sandbox, workers)
    try:
        return await run.all(counts, heldout_share, test_share)
    finally:
        run.close()


def _counts(tasks_per_level: int | Mapping[int, int], levels: Sequence[int]) -> dict[int, int]:
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad:
        raise ConfigError(f"unknown level {bad[0]!r}: levels are 1-6 ({', '.join(LEVELS.values())})")
    if isinstance(tasks_per_level, Mapping):
        counts = {int(k): int(v) for k, v in tasks_per_level.items() if int(k) in levels}
    else:
        counts = dict.fromkeys(levels, int(tasks_per_level))
    if any(lv not in LEVELS or n < 0 for lv, n in counts.items()) or not any(counts.values()):
        raise ConfigError(f"tasks_per_level must give levels 1-6 a count >= 0, some > 0; got {tasks_per_level!r}")
    return counts


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


class _Run:
    """One build: the stage cache in `DIR/stages`, the generator, and a sandbox started only when needed."""

    def __init__(
        self,
        out: Path,
        source: SourceSpec,
        gen: Generator,
        seed: int,
        bars: _Bars,
        sandbox: Sandbox | None,
        workers: int | None,
    ) -> None:
        self.out, self.source, self.gen, self.seed, self.bars = out, source, gen, seed, bars
        self.stages = out / "stages"
        self.stages.mkdir(parents=True, exist_ok=True)
        self.keys: dict[str, str] = _read_json(self.stages / "cache.json") or {}
        self._sandbox, self._own = sandbox, sandbox is None
        self.workers = workers
        self.source_digest = digest(source.model_dump(mode="json"))
        self.generator_id = {"name": gen.name, "config": getattr(gen, "config", {})}
        # Drops outside verification (a scenario the generator could not integrate, the generator's own
        # counts): kept in each stage's file so a cached rerun reports the same manifest.
        self.drops: Counter[str] = Counter()
        self._stage_drops: Counter[str] = Counter()

    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            workers = self.workers or max(1, os.cpu_count() or 1)
            self._sandbox = Sandbox(
                workers=workers, timeout_s=PROGRAM_TIMEOUT_S, memory_mb=1024, max_output_bytes=16 * 1024 * 1024
            )
        return self._sandbox

    def close(self) -> None:
        self.bars.close()
        if self._own and self._sandbox is not None:
            self._sandbox.close()

    def rng(self, stage: str, name: str) -> random.Random:
        return random.Random(stable_int(self.seed, stage, name))

    async def stage(self, name: str, inputs: Any, compute: Callable[[], Any]) -> tuple[Any, str]:
        """The stage's data (from the cache when its key matches) and its key."""
        key = digest(
            {
                "stage": name,
                "inputs": inputs,
                "generator": self.generator_id,
                "seed": self.seed,
                "ir": IR_VERSION,
                "rules": RULES_VERSION,
            }
        )
        path = self.stages / f"{STAGES.index(name) + 1:02d}_{name}.json"
        if self.keys.get(name) == key:
            stored = _read_json(path)
            if isinstance(stored, dict) and stored.get("key") == key and "data" in stored:
                self.drops.update(stored.get("drops") or {})
                return stored["data"], key
        self._stage_drops = Counter()
        before = Counter(self._generator_drops())
        data = await compute()
        drops = self._stage_drops + (Counter(self._generator_drops()) - before)
        self.drops.update(drops)
        _write_json(path, {"stage": name, "key": key, "data": data, "drops": dict(drops)})
        self.keys[name] = key
        _write_json(self.stages / "cache.json", self.keys)
        return data, key

    def _generator_drops(self) -> dict[str, int]:
        dropped = getattr(self.gen, "dropped", None)
        return dict(dropped()) if callable(dropped) else {}

    async def all(self, counts: dict[int, int], heldout_share: float, test_share: float) -> BuildManifest:
        src = self.source
        d1, k1 = await self.stage("decompose", self.source_digest, self._decompose)
        drafts = [ScenarioDraft.model_validate(d) for d in d1]
        d2, k2 = await self.stage("document", [self.source_digest, digest(d1)], lambda: self._document(drafts))
        docs = {name: [ToolDoc.model_validate(t) for t in ts] for name, ts in d2.items()}
        d3, k3 = await self.stage(
            "integrate", [self.source_digest, digest(d1), digest(d2)], lambda: self._integrate(drafts, docs)
        )
        declared = src.data.get("heldout")  # a source may fix its held-out scenarios (the toolgen catalog does)
        names = [s["name"] for s in d3]
        heldout = frozenset(declared) if declared is not None else choose_heldout(names, self.seed, heldout_share)
        scenarios = [Scenario.model_validate({**s, "heldout": s["name"] in heldout}) for s in d3]
        need = (
            counts.get(1, 0)
            + counts.get(2, 0)
            + counts.get(5, 0)
            + 3 * counts.get(3, 0)
            + 3 * counts.get(4, 0)
            + counts.get(6, 0)
        )
        d4, k4 = await self.stage("tasks", [digest(d3), need], lambda: self._atoms(scenarios, need))
        atoms = {n: [VerifiedAtom.model_validate(a) for a in v] for n, v in d4["atoms"].items()}
        extra = _ready_tasks(src, drafts, scenarios)
        inputs5 = [
            digest(d4),
            sorted(counts.items()),
            sorted(heldout),
            digest([(t.model_dump(mode="json"), a) for t, a in extra]),
        ]
        d5, k5 = await self.stage("scale", inputs5, lambda: self._scale(scenarios, atoms, counts, heldout, extra))
        planned = [(BuiltTask.model_validate(p["task"]), bool(p["answer"])) for p in d5["tasks"]]
        d6, k6 = await self.stage("verify", [digest(d5), digest(d3)], lambda: self._verify(scenarios, planned))
        tasks = [BuiltTask.model_validate(t) for t in d6["tasks"]]
        splits = assign_splits(tasks, heldout, self.seed, test_share)
        dropped = Counter({f"atom_{k}": v for k, v in d4["dropped"].items()}) + Counter(d6["dropped"]) + self.drops
        from hone import __version__

        manifest = BuildManifest(
            name=src.name,
            kind=src.kind,
            generator=self.gen.name,
            seed=self.seed,
            scenarios=len(scenarios),
            tools=sum(len(s.tools) for s in scenarios),
            tasks=len(tasks),
            by_level={LEVELS[lv]: n for lv, n in sorted(Counter(t.level for t in tasks).items())},
            dropped=dict(sorted(dropped.items())),
            splits={k: len(v) for k, v in splits.items()},
            stages=dict(zip(STAGES, (k1, k2, k3, k4, k5, k6), strict=True)),
            hone_version=__version__,
        )
        if not tasks:
            raise ConfigError(
                f"building {src.name!r} produced no verified task (dropped: {manifest.dropped or 'none'})"
            )
        write_output(self.out, manifest, scenarios, tasks, splits, str(src.data.get("system_prompt", "")))
        return manifest

    async def _decompose(self) -> list[dict[str, Any]]:
        drafts = await self.gen.decompose(self.source, self.rng("decompose", self.source.name))
        if not drafts:
            raise ConfigError(f"the {self.gen.name} generator found no scenario in {self.source.name!r}")
        return [d.model_dump(mode="json") for d in drafts]

    async def _document(self, drafts: list[ScenarioDraft]) -> dict[str, list[dict[str, Any]]]:
        found = await asyncio.gather(*(self.gen.document(self.source, d, self.rng("document", d.name)) for d in drafts))
        return {d.name: [t.model_dump(mode="json") for t in ts] for d, ts in zip(drafts, found, strict=True)}

    async def _integrate(self, drafts: list[ScenarioDraft], docs: dict[str, list[ToolDoc]]) -> list[dict[str, Any]]:
        made = await asyncio.gather(
            *(self.gen.integrate(self.source, d, docs[d.name], self.rng("integrate", d.name)) for d in drafts),
            return_exceptions=True,
        )
        out = []
        for draft, outcome in zip(drafts, made, strict=True):
            if isinstance(outcome, GenerationError):  # one scenario the generator could not build: drop it, go on
                self._stage_drops["scenario_not_integrated"] += 1
                log.warning("scenario %r dropped: %s", draft.name, outcome)
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            backend, pools = outcome
            scenario = Scenario(
                name=draft.name,
                title=draft.title,
                description=draft.description,
                tools=docs[draft.name],
                backend=backend,
                pools={k: list(v) for k, v in pools.items()},
                data={k: v for k, v in draft.data.items() if k not in ("docs", "backend", "pools", "tasks")},
            )
            out.append(scenario.model_dump(mode="json"))
        return out

    async def _atoms(self, scenarios: list[Scenario], need: int) -> dict[str, Any]:
        made = await asyncio.gather(*(self.gen.atoms(s, need, self.rng("atoms", s.name)) for s in scenarios))
        jobs = [(s.backend, [[[a.call]] for a in atoms]) for s, atoms in zip(scenarios, made, strict=True)]
        tick = self.bars.start("run atoms", sum(len(a) for a in made))
        outcomes = await execute(self.sandbox(), jobs, progress=tick) if jobs else []
        dropped: Counter[str] = Counter()
        kept: dict[str, list[dict[str, Any]]] = {}
        phrasings: dict[str, set[str]] = {}
        for s, atoms, row in zip(scenarios, made, outcomes, strict=True):
            kept[s.name] = []
            for atom, outcome in zip(atoms, row, strict=True):
                if not outcome.ok or outcome.results is None:
                    dropped[outcome.reason or "failed"] += 1
                    continue
                result = outcome.results[0][0]
                answer = render_answer(result) if atom.answer_from_result else None
                kept[s.name].append(VerifiedAtom(atom=atom, result=result, answer=answer).model_dump(mode="json"))
                phrasings.setdefault(f"{s.name}.{atom.call.name}", set()).add(atom.phrasing)
        counts = {k: len(v) for k, v in sorted(phrasings.items())}
        return {"atoms": kept, "dropped": dict(dropped), "phrasings_per_tool": counts}

    async def _scale(
        self,
        scenarios: list[Scenario],
        atoms: dict[str, list[VerifiedAtom]],
        counts: dict[int, int],
        heldout: frozenset[str],
        extra: list[PlannedTask],
    ) -> dict[str, Any]:
        planned, short = scale(scenarios, atoms, counts, seed=self.seed, heldout=heldout)
        planned = [*extra, *planned]
        return {"tasks": [{"task": t.model_dump(mode="json"), "answer": a} for t, a in planned], "short": dict(short)}

    async def _verify(self, scenarios: list[Scenario], planned: list[PlannedTask]) -> dict[str, Any]:
        tick = self.bars.start("verify", len(planned))
        backends = {s.name: s.backend for s in scenarios}
        tasks, dropped = await verify_tasks(self.sandbox(), planned, backends, progress=tick)
        return {"tasks": [t.model_dump(mode="json") for t in tasks], "dropped": dict(dropped)}


def _ready_tasks(source: SourceSpec, drafts: list[ScenarioDraft], scenarios: list[Scenario]) -> list[PlannedTask]:
    """Tasks the source brings ready-made (FSM goals, a catalog's tasks): `data["tasks"]`, per group or overall.

    Each is a `BuiltTask` object (`id` optional; `scenario` defaults to the only scenario; `offered`
    to all its tools) plus an optional `answer_from_result` flag.
    """
    by_name = {s.name: s for s in scenarios}
    raw: list[tuple[str | None, Any]] = [(None, t) for t in source.data.get("tasks", [])]
    raw += [(d.name, t) for d in drafts for t in d.data.get("tasks", [])]
    out: list[PlannedTask] = []
    for default, item in raw:
        if not isinstance(item, Mapping):
            raise ConfigError(f"source {source.name!r}: a ready task must be an object, got {item!r:.80}")
        data = dict(item)
        wants = bool(data.pop("answer_from_result", False))
        name = data.get("scenario") or default or (scenarios[0].name if len(scenarios) == 1 else None)
        if name not in by_name:
            raise ConfigError(f"source {source.name!r}: ready task {item!r:.80} names no known scenario")
        offered = data.get("offered") or [t.name for t in by_name[name].tools]
        reference = [[Call.model_validate(c) for c in step] for step in data.get("reference", [])]
        task = make_task(
            name,
            int(data.get("level", 1)),
            str(data.get("prompt", "")),
            offered,
            reference,
            str(data.get("phrasing", "ready")),
            data.get("hidden_facts"),
        )
        if data.get("id"):
            task = task.model_copy(update={"id": str(data["id"])})
        if data.get("goal") is not None:  # an FSM goal: completeness checks it, not the reference's exact state
            task = task.model_copy(update={"goal": list(data["goal"])})
        out.append((task, wants))
    return out


class _Bars:
    """Progress for the long (sandbox) stages: a rich bar on stderr, a callback, or nothing."""

    def __init__(self, progress: bool | ProgressFn) -> None:
        self.fn = progress if callable(progress) else None
        self.rich = progress is True
        self._progress: Any = None

    def start(self, stage: str, total: int) -> Callable[[int], None]:
        done = [0]
        bar: Any = None
        if self.rich:
            if self._progress is None:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                self._progress = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=Console(stderr=True),
                )
                self._progress.start()
            bar = self._progress.add_task(stage, total=total)

        def tick(n: int) -> None:
            done[0] += n
            if bar is not None:
                self._progress.update(bar, completed=done[0])
            if self.fn is not None:
                self.fn(stage, done[0], total)

        return tick

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, value: Any) -> None:
    """Write atomically (temp file + rename), so a killed build never leaves half a stage."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)
