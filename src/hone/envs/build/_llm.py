"""`LLMGenerator`: any `ChatModel` proposes scenarios, documents, backends, requests and paraphrases;
everything it proposes is validated (by execution where code is involved) before it is kept.

Each stage asks for one JSON object (the prompts are in `_llmprompts`). An answer that is not JSON
or holds nothing valid is asked again, up to `retries` times, with the errors fed back to the
model; what still fails is dropped and counted in `stats` (stage -> counter -> n), which the
pipeline copies into the build manifest. Backend code and reference calls run only in
`hone.sandbox` (`_llmcheck`). What the source brings (its scenario structure when fixed, its
documents, its backend: what `TemplateGenerator` reads from it) is kept; the model then only
rewrites descriptions and utterances and proposes value pools. A simulated backend (JSON tool
specs) is replaced by one the model writes, when one passes.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from hone.core import ConfigError, Message, Sampling
from hone.models import ChatModel
from hone.sandbox import Sandbox

from . import _llmprompts as prompts
from ._generator import GenerationError
from ._llmcheck import (
    check_backend,
    check_doc,
    check_draft,
    check_request,
    check_rewrite,
    extract_json,
    fit_pools,
    keeps_values,
    merge_pools,
    run_calls,
    stated_values,
    utterance_error,
)
from ._llmprompts import BackendAnswer, items, why
from ._spec import Atom, Backend, Scenario, ScenarioDraft, SourceSpec, ToolDoc
from ._template import TemplateGenerator

T = TypeVar("T")
Parsed = tuple[list[T], list[str]]


class LLMGenerator:
    """The model-driven `Generator` (name "llm"): proposals from `model`, kept only when they validate.

    `retries` is how many times a stage's question is asked again with the validation errors;
    `temperature` and `max_tokens` go to every request (with a seed drawn from the stage's `rng`);
    `timeout_s` bounds each sandboxed backend check and reference call; requests are asked for
    `batch` at a time; `replace_simulated` lets the model write a backend for JSON tool specs;
    `json_mode` asks the server for a JSON object (`response_format`, where the server has it).
    `stats` counts, per stage, requests, retries, proposed, kept and `dropped_<reason>`;
    `dropped()` flattens the drops for the build manifest.
    """

    name = "llm"

    def __init__(
        self,
        model: ChatModel,
        *,
        retries: int = 2,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        timeout_s: float = 10.0,
        batch: int = 10,
        replace_simulated: bool = True,
        json_mode: bool = False,
        sandbox: Sandbox | None = None,
    ) -> None:
        if retries < 0 or batch < 1:
            raise ConfigError(f"LLMGenerator: retries must be >= 0 and batch >= 1, got {retries} and {batch}")
        self.model = model
        self.retries = retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.batch = batch
        self.replace_simulated = replace_simulated
        self.json_mode = json_mode
        self._template = TemplateGenerator()  # what the source itself brings (scenarios, documents, backends)
        self.sandbox = sandbox
        self.stats: dict[str, dict[str, int]] = {}

    @property
    def config(self) -> dict[str, Any]:
        """What, besides the name, decides the output (part of the pipeline's cache keys)."""
        return {
            "model": self.model.name,
            "prompts": prompts.VERSION,
            "retries": self.retries,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "batch": self.batch,
            "replace_simulated": self.replace_simulated,
            "json_mode": self.json_mode,
        }

    def count(self, stage: str, key: str, n: int = 1) -> None:
        """Add `n` to one counter of `stats`."""
        if n:
            counters = self.stats.setdefault(stage, {})
            counters[key] = counters.get(key, 0) + n

    def dropped(self) -> dict[str, int]:
        """Every drop as `stage.reason` -> n (for the manifest's `dropped`)."""
        return {
            f"llm.{stage}.{key.removeprefix('dropped_')}": n
            for stage, counters in sorted(self.stats.items())
            for key, n in sorted(counters.items())
            if key.startswith("dropped_")
        }

    async def _ask(
        self, stage: str, prompt: str, parse: Callable[[dict[str, Any]], Awaitable[Parsed[T]]], rng: random.Random
    ) -> list[T]:
        """Ask until `parse` keeps something or the retries are spent; the errors go back to the model."""
        messages = [Message.system(prompts.SYSTEM), Message.user(prompt)]
        errors: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt:
                self.count(stage, "retries")
                feedback = "\n".join(f"- {e[:300]}" for e in errors[:8])
                messages += [Message.user(prompts.RETRY.format(errors=feedback))]
            extra = {"response_format": {"type": "json_object"}} if self.json_mode else {}
            seed = rng.randrange(2**31)
            sampling = Sampling(temperature=self.temperature, max_tokens=self.max_tokens, seed=seed, extra=extra)
            call = await self.model.generate(messages, None, sampling)
            self.count(stage, "requests")
            text = call.message.content or ""
            messages.append(Message.assistant(text))
            kept: list[T] = []
            try:
                data = extract_json(text)
            except ValueError as exc:
                self.count(stage, "dropped_invalid_json")
                errors = [str(exc)]
            else:
                try:
                    kept, errors = await parse(data)
                except ValueError as exc:  # valid JSON, but not the shape asked for
                    self.count(stage, "dropped_invalid_shape")
                    errors = [str(exc)]
            if kept:
                return kept
            errors = errors or ["nothing in the answer was usable"]
        self.count(stage, "failed")
        return []

    def _drop(self, stage: str, reason: str, errors: list[str], error: str) -> None:
        self.count(stage, f"dropped_{reason}")
        errors.append(error)

    def _dropped(self, stage: str, reason: str, error: str) -> list[str]:
        self.count(stage, f"dropped_{reason}")
        return [error]

    # -- stage 1: scenario decomposition -------------------------------------------------------------

    async def decompose(self, source: SourceSpec, rng: random.Random) -> list[ScenarioDraft]:
        """Scenarios proposed by the model; with documented tools, each must use only those tools. A source
        whose scenarios are fixed (ready scenarios with their own backends, ready tasks naming their
        scenario) keeps its own decomposition."""
        if source.data.get("scenarios") or source.data.get("tasks"):
            self.count("decompose", "from_source")
            return await self._template.decompose(source, rng)
        known = [t.name for t in source.tools]

        async def parse(data: dict[str, Any]) -> Parsed[ScenarioDraft]:
            kept: list[ScenarioDraft] = []
            errors: list[str] = []
            for raw in items(data, "scenarios"):
                self.count("decompose", "proposed")
                draft, error = check_draft(raw, known, [d.name for d in kept])
                if draft is None:
                    self._drop("decompose", "invalid", errors, error)
                else:
                    kept.append(draft)
            self.count("decompose", "kept", len(kept))
            return kept, errors

        listing = [(t.name, t.description) for t in source.tools]
        tools = prompts.tool_lines(listing) or (
            "No tools exist yet: for each scenario, name the 2-6 tools it needs (snake_case)."
        )
        text = prompts.DECOMPOSE.format(name=source.name, kind=source.kind, description=source.description, tools=tools)
        drafts = await self._ask("decompose", text, parse, rng)
        if drafts:
            return drafts
        if not known and not source.data.get("groups"):
            raise GenerationError(f"{source.name}: the model proposed no valid scenario in {self.retries + 1} tries")
        self.count("decompose", "fallback")
        return await self._template.decompose(source, rng)

    # -- stage 2: tool documents ---------------------------------------------------------------------

    async def document(self, source: SourceSpec, draft: ScenarioDraft, rng: random.Random) -> list[ToolDoc]:
        """New documents for the draft's tools, or (when the source has them) rewritten descriptions and
        utterances over the source's documents, whose names, parameters and effects stay."""
        try:
            originals = await self._template.document(source, draft, rng)
        except (KeyError, ConfigError, ValidationError):  # the source brings no documents for these tools
            originals = []
        if originals:
            return await self._rewrite(originals, rng)

        async def parse(data: dict[str, Any]) -> Parsed[ToolDoc]:
            kept: list[ToolDoc] = []
            errors: list[str] = []
            for raw in items(data, "tools"):
                self.count("document", "proposed")
                doc, error = check_doc(raw, draft.tool_names, [d.name for d in kept])
                if doc is None:
                    self._drop("document", "invalid", errors, error)
                    continue
                kept.append(doc.model_copy(update={"utterances": self._utterances(doc, doc.utterances, errors)}))
            self.count("document", "kept", len(kept))
            return kept, errors

        text = prompts.DOCUMENT.format(
            title=draft.title, description=draft.description, names=", ".join(draft.tool_names)
        )
        return await self._ask("document", text, parse, rng)

    def _utterances(self, doc: ToolDoc, utterances: Sequence[str], errors: list[str]) -> list[str]:
        kept: list[str] = []
        for utterance in utterances:
            error = utterance_error(utterance, doc.parameters)
            if error:
                self._drop("document", "bad_utterance", errors, f"tool {doc.name!r}: {error}")
            elif utterance not in kept:
                kept.append(utterance)
        return kept

    async def _rewrite(self, originals: list[ToolDoc], rng: random.Random) -> list[ToolDoc]:
        by_name = {d.name: d for d in originals}

        async def parse(data: dict[str, Any]) -> Parsed[ToolDoc]:
            kept: dict[str, ToolDoc] = {}
            errors: list[str] = []
            for raw in items(data, "tools"):
                self.count("document", "proposed")
                item, error = check_rewrite(raw, sorted(by_name), list(kept))
                if item is None:
                    self._drop("document", "invalid", errors, error)
                    continue
                original = by_name[item.name]
                new = self._utterances(original, item.utterances, errors)  # the source's own stay as they are
                utterances = [*original.utterances, *(u for u in new if u not in original.utterances)]
                kept[item.name] = original.model_copy(
                    update={"description": item.description.strip(), "utterances": utterances}
                )
            self.count("document", "kept", len(kept))
            return list(kept.values()), errors

        shown = [{"name": d.name, "description": d.description, "parameters": d.parameters} for d in originals]
        rewritten = {
            d.name: d
            for d in await self._ask("document", prompts.REWRITE.format(tools=prompts.show(shown)), parse, rng)
        }
        self.count("document", "kept_original", len(originals) - len(rewritten))
        return [rewritten.get(d.name, d) for d in originals]

    # -- stage 3: function integration ---------------------------------------------------------------

    def _pools(self, docs: list[ToolDoc], pools: dict[str, list[Any]]) -> dict[str, list[object]]:
        kept, dropped = fit_pools(docs, pools)
        self.count("integrate", "dropped_pool_value", dropped)
        return kept

    async def integrate(
        self, source: SourceSpec, draft: ScenarioDraft, docs: list[ToolDoc], rng: random.Random
    ) -> tuple[Backend, dict[str, list[object]]]:
        """The source's backend and pools plus pools the model proposes; or, when the source has none (or
        only a simulated one, JSON tool specs, with `replace_simulated`), a backend the model writes that
        loads in the sandbox and defines every documented tool (the simulated one stays if none does)."""
        try:
            base: tuple[Backend, dict[str, list[object]]] | None = await self._template.integrate(
                source, draft, docs, rng
            )
        except ConfigError:
            base = None
        specs = prompts.show([d.spec()["function"] for d in docs])
        if base is not None and not (self.replace_simulated and source.kind == "json"):
            return base[0], merge_pools(base[1], await self._propose_pools(base[0], docs, specs, rng))
        written = await self._write_backend(docs, specs, rng)
        if written is not None:
            return written[0], merge_pools(written[1], base[1] if base else {})
        if base is not None:
            self.count("integrate", "fallback")
            return base
        raise GenerationError(
            f"scenario {draft.name!r}: no proposed backend passed the sandbox check in {self.retries + 1} tries"
        )

    async def _propose_pools(
        self, backend: Backend, docs: list[ToolDoc], specs: str, rng: random.Random
    ) -> dict[str, list[object]]:
        async def parse(data: dict[str, Any]) -> Parsed[dict[str, list[Any]]]:
            pools = data.get("pools")
            if not isinstance(pools, dict) or not all(isinstance(v, list) for v in pools.values()):
                raise ValueError('the answer needs "pools": an object of lists')
            self.count("integrate", "kept")
            return [pools], []

        text = prompts.POOLS.format(tools=specs, state=prompts.show(backend.state, 2000))
        proposed = await self._ask("integrate", text, parse, rng)
        return self._pools(docs, proposed[0] if proposed else {})

    async def _write_backend(
        self, docs: list[ToolDoc], specs: str, rng: random.Random
    ) -> tuple[Backend, dict[str, list[object]]] | None:
        async def parse(data: dict[str, Any]) -> Parsed[tuple[Backend, dict[str, list[Any]]]]:
            self.count("integrate", "proposed")
            try:
                answer = BackendAnswer.model_validate(data)
            except ValidationError as exc:
                return [], self._dropped("integrate", "invalid", f"the backend: {why(exc)}")
            candidate = Backend(source=answer.source, state=answer.state)
            names = [d.name for d in docs]
            error = await check_backend(candidate, names, sandbox=self.sandbox, timeout_s=self.timeout_s)
            if error is not None:
                return [], self._dropped("integrate", "backend_failed", error)
            self.count("integrate", "kept")
            return [(candidate, answer.pools)], []

        kept = await self._ask("integrate", prompts.BACKEND.format(tools=specs), parse, rng)
        return (kept[0][0], self._pools(docs, kept[0][1])) if kept else None

    # -- stage 4: level-1 requests -------------------------------------------------------------------

    async def atoms(self, scenario: Scenario, n: int, rng: random.Random) -> list[Atom]:
        """Up to `n` requests whose call fits its tool's schema, whose values the text states, and whose
        call executes without error from the initial state in the sandbox; asked `batch` at a time."""
        kept: list[Atom] = []
        for _ in range(-(-n // self.batch) if n > 0 else 0):
            want = min(self.batch, n - len(kept))
            got = await self._ask(
                "atoms", self._atoms_prompt(scenario, want, kept), self._atoms_parser(scenario, want, kept), rng
            )
            kept += got
            if not got or len(kept) >= n:
                break
        return kept

    def _atoms_prompt(self, scenario: Scenario, want: int, kept: list[Atom]) -> str:
        done = "\n".join(f"- {a.text[:200]}" for a in kept[-8:])
        return prompts.ATOMS.format(
            n=want,
            title=scenario.title,
            description=scenario.description,
            tools=prompts.show([d.spec()["function"] for d in scenario.tools]),
            pools=prompts.show(scenario.pools, 1500),
            state=prompts.show(scenario.backend.state, 2000),
            avoid=f"\nAlready written (write different ones):\n{done}\n" if done else "",
        )

    def _atoms_parser(
        self, scenario: Scenario, want: int, kept: list[Atom]
    ) -> Callable[[dict[str, Any]], Awaitable[Parsed[Atom]]]:
        async def parse(data: dict[str, Any]) -> Parsed[Atom]:
            errors: list[str] = []
            candidates: list[Atom] = []
            for raw in items(data, "requests"):
                self.count("atoms", "proposed")
                atom = self._atom(scenario, raw, errors)
                if atom is not None and any(a.call == atom.call and a.text == atom.text for a in [*kept, *candidates]):
                    self._drop("atoms", "duplicate", errors, f"{atom.text!r} repeats an earlier request")
                elif atom is not None:
                    candidates.append(atom)
            calls = [a.call for a in candidates]
            checks = await run_calls(scenario.backend, calls, sandbox=self.sandbox, timeout_s=self.timeout_s)
            good: list[Atom] = []
            for atom, check in zip(candidates, checks, strict=True):
                if check.ok:
                    good.append(atom)
                else:
                    why = f"{atom.call.name}({atom.call.arguments}) failed: {check.error}"
                    self._drop("atoms", f"call_{check.kind}", errors, why)
            self.count("atoms", "over_n", max(0, len(good) - want))
            self.count("atoms", "kept", min(want, len(good)))
            return good[:want], errors

        return parse

    def _atom(self, scenario: Scenario, raw: Any, errors: list[str]) -> Atom | None:
        atom, reason, error = check_request(scenario, raw)
        if atom is None:
            self._drop("atoms", reason, errors, error)
        return atom

    # -- paraphrases ---------------------------------------------------------------------------------

    async def paraphrase(
        self, text: str, n: int, rng: random.Random, *, keep: Sequence[str] | None = None
    ) -> list[str]:
        """Up to `n` rewordings that differ from `text` and still state every value in `keep` (default:
        the values `stated_values` finds in `text`: quoted spans, numbers, ids, names)."""
        values = [str(v) for v in keep] if keep is not None else stated_values(text)
        plain = " ".join(text.split()).casefold()

        async def parse(data: dict[str, Any]) -> Parsed[str]:
            kept: list[str] = []
            errors: list[str] = []
            for raw in items(data, "paraphrases"):
                self.count("paraphrase", "proposed")
                candidate = " ".join(str(raw).split()) if isinstance(raw, str) else ""
                lost = keeps_values(candidate, values)
                if not candidate or candidate.casefold() == plain or candidate in kept:
                    self._drop("paraphrase", "identical", errors, f"{candidate!r} is empty or repeats the request")
                elif lost:
                    self._drop("paraphrase", "value_lost", errors, f"{candidate!r} drops {lost} (keep them exactly)")
                else:
                    kept.append(candidate)
            self.count("paraphrase", "over_n", max(0, len(kept) - n))
            self.count("paraphrase", "kept", min(n, len(kept)))
            return kept[:n], errors

        return await self._ask("paraphrase", prompts.PARAPHRASE.format(n=n, text=text), parse, rng) if n > 0 else []
