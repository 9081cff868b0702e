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
from ._spec import Backend, Scenario, SourceSpec, ToolDoc

_AGG = {"sum": "total", "avg": "average", "max": "highest", "min": "lowest"}
_RANGE = re.compile(r"^(int|money|num):(-?\d+(?:\.\d+)?):(-?\d+(?:\.\d+)?)$")


class CatalogError(ValueError):
    """A scenario file that does not describe a consistent world (a bug in the shipped data)."""


def _read(name: str) -> Any:
    return json.loads(resources.files("hone.envs.build").joinpath("catalog", name).read_text(encoding="utf-8"))


@cache
def scenario_names() -> tuple[str, ...]:
    """The names of the shipped scenarios, sorted."""
    folder = resources.files("hone.envs.build").joinpath("catalog")
    return tuple(
        sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json") and not p.name.startswith("_"))
    )


class _Field:
    """One typed field of an entity (or one parameter of a `calc`/`code` tool)."""

    def __init__(self, name: str, kind: Any, label: str, common: dict[str, list[Any]], local: dict[str, list[Any]]):
        self.name, self.label, self.kind = name, label, kind
        self.enum: list[str] | None = list(kind) if isinstance(kind, list) else None
        self.ref: str | None = kind[4:] if isinstance(kind, str) and kind.startswith("ref:") else None
        self.range: tuple[str, float, float] | None = None
        self.pool: list[Any] | None = None
        if isinstance(kind, str) and (m := _RANGE.match(kind)):
            self.range = (m[1], float(m[2]), float(m[3]))
        elif isinstance(kind, str) and kind not in ("date", "time") and not self.ref:
            pool = local.get(kind, common.get(kind))
            if pool is None:
                raise CatalogError(f"field {name!r}: unknown kind or pool {kind!r}")
            self.pool = pool

    @property
    def json_type(self) -> str:
        if self.range:
            return "integer" if self.range[0] == "int" else "number"
        return "string"

    @property
    def numeric(self) -> bool:
        return self.range is not None

    def draw(self, rng: random.Random) -> Any:
        if self.enum:
            return rng.choice(self.enum)
        if self.range:
            kind, lo, hi = self.range
            if kind == "int":
                return rng.randint(int(lo), int(hi))
            return round(rng.uniform(lo, hi), 2 if kind == "money" else 1)
        if self.kind == "date":
            return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if self.kind == "time":
            return f"{rng.randint(7, 21):02d}:{rng.choice(('00', '15', '30', '45'))}"
        assert self.pool is not None
        return rng.choice(self.pool)

    def schema(self, description: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.json_type, "description": description}
        if self.enum:
            out["enum"] = list(self.enum)
        return out

    def samples(self, rng: random.Random, n: int = 8) -> list[Any]:
        """Values a task may pass for this field when it is not a key (new values for add/set/inc)."""
        if self.enum:
            return list(self.enum)
        if self.range:  # round numbers: what a person would type
            kind, lo, hi = self.range
            if kind == "int" and hi - lo < 30:
                return sorted({rng.randint(int(lo), int(hi)) for _ in range(n)})
            if hi - lo < 10:
                return sorted({round(rng.uniform(lo, hi), 1) for _ in range(n)})
            step = 10 ** max(0, len(str(int(hi - lo))) - 2)
            first, last = max(1, -(-int(lo) // step)), int(hi) // step
            return sorted({step * rng.randint(first, max(first, last)) for _ in range(n)})
        return [self.draw(rng) for _ in range(n)]


class _Entity:
    def __init__(self, raw: dict[str, Any], common: dict[str, list[Any]], local: dict[str, list[Any]]):
        self.name: str = raw["name"]
        self.plural: str = raw.get("plural", self.name + "s")
        self.noun: str = raw.get("noun", self.name.replace("_", " "))
        self.nouns: str = raw.get("nouns", self.plural.replace("_", " "))
        self.prefix: str = raw["prefix"]
        self.count: int = raw.get("count", 12)
        self.key = f"{self.name}_id"
        self.fields = {f[0]: _Field(f[0], f[1], f[2], common, local) for f in raw["fields"]}
        self.unique = set(raw.get("unique", []))

    def field(self, name: str) -> _Field:
        if name not in self.fields:
            raise CatalogError(f"entity {self.name!r} has no field {name!r}")
        return self.fields[name]


def _records(entities: dict[str, _Entity], rng: random.Random) -> dict[str, dict[str, dict[str, Any]]]:
    state: dict[str, dict[str, dict[str, Any]]] = {}
    for ent in entities.values():
        table: dict[str, dict[str, Any]] = {}
        for f in ent.unique:
            if len(ent.fields[f].pool or []) < ent.count:
                raise CatalogError(f"entity {ent.name!r}: pool of unique field {f!r} has fewer than {ent.count} values")
        uniques = {f: rng.sample(ent.fields[f].pool or [], ent.count) for f in ent.unique}
        # every parent gets a child first (so per-parent counts and maxima exist), then parents at random
        parents = {f.name: rng.sample(sorted(state[f.ref]), len(state[f.ref])) for f in ent.fields.values() if f.ref}
        for i in range(ent.count):
            rec: dict[str, Any] = {}
            for fname, fld in ent.fields.items():
                if fname in uniques:
                    rec[fname] = uniques[fname][i]
                elif fld.ref:
                    pool = parents[fname]
                    rec[fname] = pool[i] if i < len(pool) else rng.choice(pool)
                else:
                    rec[fname] = fld.draw(rng)
            table[f"{ent.prefix}-{101 + i}"] = rec
        state[ent.name] = table
    return state


def _fill(text: str, words: dict[str, str]) -> str:
    for key, value in words.items():
        text = text.replace(f"<{key}>", value)
    return re.sub(r"\b([Aa]) (?=[aeioAEIO])", r"\1n ", text)  # "a account" -> "an account"


class _Builder:
    """Expands one scenario file: tool documents, backend source and state, pools."""

    def __init__(self, raw: dict[str, Any], ops: dict[str, Any], common: dict[str, list[Any]], seed: int):
        self.raw, self.ops = raw, ops
        self.name: str = raw["name"]
        local = raw.get("pools", {})
        self.entities = {e["name"]: _Entity(e, common, local) for e in raw["entities"]}
        self.rng = random.Random(f"hone-catalog:{seed}:{self.name}")
        self.state = _records(self.entities, self.rng)
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

    def key_param(self, ent: _Entity, name: str | None = None, description: str = "") -> tuple[str, dict[str, Any]]:
        """A parameter holding an id of `ent` (named after the entity's key unless `name` says otherwise)."""
        example = next(iter(self.state[ent.name]))
        name = name or ent.key
        self.pool(name, sorted(self.state[ent.name]))
        return name, {"type": "string", "description": description or f"The {ent.noun} ID, like {example}."}

    def field_param(self, ent: _Entity, fld: _Field, values: str = "existing") -> tuple[str, dict[str, Any]]:
        if fld.ref:
            return self.key_param(self.entities[fld.ref], fld.name)
        existing = sorted({r[fld.name] for r in self.state[ent.name].values()}, key=str)
        if values == "existing" and not fld.numeric:
            self.pool(fld.name, existing)
        else:
            self.own[fld.name] = fld.samples(self.rng)
        return fld.name, fld.schema(f"The {fld.label} of the {ent.noun}.")

    def add(self, spec: Any) -> None:
        if isinstance(spec, str):
            spec = dict(zip(("op", "entity", "field", "by"), spec.split(), strict=False))
        op = spec["op"]
        ent = self.entities.get(spec.get("entity", ""))
        if op not in ("calc", "code") and ent is None:
            raise CatalogError(f"{self.name}: tool {spec} names no entity of the scenario")
        params: dict[str, dict[str, Any]] = {}
        words: dict[str, str] = {}
        impl: dict[str, Any] = {"op": op, "table": ent.name if ent else None}
        if ent:
            words |= {"noun": ent.noun, "nouns": ent.nouns, "key": ent.key}
        fld = ent.field(spec["field"]) if ent and spec.get("field") and op not in ("add",) else None
        if fld:
            words |= {"label": fld.label, "f": fld.name}
            impl["field"] = fld.name
        variant = op
        if op == "find":
            assert ent and fld
            name = f"find_{ent.name}"
            params[fld.name] = fld.schema(f"The {fld.label} of the {ent.noun}.")
            self.pool(fld.name, sorted({r[fld.name] for r in self.state[ent.name].values()}))
        elif op in ("get", "set", "del", "inc", "dec"):
            assert ent
            k, params[k] = self.key_param(ent)
            name = {"get": "get_{e}_{f}", "set": "set_{e}_{f}", "del": "remove_{e}"}.get(op, "")
            name = spec.get("name") or name.format(e=ent.name, f=fld.name if fld else "")
            if not name:
                raise CatalogError(f"{self.name}: an {op} tool needs a name")
            if op == "set" and fld:
                p, params[p] = self.field_param(ent, fld, "new")
                impl["check"] = field_check(fld, p)
            if op in ("inc", "dec") and fld:
                arg = spec.get("arg", "amount")
                words["arg"] = arg
                params[arg] = {
                    "type": fld.json_type,
                    "description": spec.get("arg_label", f"How much to change the {fld.label} by."),
                }
                top = int(fld.range[2] // 5) if fld.range else 20
                amounts = _Field(arg, f"int:1:{max(top, 3)}", arg, {}, {}).samples(self.rng, 6)
                self.own[arg] = amounts
                impl["arg"] = arg
        elif op in ("count", "sum", "avg", "max", "min", "top", "bottom"):
            assert ent
            by = ent.field(spec["by"]) if spec.get("by") else None
            if op != "count" and not (fld and fld.numeric):
                raise CatalogError(f"{self.name}: {op} needs a numeric field of {ent.name}")
            stem = {
                "count": f"count_{ent.plural}",
                "top": f"top_{ent.name}_by_{spec.get('field')}",
                "bottom": f"bottom_{ent.name}_by_{spec.get('field')}",
            }.get(op, f"{_AGG.get(op, op)}_{spec.get('field')}")
            joiner = "_for_" if op in ("top", "bottom") else "_by_"
            if op == "count" and fld:  # count ... FIELD = the filter
                by, fld = fld, None
            variant = op if op in ("count", "top", "bottom") else "agg"
            words["agg"] = _AGG.get(op, "")
            if by is None:
                name, variant = stem, variant + "_all"
            elif by.ref:
                rent = self.entities[by.ref]
                name = f"count_{rent.name}_{ent.plural}" if op == "count" else f"{stem}_of_{rent.name}"
                p, params[p] = self.key_param(rent, by.name)
                words |= {"by": p, "rnoun": rent.noun}
                variant += "_ref"
                impl["by"], impl["ref"] = by.name, rent.name
            else:
                name = f"{stem}{joiner}{by.name}"
                p, params[p] = self.field_param(ent, by)
                words |= {"by": p, "blabel": by.label}
                variant += "_enum"
                impl["by"], impl["check_by"] = by.name, field_check(by, p)
        elif op == "add":
            assert ent
            name = f"add_{ent.name}"
            phrase = []
            checks = []
            for fname in spec["fields"]:
                f = ent.field(fname)
                p, params[p] = self.field_param(ent, f, "new")
                checks.append((fname, field_check(f, p)))
                phrase.append(f"{f.label} {{{p}}}")
            words["fields"] = ", ".join(phrase[:-1]) + " and " + phrase[-1] if len(phrase) > 1 else phrase[0]
            impl["checks"], impl["prefix"] = checks, ent.prefix
            impl["defaults"] = {f: self._default(x) for f, x in ent.fields.items() if f not in spec["fields"]}
        elif op in ("calc", "code"):
            name = spec["name"]
            checks = []
            for p, kind, label in spec["params"]:
                f = _Field(p, kind, label, self.common, self.local)
                if f.ref:
                    _, params[p] = self.key_param(self.entities[f.ref], p, label)
                else:
                    params[p] = f.schema(label)
                    self.own[p] = f.samples(self.rng)
                checks.append((p, field_check(f, p)))
            impl |= {
                "checks": checks,
                "body": spec.get("body") or [f"return {spec['expr']}"],
                "tables": spec.get("tables", {}),
            }
        else:
            raise CatalogError(f"{self.name}: unknown operation {op!r}")
        name = spec.get("name", name)
        for arg, values in self.own.items():  # keyed `tool.arg`: the generator prefers them to the arg's pool
            self.pools[f"{name}.{arg}"] = list(dict.fromkeys(values))
        self.own = {}
        text = self.ops.get(variant, {})
        if not text and not (spec.get("description") and spec.get("utterances") and spec.get("returns")):
            raise CatalogError(f"{self.name}.{name}: a {op} tool needs its own description, returns and utterances")
        effect = "write" if op in ("add", "set", "del", "inc", "dec") else spec.get("effect", "read")
        rtype = {
            "find": "string",
            "top": "string",
            "bottom": "string",
            "del": "string",
            "add": "string",
            "count": "integer",
        }.get(op, fld.json_type if fld else "number")
        words["type"] = rtype
        utterances = spec.get("utterances") or [_fill(u, words) for u in text["utterances"]]
        doc = ToolDoc(
            name=name,
            description=spec.get("description") or _fill(text["description"], words),
            parameters={"type": "object", "properties": params, "required": list(params)},
            returns=spec.get("returns") or _fill(text["returns"], words),
            effect=effect,
            utterances=utterances,
        )
        impl |= {"name": name, "params": list(params)}
        self.docs.append(doc)
        self.impls.append(impl)

    @staticmethod
    def _default(f: _Field) -> Any:
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
