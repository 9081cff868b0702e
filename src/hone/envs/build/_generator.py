"""The generator interface: who proposes scenarios, documents, backends, requests and paraphrases.

Two implementations stand behind it: `TemplateGenerator` (seeded, offline) and `LLMGenerator`
(any `ChatModel`; everything it proposes is validated by execution before it is kept). The
pipeline (`_pipeline.py`) calls the stages in order, caches each stage's output and does the
generator-independent work itself: complexity scaling (levels 2-6 from level-1 atoms) and
verification of every task by executing its reference solution in `hone.sandbox`.
"""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

from hone.core import HoneError

from ._spec import Atom, Backend, Scenario, ScenarioDraft, SourceSpec, ToolDoc


class GenerationError(HoneError):
    """A generator could not produce a stage's output for one scenario (the pipeline drops the scenario)."""

    kind = "GenerationError"


@runtime_checkable
class Generator(Protocol):
    """The proposal side of the pipeline. Every method is deterministic given `rng`'s seed (templates)
    or validated after the fact (LLM); none executes backend code itself (the pipeline does, sandboxed)."""

    name: str

    async def decompose(self, source: SourceSpec, rng: random.Random) -> list[ScenarioDraft]:
        """Stage 1, scenario decomposition: coherent situations, each with the tools it needs."""
        ...

    async def document(self, source: SourceSpec, draft: ScenarioDraft, rng: random.Random) -> list[ToolDoc]:
        """Stage 2, tool documents: name, description, JSON Schema parameters, returns, effect, utterances."""
        ...

    async def integrate(
        self, source: SourceSpec, draft: ScenarioDraft, docs: list[ToolDoc], rng: random.Random
    ) -> tuple[Backend, dict[str, list[object]]]:
        """Stage 3, function integration: the backend (source + initial state) and value pools for arguments."""
        ...

    async def atoms(self, scenario: Scenario, n: int, rng: random.Random) -> list[Atom]:
        """Stage 4, task generation: up to `n` level-1 requests with their reference call, varied phrasing."""
        ...

    async def paraphrase(self, text: str, n: int, rng: random.Random) -> list[str]:
        """Up to `n` rewordings of a request that keep every stated value (may return fewer, never wrong ones)."""
        ...
