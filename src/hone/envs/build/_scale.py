"""Complexity scaling: tasks of levels 1-6 from executed level-1 atoms (generator-independent, seeded).

1 single: one atom, only its tool offered.  2 choice: one atom among distractors (the scenario's
other tools, then similar tools of other scenarios on the same side of the held-out split).
3 parallel: 2-3 independent atoms (at most one write, so the final state does not depend on the
order) in one request, one step.  4 chain: atom B whose argument equals a value in read atom A's
result; B's mention of it is replaced by a reference to A's outcome, two steps.  5 ask: an atom
with one required argument's mention removed; the simulated user knows it (`hidden_facts`).
6 no tool: another scenario's request (or an off-topic one) with this scenario's tools offered.
A prompt is used once in the whole build; each scenario draws from its own seeded stream.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from hone.core import stable_hash, stable_int

from ._spec import Atom, BuiltTask, Call, Scenario, canonical_json
from ._template import lower_first, said, words

PlannedTask = tuple[BuiltTask, bool]
"""A task before verification and whether its final reply must state the last call's result."""

_CONNECTIVES = ("Also,", "In addition,", "And", "Separately,", "While you're at it,", "On top of that,", "Plus,")
_CHAIN_FRAMES = ("{a} Then, {b}", "First: {a} After that, {b}", "{a} Once you have it, {b}", "{a} Next, {b}")
_CHAIN_REFS = ("the {w} from that", "the {w} you found", "the {w} you get back", "that {w}")
_VALUE_REFS = ("the one you found", "the one from that result", "the one you get back")
_HEADS = frozenset(
    ["of", "for", "from", "to", "with", "in", "on", "at", "by", "about", "into", "under", "using", "via"]
)
_GREETING = re.compile(r"^(?:hi|hello|hey|quick one|quick request)\b[!,:.]*\s+", re.IGNORECASE)
_DANGLING = re.compile(
    r"\b(?:is|as|the|a|an|of|for|to|with|from|by|so|its|whose|named|called|use)[.,?!:;)]|[:(]\s*[.,?!)]",
    re.IGNORECASE,
)
"""A request a removed clause left broken ("... of ?", "(: )"): not used for level 5."""
_OFF_TOPIC = (
    "Write a two-line poem about the sea.",
    "What is the capital of France?",
    "Tell me a short joke about computers.",
    "Explain in one sentence what photosynthesis is.",
    "Translate 'good morning' into Spanish.",
    "Suggest a name for a grey cat.",
    "What does the word 'ephemeral' mean?",
    "Give me a tip for sleeping better.",
    "Summarise the plot of Romeo and Juliet in one sentence.",
    "How many legs does a spider have?",
)
_OFF_FRAMES = ("{t}", "Not about the tools: {t}", "Something different. {t}", "{t} No need to look anything up.")


class VerifiedAtom(BaseModel):
    """An atom whose call ran in the sandbox: its result and, for a read, the short answer it gives."""

    model_config = ConfigDict(extra="forbid")
    atom: Atom
    result: Any = None
    answer: str | None = None

    @property
    def answerable(self) -> bool:
        return not self.atom.answer_from_result or self.answer is not None


def task_id(scenario: str, level: int, prompt: str, offered: Sequence[str], reference: Any) -> str:
    """A stable id from the task's content: `<scenario>-L<level>-<hash>`."""
    return f"{scenario}-L{level}-{stable_hash([scenario, level, prompt, list(offered), reference], 12)}"


def make_task(
    scenario: str,
    level: int,
    prompt: str,
    offered: Sequence[str],
    reference: list[list[Call]],
    phrasing: str,
    hidden: Mapping[str, str] | None = None,
) -> BuiltTask:
    ref = [[c.model_dump() for c in step] for step in reference]
    return BuiltTask(
        id=task_id(scenario, level, prompt, offered, ref),
        scenario=scenario,
        level=level,
        prompt=prompt,
        offered=list(offered),
        reference=reference,
        hidden_facts=dict(hidden or {}),
        phrasing=phrasing,
    )


def scale(
    scenarios: Sequence[Scenario],
    atoms: Mapping[str, Sequence[VerifiedAtom]],
    counts: Mapping[int, int],
    *,
    seed: int,
    heldout: frozenset[str] = frozenset(),
) -> tuple[list[PlannedTask], Counter[str]]:
    """Tasks per scenario and level (`counts[level]` each, fewer where the atoms do not allow more)."""
    used: set[str] = set()
    skipped: Counter[str] = Counter()
    out: list[PlannedTask] = []
    sides = _Sides(scenarios, heldout)
    builders = {1: _single, 2: _choice, 3: _parallel, 4: _chain, 5: _ask}
    for sc in scenarios:
        rng = random.Random(stable_int(seed, "scale", sc.name))
        pool = list(atoms.get(sc.name, ()))
        rng.shuffle(pool)
        # Levels 1, 2 and 5 each use a request of their own: when there are too few, they share them.
        fresh = {lv: counts.get(lv, 0) for lv in (1, 2, 5) if counts.get(lv, 0) > 0}
        ratio = min(1.0, sum(va.answerable for va in pool) / max(1, sum(fresh.values())))
        made: dict[int, list[PlannedTask]] = {}
        for level, build in builders.items():
            want = counts.get(level, 0)
            if want > 0:
                made[level] = build(sc, pool, int(want * ratio) if level in fresh else want, rng, used, sides)
        for level in fresh:  # then top up from what the others left
            made[level] += builders[level](sc, pool, fresh[level] - len(made[level]), rng, used, sides)
        for level, got in sorted(made.items()):
            out.extend(got)
            if len(got) < counts[level]:
                skipped[f"short_level_{level}"] += counts[level] - len(got)
    for sc in scenarios:  # last: it borrows other scenarios' requests that no other task used
        want = counts.get(6, 0)
        if want > 0:
            rng = random.Random(stable_int(seed, "scale6", sc.name))
            out.extend(_no_tool(sc, want, rng, used, sides, atoms))
    return out, skipped


class _Sides:
    """Scenarios by side of the held-out split, and distractor candidates (tool names unique in the build)."""

    def __init__(self, scenarios: Sequence[Scenario], heldout: frozenset[str]) -> None:
        self.heldout = heldout
        self.by_name = {s.name: s for s in scenarios}
        names = Counter(t.name for s in scenarios for t in s.tools)
        self.unique = [(s.name, t) for s in scenarios for t in s.tools if names[t.name] == 1]
        self.tokens = {(s, t.name): _tokens(t.name + " " + t.description) for s, t in self.unique}
        self._similar: dict[tuple[str, str], list[str]] = {}

    def same_side(self, a: str, b: str) -> bool:
        return (a in self.heldout) == (b in self.heldout)

    def similar(self, sc: Scenario, tool: str) -> list[str]:
        """Tools of other scenarios on `sc`'s side, most similar to `tool` first (cached per tool)."""
        key = (sc.name, tool)
        if key not in self._similar:
            own = {t.name for t in sc.tools}
            mine = _tokens(tool + " " + sc.tool(tool).description)
            scored = [
                (-len(mine & self.tokens[(s, t.name)]) / (1 + len(mine | self.tokens[(s, t.name)])), t.name)
                for s, t in self.unique
                if s != sc.name and t.name not in own and self.same_side(s, sc.name)
            ]
            self._similar[key] = [name for _, name in sorted(scored)[:8]]
        return self._similar[key]


def _tokens(text: str) -> set[str]:
    return {w for w in words(re.sub(r"[^A-Za-z0-9_ ]", " ", text)).split() if len(w) > 2}


def _take(pool: list[VerifiedAtom], used: set[str], n: int, answerable: bool = True) -> list[VerifiedAtom]:
    got: list[VerifiedAtom] = []
    for va in pool:
        if len(got) >= n:
            break
        if va.atom.text not in used and (va.answerable or not answerable):
            used.add(va.atom.text)
            got.append(va)
    return got


def _single(
    sc: Scenario, pool: list[VerifiedAtom], n: int, rng: random.Random, used: set[str], _: _Sides
) -> list[PlannedTask]:
    return [
        (
            make_task(sc.name, 1, va.atom.text, [va.atom.call.name], [[va.atom.call]], va.atom.phrasing),
            va.atom.answer_from_result,
        )
        for va in _take(pool, used, n)
    ]


def _choice(
    sc: Scenario, pool: list[VerifiedAtom], n: int, rng: random.Random, used: set[str], sides: _Sides
) -> list[PlannedTask]:
    out: list[PlannedTask] = []
    for va in pool:
        if len(out) >= n:
            break
        if va.atom.text in used or not va.answerable:
            continue
        need = va.atom.call.name
        k = rng.randint(2, 4)
        local = [t.name for t in sc.tools if t.name != need]
        rng.shuffle(local)
        distractors = local[:k]
        if len(distractors) < k:
            distractors += sides.similar(sc, need)[: k - len(distractors)]
        if not distractors:
            continue
        used.add(va.atom.text)
        offered = [need, *distractors]
        rng.shuffle(offered)
        task = make_task(sc.name, 2, va.atom.text, offered, [[va.atom.call]], va.atom.phrasing)
        out.append((task, va.atom.answer_from_result))
    return out


def _parallel(
    sc: Scenario, pool: list[VerifiedAtom], n: int, rng: random.Random, used: set[str], _: _Sides
) -> list[PlannedTask]:
    out: list[PlannedTask] = []
    if len(pool) < 2:
        return out
    for _attempt in range(n * 4):
        if len(out) >= n:
            break
        group = rng.sample(pool, min(len(pool), rng.choice((2, 2, 3))))
        calls = [canonical_json(va.atom.call.model_dump()) for va in group]
        writes = sum(sc.tool(va.atom.call.name).effect == "write" for va in group)
        if len(set(calls)) < len(group) or writes > 1:
            continue
        parts = [group[0].atom.text]
        for va in group[1:]:
            parts.append(f"{rng.choice(_CONNECTIVES)} {_lower(_GREETING.sub('', va.atom.text))}")
        prompt = " ".join(parts)
        if prompt in used:
            continue
        used.add(prompt)
        offered = sorted({va.atom.call.name for va in group})
        rng.shuffle(offered)
        phrasing = "+".join(va.atom.phrasing for va in group)
        out.append((make_task(sc.name, 3, prompt, offered, [[va.atom.call for va in group]], phrasing), False))
    return out


def _chain(
    sc: Scenario, pool: list[VerifiedAtom], n: int, rng: random.Random, used: set[str], _: _Sides
) -> list[PlannedTask]:
    index: dict[str, list[tuple[int, str | None]]] = {}
    for i, va in enumerate(pool):
        if sc.tool(va.atom.call.name).effect != "read":
            continue
        for key, value in _offered_values(va.result):
            index.setdefault(canonical_json(value), []).append((i, key))
    pairs: list[tuple[int, int, str]] = []
    for j, vb in enumerate(pool):
        for arg, value in vb.atom.call.arguments.items():
            mention = vb.atom.mentions.get(arg)
            if not mention or mention not in vb.atom.text or not _linkable(value):
                continue
            for i, key in index.get(canonical_json(value), ()):
                a = pool[i].atom
                if i != j and a.call != vb.atom.call and _fits(key, arg, value):
                    pairs.append((i, j, arg))
    rng.shuffle(pairs)
    out: list[PlannedTask] = []
    for i, j, arg in pairs:
        if len(out) >= n:
            break
        a, b = pool[i].atom, pool[j].atom
        mention, value = b.mentions[arg], said(b.call.arguments[arg])
        head = mention.split(" ", 1)[0]
        ref = rng.choice(_CHAIN_REFS).format(w=words(arg))
        before = mention[: -len(value)] if mention.endswith(value) else None
        if head.lower() in _HEADS:
            ref = f"{head} {ref}"  # "of account X" -> "of the account id you found"
        elif before is not None and before.rstrip().endswith(("is", ":", "=", "to")):
            ref = before + rng.choice(_VALUE_REFS)  # "the id is X" -> "the id is the one you found"
        elif value in mention and before is None:
            ref = mention.replace(value, rng.choice(_VALUE_REFS), 1)  # "X as the owner"
        later = _lower(_GREETING.sub("", b.text.replace(mention, ref, 1)))
        prompt = rng.choice(_CHAIN_FRAMES).format(a=a.text, b=later)
        if prompt in used or _states(prompt, b.call.arguments[arg]):
            continue
        used.add(prompt)
        task = make_task(
            sc.name,
            4,
            prompt,
            _uniq([a.call.name, b.call.name], rng),
            [[a.call], [b.call]],
            f"{a.phrasing}>{b.phrasing}",
        )
        out.append((task, b.answer_from_result))
    return out


def _ask(
    sc: Scenario, pool: list[VerifiedAtom], n: int, rng: random.Random, used: set[str], _: _Sides
) -> list[PlannedTask]:
    out: list[PlannedTask] = []
    for va in pool:
        if len(out) >= n:
            break
        atom = va.atom
        if atom.text in used or not va.answerable:
            continue
        required = sc.tool(atom.call.name).parameters.get("required", [])
        options = [
            a
            for a in required
            if a in atom.call.arguments and atom.mentions.get(a, "") in atom.text and atom.mentions.get(a)
        ]
        if not options:
            continue
        arg = rng.choice(sorted(options))
        prompt = _tidy(atom.text.replace(atom.mentions[arg], "", 1))
        value = atom.call.arguments[arg]
        if len(prompt.split()) < 2 or prompt in used or _states(prompt, value) or _DANGLING.search(prompt):
            continue
        used.update((atom.text, prompt))
        task = make_task(
            sc.name, 5, prompt, [atom.call.name], [[atom.call]], atom.phrasing + "-ask", {arg: said(value)}
        )
        out.append((task, atom.answer_from_result))
    return out


def _no_tool(
    sc: Scenario, n: int, rng: random.Random, used: set[str], sides: _Sides, atoms: Mapping[str, Sequence[VerifiedAtom]]
) -> list[PlannedTask]:
    own = {t.name for t in sc.tools}
    others = [
        o
        for o in sorted(atoms)
        if o != sc.name
        and o in sides.by_name
        and sides.same_side(o, sc.name)
        and atoms[o]
        and not own & {t.name for t in sides.by_name[o].tools}
    ]
    rng.shuffle(others)
    texts: list[str] = []
    share = -(-2 * n // max(1, len(others)))  # a few requests from each of many scenarios, not all of one
    for other in others:
        pool, start = atoms[other], rng.randrange(len(atoms[other]))
        fresh = (pool[(start + k) % len(pool)].atom.text for k in range(len(pool)))
        texts += itertools.islice((t for t in fresh if t not in used), share)
    texts += [rng.choice(_OFF_FRAMES).format(t=t) for t in rng.sample(_OFF_TOPIC, len(_OFF_TOPIC))]
    out: list[PlannedTask] = []
    for text in texts:
        if len(out) >= n:
            break
        if text in used:
            continue
        used.add(text)
        tools = [t.name for t in sc.tools]
        offered = rng.sample(tools, min(len(tools), rng.randint(1, 3)))
        out.append((make_task(sc.name, 6, text, offered, [], "no_tool"), False))
    return out


def _offered_values(result: Any) -> list[tuple[str | None, Any]]:
    """Values a read's result offers to a later call: the scalar itself, or an object's scalar fields."""
    if _linkable(result):
        return [(None, result)]
    if isinstance(result, dict):
        return [(str(k), v) for k, v in result.items() if _linkable(v)]
    return []


def _linkable(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return 2 <= len(value) <= 80
    return isinstance(value, int)


def _fits(key: str | None, arg: str, value: Any) -> bool:
    """Whether a result field can plausibly feed `arg`: by name (`id` -> `account_id`) or, for text, by value alone."""
    if key is None:
        return isinstance(value, str) and len(value) >= 3
    k, a = words(key).split(), words(arg).split()
    if isinstance(value, int):
        return k == a or a[-len(k) :] == k or k[-len(a) :] == a
    return bool(set(k) & set(a)) or len(value) >= 4


def _states(text: str, value: Any) -> bool:
    """Whether `text` still states `value` (then the chain or the question would be trivial)."""
    return re.search(r"(?<![\w.])" + re.escape(said(value)) + r"(?![\w])", text) is not None


def _tidy(text: str) -> str:
    """The request after a clause was cut out: no empty brackets, doubled or dangling separators."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\b(and|with|for) (?:and|with|for)\b", r"\1", text)
    text = re.sub(r"\(\s*,\s*", "(", text)
    text = re.sub(r",\s*\)", ")", text)
    text = re.sub(r"\s*\(\s*\)", "", text)
    text = re.sub(r"\s+([,.?!:;)])", r"\1", text)
    text = re.sub(r"[,;]\s*:", ":", text)
    text = re.sub(r"([,:;])\s*([,.?!])", r"\2", text)
    text = re.sub(r"\s+and(?=[.,?!):]|$)", "", text)
    text = re.sub(r"^([^A-Za-z(]*)[,:;]\s*", r"\1", text)
    text = re.sub(r"([.?!:(]\s*)and\s+", r"\1", text)
    text = re.sub(r"([.?!]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    return text.strip(" ,")


def _lower(text: str) -> str:
    return lower_first(text)


def _uniq(names: list[str], rng: random.Random) -> list[str]:
    out = sorted(set(names))
    rng.shuffle(out)
    return out
