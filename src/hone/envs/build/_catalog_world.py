"""Catalog worlds: typed entity fields, their value pools and the seeded records of a scenario.

A field's kind is an enum (a list), `int:lo:hi`, `money:lo:hi` (2 decimals), `num:lo:hi` (1
decimal), `date`, `time`, `ref:ENTITY` (an id of another entity) or the name of a value pool
(the scenario's own `pools` first, then `catalog/_pools.json`).
"""

from __future__ import annotations

import random
import re
from typing import Any

_RANGE = re.compile(r"^(int|money|num):(-?\d+(?:\.\d+)?):(-?\d+(?:\.\d+)?)$")


class CatalogError(ValueError):
    """A scenario file that does not describe a consistent world (a bug in the shipped data)."""


class FieldSpec:
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


class EntitySpec:
    def __init__(self, raw: dict[str, Any], common: dict[str, list[Any]], local: dict[str, list[Any]]):
        self.name: str = raw["name"]
        self.plural: str = raw.get("plural", self.name + "s")
        self.noun: str = raw.get("noun", self.name.replace("_", " "))
        self.nouns: str = raw.get("nouns", self.plural.replace("_", " "))
        self.prefix: str = raw["prefix"]
        self.count: int = raw.get("count", 12)
        self.key = f"{self.name}_id"
        self.fields = {f[0]: FieldSpec(f[0], f[1], f[2], common, local) for f in raw["fields"]}
        self.unique = set(raw.get("unique", []))

    def field(self, name: str) -> FieldSpec:
        if name not in self.fields:
            raise CatalogError(f"entity {self.name!r} has no field {name!r}")
        return self.fields[name]


def seeded_records(entities: dict[str, EntitySpec], rng: random.Random) -> dict[str, dict[str, dict[str, Any]]]:
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
