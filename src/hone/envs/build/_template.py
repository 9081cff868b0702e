"""`TemplateGenerator`: the seeded, offline generator (no model; every choice comes from `rng`).

It proposes nothing the source does not already hold: scenarios come from `source.data["groups"]`
(else one scenario with every tool), documents and backends from the source (a group may bring
its own `tools`, `backend` and `pools`, which is how the `toolgen` catalog feeds it). The work is
in the requests: each atom fills a request frame with argument values drawn from the scenario's
pools, and the frame varies along several independent axes (sentence frame, opener, closer,
argument-clause order and connective, label synonyms), so one tool gets many different wordings.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hone.core import ConfigError, stable_hash

from ._spec import Atom, Backend, Call, Scenario, ScenarioDraft, SourceSpec, ToolDoc, canonical_json

TEMPLATE_VERSION = 1
"""Bumped when the wording rules change (it is part of the generator's config, so of every cache key)."""

_PREPOSITIONS = frozenset(
    [
        "of",
        "for",
        "from",
        "to",
        "with",
        "in",
        "on",
        "at",
        "by",
        "about",
        "into",
        "named",
        "called",
        "under",
        "using",
        "via",
        "where",
        "whose",
    ]
)
_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Openers for an imperative core ("get the balance ..."); each says whether it wants a question mark.
_OPENERS: tuple[tuple[str, bool], ...] = (
    ("", False),
    ("Please ", False),
    ("Could you ", True),
    ("Can you ", True),
    ("Would you ", True),
    ("I need you to ", False),
    ("I'd like you to ", False),
    ("Go ahead and ", False),
    ("Help me ", False),
    ("Quick request: ", False),
)
_CLOSERS = (".", ", please.", ". Thanks!", ". Thank you.", " for me.", " now.")
_QCLOSERS = ("?", ", please?", " for me?", "? Thanks.")
_PREFIXES = ("", "", "", "Hi! ", "Hello, ", "Quick one: ", "Hey, ")
_SUFFIXES = ("", "", "", " Thanks.", " Thank you!", " Cheers.")
_JOINERS = (" ", ", ", " and ")
# Argument clauses: how a value is attached to the request ({l} = label, {v} = value as said).
_CLAUSES = (
    "for {l} {v}",
    "with {l} {v}",
    "using {l} {v}",
    "where the {l} is {v}",
    "with the {l} set to {v}",
    "({l}: {v})",
)


def said(value: Any) -> str:
    """A value as a user would write it in a request (and as the simulated user says it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return canonical_json(value)


def words(name: str) -> str:
    """`account_id` / `accountId` -> `account id`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    return " ".join(spaced.lower().split())


def _labels(arg: str) -> list[str]:
    base = words(arg)
    out = [base]
    if base.endswith(" id"):
        out.append(base[:-3] + " ID")
    if base.endswith(" name") and len(base) > 5:
        out.append(base[:-5])
    return out


def _imperative(doc: ToolDoc) -> list[str]:
    """Verb phrases for the tool: its description's first sentence in the imperative, and its name's words."""
    out: list[str] = []
    first = re.split(r"(?<=[.!?])\s|\n", doc.description.strip(), maxsplit=1)[0].strip().rstrip(".!?")
    tokens = first.split()
    if 1 < len(tokens) <= 14:
        verb = tokens[0]
        if verb.lower().endswith("ies") and len(verb) > 4:
            verb = verb[:-3] + "y"
        elif verb.lower().endswith(("sses", "shes", "ches", "xes")):
            verb = verb[:-2]
        elif verb.lower().endswith("s") and not verb.lower().endswith("ss"):
            verb = verb[:-1]
        out.append(" ".join([verb.lower(), *tokens[1:]]))
    out.append(words(doc.name))
    return out


def _prepare(template: str) -> tuple[str, dict[str, str]]:
    """A user template and, per slot, the clause that states it (removing the clause leaves a sentence).

    Tried in order: "the <noun> is {x}", "{x} as the <noun>", "<noun>: {x}" in a list, then the slot
    with the words back to a preposition ("of account {x}"); else the slot alone.
    """
    spans: dict[str, str] = {}
    for match in _SLOT.finditer(template):
        slot = re.escape(match.group(0))
        patterns = (
            rf"\b(?:the|its|their|his|her|my|your) [\w' ]{{1,30}}? is {slot}",
            rf"{slot} as the [^,.;:?!()]+?(?=\s+and\b|[,.;:?!()]|$)",
            rf"(?:(?<=\()|(?<=, ))[^(),:]{{1,30}}: {slot}",
        )
        found = next((m.group(0) for p in patterns if (m := re.search(p, template, re.IGNORECASE))), None)
        if found is None:
            found = match.group(0)
            before = template[: match.start()].rstrip(" ").split(" ")
            taken: list[str] = []
            for word in reversed(before):
                if len(taken) >= 3 or not word or not word[-1:].isalnum():
                    break
                taken.insert(0, word)
                if word.lower() in _PREPOSITIONS:
                    found = " ".join([*taken, match.group(0)])
                    break
        spans[match.group(1)] = found
    return template, spans


class TemplateGenerator:
    """Seeded, offline proposals: scenarios, documents and backends from the source; varied requests from templates."""

    name = "template"

    def __init__(self, *, optional_share: float = 0.3, per_call: int = 2) -> None:
        self.optional_share = optional_share
        self.per_call = per_call

    @property
    def config(self) -> dict[str, Any]:
        """What, besides the name, decides the output (part of every stage's cache key)."""
        return {"templates": TEMPLATE_VERSION, "optional_share": self.optional_share, "per_call": self.per_call}

    async def decompose(self, source: SourceSpec, rng: random.Random) -> list[ScenarioDraft]:
        groups = source.data.get("groups")
        if not groups:
            return [
                ScenarioDraft(
                    name=_scenario_name(source.name),
                    title=source.name,
                    description=source.description or f"Tools of {source.name}.",
                    tool_names=[t.name for t in source.tools],
                )
            ]
        items = list(groups.items()) if isinstance(groups, Mapping) else [(None, g) for g in groups]
        drafts: list[ScenarioDraft] = []
        known = {t.name for t in source.tools}
        known |= {str(d.get("name")) for s in source.data.get("scenarios", []) for d in s.get("tools", [])}
        for key, group in items:
            if isinstance(group, Mapping):
                data = dict(group)
            elif isinstance(group, Sequence) and not isinstance(group, str) and key is not None:
                data = {"tools": list(group)}
            else:
                raise ConfigError(f"source {source.name!r}: a group must be an object, got {group!r:.80}")
            name = str(data.pop("name", key) or "")
            tool_names, own = _group_tools(source.name, name, data)
            missing = [t for t in tool_names if t not in known and t not in own]
            if missing:
                raise ConfigError(f"source {source.name!r}: group {name!r} names unknown tool {missing[0]!r}")
            drafts.append(
                ScenarioDraft(
                    name=_scenario_name(name),
                    title=str(data.pop("title", name)),
                    description=str(data.pop("description", "") or f"{name} ({source.name})."),
                    tool_names=tool_names,
                    data=data,
                )
            )
        names = [d.name for d in drafts]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ConfigError(f"source {source.name!r}: two groups are both named {dup!r}")
        return drafts

    async def document(self, source: SourceSpec, draft: ScenarioDraft, rng: random.Random) -> list[ToolDoc]:
        ready = _ready(source, draft)
        own = {d["name"]: d for d in [*ready.get("tools", []), *draft.data.get("docs", [])] if isinstance(d, Mapping)}
        by_name = {t.name: t for t in source.tools}
        return [ToolDoc.model_validate(own[n]) if n in own else by_name[n] for n in draft.tool_names]

    async def integrate(
        self, source: SourceSpec, draft: ScenarioDraft, docs: list[ToolDoc], rng: random.Random
    ) -> tuple[Backend, dict[str, list[object]]]:
        ready = _ready(source, draft)
        raw = draft.data.get("backend", ready.get("backend"))
        backend = Backend.model_validate(raw) if raw is not None else source.backend
        if backend is None:
            raise ConfigError(
                f"source {source.name!r} brings no backend for scenario {draft.name!r}: the template generator "
                "only integrates implementations the source provides (the LLM generator writes new ones)"
            )
        pools: dict[str, list[object]] = {}
        for doc in docs:  # enums and examples in the schemas are values the tools accept
            for arg, schema in doc.parameters.get("properties", {}).items():
                found = [*schema.get("enum", []), *schema.get("examples", [])]
                if found:
                    pools.setdefault(f"{doc.name}.{arg}", []).extend(found)
        for extra in (source.data.get("pools", {}), ready.get("pools", {}), draft.data.get("pools", {})):
            for key, values in extra.items():
                pools[key] = list(values)
        return backend, pools

    async def atoms(self, scenario: Scenario, n: int, rng: random.Random) -> list[Atom]:
        out: list[Atom] = []
        seen_text: set[str] = set()
        per_call: dict[str, int] = {}
        tools = [t for t in scenario.tools if _fillable(t, scenario.pools)]
        if not tools or n <= 0:
            return out
        attempts = 0
        while len(out) < n and attempts < n * 6:
            doc = tools[attempts % len(tools)]  # round robin: every tool gets requests
            attempts += 1
            arguments = self._arguments(doc, scenario.pools, rng)
            if arguments is None:
                continue
            key = canonical_json([doc.name, arguments])
            if per_call.get(key, 0) >= self.per_call:
                continue
            text, mentions, phrasing = phrase(doc, arguments, rng)
            if text in seen_text:
                continue
            seen_text.add(text)
            per_call[key] = per_call.get(key, 0) + 1
            call = Call(name=doc.name, arguments=arguments)
            out.append(
                Atom(
                    scenario=scenario.name,
                    call=call,
                    text=text,
                    mentions=mentions,
                    answer_from_result=doc.effect == "read",
                    phrasing=phrasing,
                )
            )
        return out

    async def paraphrase(self, text: str, n: int, rng: random.Random) -> list[str]:
        """Rewordings that keep the request itself: other greetings, sign-offs and politeness markers."""
        core = text.strip()
        for prefix in sorted({p for p in _PREFIXES if p}, key=len, reverse=True):
            if core.startswith(prefix):
                core = core[len(prefix) :]
                break
        outs: list[str] = []
        for _ in range(n * 4):
            if len(outs) >= n:
                break
            candidate = (rng.choice(_PREFIXES) + core + rng.choice(_SUFFIXES)).strip()
            if candidate != text and candidate not in outs:
                outs.append(candidate)
        return outs

    def _arguments(self, doc: ToolDoc, pools: Mapping[str, list[Any]], rng: random.Random) -> dict[str, Any] | None:
        props: dict[str, Any] = doc.parameters.get("properties", {})
        required = set(doc.parameters.get("required", []))
        out: dict[str, Any] = {}
        for arg, schema in props.items():
            if arg not in required and rng.random() >= self.optional_share:
                continue
            values = _pool(doc.name, arg, schema, pools)
            if values is None:
                if arg in required:
                    return None
                continue
            out[arg] = rng.choice(values) if isinstance(values, list) else values(rng)
        return out


def phrase(doc: ToolDoc, arguments: Mapping[str, Any], rng: random.Random) -> tuple[str, dict[str, str], str]:
    """One wording of a call: (text, mentions, phrasing key). Uses the doc's utterances when it has any."""
    values = {k: said(v) for k, v in arguments.items()}
    usable = [u for u in doc.utterances if set(_SLOT.findall(u)) == set(values)]
    if usable and rng.random() < 0.6:
        index = rng.randrange(len(usable))
        template, spans = _prepare(usable[index])
        text = _SLOT.sub(lambda m: values[m.group(1)], template)
        prefix, suffix = rng.choice(_PREFIXES), rng.choice(_SUFFIXES)
        mentions = {k: _SLOT.sub(lambda m: values[m.group(1)], spans[k]) for k in values}
        key = f"u{index}|{prefix}|{suffix}"
        return (_prefixed(prefix, text) + suffix).strip(), mentions, stable_hash(key, 8)
    actions = _imperative(doc)
    action = rng.choice(actions)
    clauses: list[tuple[str, str]] = []
    shape: list[str] = []
    for arg in rng.sample(list(values), len(values)):  # argument-clause order varies
        label = rng.choice(_labels(arg))
        form = rng.choice(_CLAUSES)
        clauses.append((arg, form.format(l=label, v=values[arg])))
        shape.append(f"{arg}:{form}:{label}")
    joiner = rng.choice(_JOINERS)
    body = joiner.join(c for _, c in clauses)
    frame = rng.randrange(4) if clauses else rng.choice((0, 2))
    if frame == 0:
        opener, question = rng.choice(_OPENERS)
        closer = rng.choice(_QCLOSERS if question else _CLOSERS)
        core = f"{action} {body}".strip()
        text = _cap(opener + core) + closer if opener else _cap(core) + closer
    elif frame == 1:
        text = f"{_cap(body)}: {action}{rng.choice(_CLOSERS)}"
        opener, closer = "", ""
    elif frame == 2:
        opener, closer = rng.choice(("I want to ", "I'd like to ", "I need to ", "Time to ")), "."
        text = _cap(f"{opener}{action} {body}".strip()) + closer
    else:
        opener, closer = "", rng.choice(_CLOSERS)
        text = f"{_cap(action)}, {body}{closer}"
    text = _prefixed(rng.choice(_PREFIXES), text).strip()
    mentions = {arg: clause for arg, clause in clauses}
    key = f"d{frame}|{opener}|{closer}|{action}|{joiner}|{'/'.join(shape)}"
    return text, mentions, stable_hash(key, 8)


def _prefixed(prefix: str, text: str) -> str:
    """`Hello, ` + `Could you ...` -> `Hello, could you ...` (a sentence start after a comma is lowered)."""
    return prefix + lower_first(text) if prefix.endswith(", ") else prefix + text


def lower_first(text: str) -> str:
    """Lower the first letter unless it starts an acronym, `I` or a name (`Alice`, from a value)."""
    first = text.split(" ", 1)[0]
    if first in ("I", "I'd", "I'm", "I'll", "I've") or not first[1:2].islower():
        return text
    return text[:1].lower() + text[1:]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pool(doc_name: str, arg: str, schema: Mapping[str, Any], pools: Mapping[str, list[Any]]) -> Any:
    """Values for one argument: the tool's own pool, the argument name's pool, else one the type allows."""
    for key in (f"{doc_name}.{arg}", arg):
        if pools.get(key):
            return list(pools[key])
    if "default" in schema and schema["default"] is not None:
        return [schema["default"]]
    kind = schema.get("type")
    low, high = schema.get("minimum"), schema.get("maximum")
    if kind == "integer":
        lo = int(low) if isinstance(low, int | float) else 1
        hi = int(high) if isinstance(high, int | float) else max(lo, 1) + 99
        return lambda rng: rng.randint(lo, hi)
    if kind == "boolean":
        return [True, False]
    return None  # a free string or a structure needs a pool: an invented one would only be refused


def _fillable(doc: ToolDoc, pools: Mapping[str, list[Any]]) -> bool:
    props = doc.parameters.get("properties", {})
    return all(_pool(doc.name, a, props.get(a, {}), pools) is not None for a in doc.parameters.get("required", []))


def _ready(source: SourceSpec, draft: ScenarioDraft) -> dict[str, Any]:
    """The expanded scenario the source brings for this draft (`data["scenarios"]`, as the catalog does), if any."""
    for item in source.data.get("scenarios", []):
        if isinstance(item, Mapping) and _scenario_name(str(item.get("name", ""))) == draft.name:
            return dict(item)
    return {}


def _group_tools(source: str, name: str, data: dict[str, Any]) -> tuple[list[str], set[str]]:
    raw = data.pop("tools", [])
    docs = [t for t in raw if isinstance(t, Mapping)]
    if docs:
        data["docs"] = [dict(d) for d in docs]
    names = [str(t["name"]) if isinstance(t, Mapping) else str(t) for t in raw]
    if not names:
        raise ConfigError(f"source {source!r}: group {name!r} lists no tools")
    return names, {str(d.get("name")) for d in docs}


def _scenario_name(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ConfigError(f"scenario name {name!r} has no letters or digits")
    return slug[:48]
