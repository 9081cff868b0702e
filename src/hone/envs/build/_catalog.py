"""The shipped scenario catalog (`catalog/*.json`) expanded into tool documents and generated backends.

A scenario file is compact on purpose: entities with typed fields (records are drawn from the
fields' value pools, seeded) and tools named by operation (`find`, `get`, `count`, `sum`,
`avg`, `max`, `min`, `top`, `bottom`, `add`, `set`, `del`, `inc`, `dec`, `calc`, `code`). The
operations share one set of phrasings (`catalog/_ops.json`), so tool documents and requests are
regular across the 40+ domains: a model that learns to read one can read a held-out one.
Every backend is generated Python code that honours the contract of `_spec.Backend` (module
global `state`, one function per tool, `ValueError` for bad input); `find` and `top` return ids
that other tools take, so every scenario has chains.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from ._catalog_code import backend_source, field_check
from ._catalog_world import CatalogError, EntitySpec, FieldSpec, seeded_records
from ._spec import Backend, Scenario, SourceSpec, ToolDoc

_AGG = {"sum": "total", "avg": "average", "max": "highest", "min": "lowest"}


def _read(name: str) -> Any:
    return json.loads(resources.files("hone.envs.build").joinpath("catalog", name).read_text(encoding="utf-8"))


@cache
def scenario_names() -> tuple[str, ...]:
    """The names of the shipped scenarios, sorted."""
    folder = resources.files("hone.envs.build").joinpath("catalog")
    return tuple(
        sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json") and not p.name.startswith("_"))
    )


def _fill(text: str, words: dict[str, str]) -> str:
    for key, value in words.items():
        text = text.replace(f"<{key}>", value)
    return re.sub(r"\b([Aa]) (?=[aeioAEIO])", r"\1n ", text)  # "a account" -> "an account"


class _Tool:
    """One tool being expanded: its name, parameters, template words, phrasing variant and code entry."""

    def __init__(self, op: str, table: str | None):
        self.op, self.variant, self.name = op, op, ""
        self.params: dict[str, dict[str, Any]] = {}
        self.words: dict[str, str] = {}
        self.impl: dict[str, Any] = {"op": op, "table": table}


class _Builder:
    """Expands one scenario file: tool documents, backend source and state, pools."""

    def __init__(self, raw: dict[str, Any], ops: dict[str, Any], common: dict[str, list[Any]], seed: int):
        self.raw, self.ops = raw, ops
        self.name: str = raw["name"]
        local = raw.get("pools", {})
        self.entities = {e["name"]: EntitySpec(e, common, local) for e in raw["entities"]}
        self.rng = random.Random(f"hone-catalog:{seed}:{self.name}")
        self.state = seeded_records(self.entities, self.rng)
        self.common, self.local = common, local
        self.docs: list[ToolDoc] = []
        self.impls: list[dict[str, Any]] = []
        self.pools: dict[str, list[Any]] = {}
        self.own: dict[str, list[Any]] = {}  # values for the tool being added only (new values, amounts)

    def pool(self, arg: str, values: list[Any]) -> None:
        values = list(dict.fromkeys(values))
        old = self.pools.setdefault(arg, values)
        if old != values:
            self.pools[arg] = list(dict.fromkeys(old + values))

    def key_param(self, ent: EntitySpec, name: str | None = None, description: str = "") -> tuple[str, dict[str, Any]]:
        """A parameter holding an id of `ent` (named after the entity's key unless `name` says otherwise)."""
        example = next(iter(self.state[ent.name]))
        name = name or ent.key
        self.pool(name, sorted(self.state[ent.name]))
        return name, {"type": "string", "description": description or f"The {ent.noun} ID, like {example}."}

    def field_param(self, ent: EntitySpec, fld: FieldSpec, values: str = "existing") -> tuple[str, dict[str, Any]]:
        if fld.ref:
            return self.key_param(self.entities[fld.ref], fld.name)
        existing = sorted({r[fld.name] for r in self.state[ent.name].values()}, key=str)
        if values == "existing" and not fld.numeric:
            self.pool(fld.name, existing)
        else:
            self.own[fld.name] = fld.samples(self.rng)
        return fld.name, fld.schema(f"The {fld.label} of the {ent.noun}.")

    def add(self, spec: Any) -> None:
        """Expand one tool entry (`"op entity [field [by]]"` or an object) into its document and code."""
        if isinstance(spec, str):
            spec = dict(zip(("op", "entity", "field", "by"), spec.split(), strict=False))
        op = spec["op"]
        ent = self.entities.get(spec.get("entity", ""))
        if op not in ("calc", "code") and ent is None:
            raise CatalogError(f"{self.name}: tool {spec} names no entity of the scenario")
        t = _Tool(op, ent.name if ent else None)
        if ent:
            t.words |= {"noun": ent.noun, "nouns": ent.nouns, "key": ent.key}
        fld = ent.field(spec["field"]) if ent and spec.get("field") and op != "add" else None
        if fld:
            t.words |= {"label": fld.label, "f": fld.name}
            t.impl["field"] = fld.name
        if op == "find":
            assert ent and fld
            t.name = f"find_{ent.name}"
            t.params[fld.name] = fld.schema(f"The {fld.label} of the {ent.noun}.")
            self.pool(fld.name, sorted({r[fld.name] for r in self.state[ent.name].values()}))
        elif op in ("get", "set", "del", "inc", "dec"):
            assert ent
            self._by_id(t, spec, ent, fld)
        elif op in ("count", "sum", "avg", "max", "min", "top", "bottom"):
            assert ent
            fld = self._aggregate(t, spec, ent, fld)
        elif op == "add":
            assert ent
            self._create(t, spec, ent)
        elif op in ("calc", "code"):
            self._compute(t, spec)
        else:
            raise CatalogError(f"{self.name}: unknown operation {op!r}")
        self._finish(t, spec, fld)

    def _by_id(self, t: _Tool, spec: dict[str, Any], ent: EntitySpec, fld: FieldSpec | None) -> None:
        """get / set / del / inc / dec: the record named by its id."""
        k, t.params[k] = self.key_param(ent)
        default = {"get": "get_{e}_{f}", "set": "set_{e}_{f}", "del": "remove_{e}"}.get(t.op, "")
        t.name = spec.get("name") or default.format(e=ent.name, f=fld.name if fld else "")
        if not t.name:
            raise CatalogError(f"{self.name}: an {t.op} tool needs a name")
        if t.op == "set" and fld:
            p, t.params[p] = self.field_param(ent, fld, "new")
            t.impl["check"] = field_check(fld, p)
        if t.op in ("inc", "dec") and fld:
            arg = spec.get("arg", "amount")
            t.words["arg"] = arg
            t.params[arg] = {
                "type": fld.json_type,
                "description": spec.get("arg_label", f"How much to change the {fld.label} by."),
            }
            top = int(fld.range[2] // 5) if fld.range else 20
            self.own[arg] = FieldSpec(arg, f"int:1:{max(top, 3)}", arg, {}, {}).samples(self.rng, 6)
            t.impl["arg"] = arg

    def _aggregate(self, t: _Tool, spec: dict[str, Any], ent: EntitySpec, fld: FieldSpec | None) -> FieldSpec | None:
        """count / sum / avg / max / min / top / bottom over all records, an enum value or a parent id.

        Returns the field the result is about (None for a count, whose field is its filter).
        """
        op = t.op
        by = ent.field(spec["by"]) if spec.get("by") else None
        if op != "count" and not (fld and fld.numeric):
            raise CatalogError(f"{self.name}: {op} needs a numeric field of {ent.name}")
        stem = {
            "count": f"count_{ent.plural}",
            "top": f"top_{ent.name}_by_{spec.get('field')}",
            "bottom": f"bottom_{ent.name}_by_{spec.get('field')}",
        }.get(op, f"{_AGG.get(op, op)}_{spec.get('field')}")
        joiner = "_for_" if op in ("top", "bottom") else "_by_"
        if op == "count" and fld:  # count ENTITY FIELD: the field is the filter
            by, fld = fld, None
        t.variant = op if op in ("count", "top", "bottom") else "agg"
        t.words["agg"] = _AGG.get(op, "")
        if by is None:
            t.name, t.variant = stem, t.variant + "_all"
        elif by.ref:
            parent = self.entities[by.ref]
            t.name = f"count_{parent.name}_{ent.plural}" if op == "count" else f"{stem}_of_{parent.name}"
            p, t.params[p] = self.key_param(parent, by.name)
            t.words |= {"by": p, "rnoun": parent.noun}
            t.variant += "_ref"
            t.impl["by"], t.impl["ref"] = by.name, parent.name
        else:
            t.name = f"{stem}{joiner}{by.name}"
            p, t.params[p] = self.field_param(ent, by)
            t.words |= {"by": p, "blabel": by.label}
            t.variant += "_enum"
            t.impl["by"], t.impl["check_by"] = by.name, field_check(by, p)
        return fld

    def _create(self, t: _Tool, spec: dict[str, Any], ent: EntitySpec) -> None:
        """add: a new record from the given fields (the others take their defaults), a fresh id."""
        t.name = f"add_{ent.name}"
        phrase, checks = [], []
        for fname in spec["fields"]:
            f = ent.field(fname)
            p, t.params[p] = self.field_param(ent, f, "new")
            checks.append((fname, field_check(f, p)))
            phrase.append(f"{f.label} {{{p}}}")
        t.words["fields"] = ", ".join(phrase[:-1]) + " and " + phrase[-1] if len(phrase) > 1 else phrase[0]
        t.impl["checks"], t.impl["prefix"] = checks, ent.prefix
        t.impl["defaults"] = {f: self._default(x) for f, x in ent.fields.items() if f not in spec["fields"]}

    def _compute(self, t: _Tool, spec: dict[str, Any]) -> None:
        """calc / code: checked parameters, then an expression or a few statements."""
        t.name = spec["name"]
        checks = []
        for p, kind, label in spec["params"]:
            f = FieldSpec(p, kind, label, self.common, self.local)
            if f.ref:
                _, t.params[p] = self.key_param(self.entities[f.ref], p, label)
            else:
                t.params[p] = f.schema(label)
                self.own[p] = f.samples(self.rng)
            checks.append((p, field_check(f, p)))
        t.impl |= {
            "checks": checks,
            "body": spec.get("body") or [f"return {spec['expr']}"],
            "tables": spec.get("tables", {}),
        }

    def _finish(self, t: _Tool, spec: dict[str, Any], fld: FieldSpec | None) -> None:
        """The document (the operation's shared phrasings unless the entry brings its own) and the code entry."""
        name = spec.get("name", t.name)
        for arg, values in self.own.items():  # keyed `tool.arg`: the generator prefers them to the arg's pool
            self.pools[f"{name}.{arg}"] = list(dict.fromkeys(values))
        self.own = {}
        text = self.ops.get(t.variant, {})
        if not text and not (spec.get("description") and spec.get("utterances") and spec.get("returns")):
            raise CatalogError(f"{self.name}.{name}: a {t.op} tool needs its own description, returns and utterances")
        ids = ("find", "top", "bottom", "del", "add")
        t.words["type"] = (
            "string" if t.op in ids else "integer" if t.op == "count" else fld.json_type if fld else "number"
        )
        self.docs.append(
            ToolDoc(
                name=name,
                description=spec.get("description") or _fill(text["description"], t.words),
                parameters={"type": "object", "properties": t.params, "required": list(t.params)},
                returns=spec.get("returns") or _fill(text["returns"], t.words),
                effect="write" if t.op in ("add", "set", "del", "inc", "dec") else spec.get("effect", "read"),
                utterances=spec.get("utterances") or [_fill(u, t.words) for u in text["utterances"]],
            )
        )
        self.impls.append(t.impl | {"name": name, "params": list(t.params)})

    @staticmethod
    def _default(f: FieldSpec) -> Any:
        if f.enum:
            return f.enum[0]
        return 0 if f.numeric else ""

    def scenario(self) -> Scenario:
        for spec in self.raw["tools"]:
            self.add(spec)
        names = [d.name for d in self.docs]
        if len(set(names)) != len(names):
            raise CatalogError(f"{self.name}: duplicate tool names {sorted({n for n in names if names.count(n) > 1})}")
        for doc in self.docs:
            slots = set(re.findall(r"\{(\w+)\}", " ".join(doc.utterances)))
            missing = [u for u in doc.utterances if set(re.findall(r"\{(\w+)\}", u)) != set(doc.parameters["required"])]
            if missing or not slots <= set(doc.parameters["properties"]):
                raise CatalogError(f"{self.name}.{doc.name}: utterance slots do not match the parameters: {missing}")
        entities = {e.name: (e.noun, e.nouns) for e in self.entities.values()}
        return Scenario(
            name=self.name,
            title=self.raw["title"],
            description=self.raw["description"],
            tools=self.docs,
            backend=Backend(source=backend_source(entities, self.impls), state=self.state),
            pools=self.pools,
            heldout=bool(self.raw.get("heldout", False)),
            data={"domain": self.raw.get("domain", self.name)},
        )


def expand_scenario(name: str, seed: int = 0) -> Scenario:
    """One shipped scenario as a `Scenario`: documents, generated backend, seeded records, pools."""
    if name not in scenario_names():
        raise CatalogError(f"no catalog scenario {name!r} (known: {', '.join(scenario_names())})")
    return _Builder(_read(f"{name}.json"), _read("_ops.json"), _read("_pools.json"), seed).scenario()


def load_catalog(names: Sequence[str] | None = None, seed: int = 0) -> SourceSpec:
    """The shipped catalog (or the scenarios `names`) as a `SourceSpec` of kind "catalog".

    `data["groups"]` holds one group per scenario (name, title, description, tool names) and
    `data["scenarios"]` the expanded scenarios (`Scenario` dumps, with backend and pools), so a
    generator decomposes it into one draft per scenario. Tool names repeat across scenarios, so
    `tools` is left empty: each scenario's documents travel in its own entry.
    """
    chosen = list(names) if names else list(scenario_names())
    scenarios = [expand_scenario(n, seed) for n in chosen]
    return SourceSpec(
        kind="catalog",
        name="toolgen",
        description=f"hone's shipped tool-use scenarios ({len(scenarios)} scenarios)",
        data={
            "seed": seed,
            "heldout": [s.name for s in scenarios if s.heldout],
            "groups": [
                {"name": s.name, "title": s.title, "description": s.description, "tools": [d.name for d in s.tools]}
                for s in scenarios
            ],
            "scenarios": [s.model_dump(mode="json") for s in scenarios],
        },
    )
