"""Entity randomization: demonstrations whose values and tool names only copying can predict.

Trained on toolgen demonstrations as they are, the model learns the format and then settles for
plausible values: each scenario draws IDs, counts and enum values from small pools, so "a count
near 20" or "the first enum value" predicts most argument tokens and copying from the request
never pays off (1,600 steps: the ID copied, `count` 22 for a request of 12, `tier` "gold" for
"basic"; 0% on held-out tool sets). `randomize_record` rewrites one conversation so that every
argument value found in the request or a tool result becomes a fresh random string of the same
shape (letters for letters, digits for digits, case and punctuation kept), consistently in the
request, results, calls, answer and enum lists; and, for some tools, the name becomes a random
identifier in the documents, calls and error messages. Nothing but the conversation itself then
predicts those tokens, which is the skill held-out tool sets need (the `micro` model's copy
curriculum, `micro/_copy.py`, is the same idea for arithmetic).
"""

from __future__ import annotations

import copy
import json
import random
import re
import string
from collections.abc import Iterator
from typing import Any

NAME_PARTS = (1, 3)
"""A random tool name has this many `_`-joined parts (each 3-8 random lowercase letters)."""


def _shape(value: str, rng: random.Random) -> str:
    """A random string shaped like `value`: each letter a random letter of the same case, each digit
    a random digit (no leading zero where the original has none), everything else kept."""
    out = []
    for i, ch in enumerate(value):
        if ch.isdigit():
            lead = i == 0 or not value[i - 1].isdigit()
            first = lead and ch != "0" and (i + 1 < len(value) and value[i + 1].isdigit())
            out.append(rng.choice("123456789" if first else string.digits))
        elif ch.isascii() and ch.isalpha():
            out.append(rng.choice(string.ascii_uppercase if ch.isupper() else string.ascii_lowercase))
        else:
            out.append(ch)
    return "".join(out)


def _random_name(rng: random.Random) -> str:
    parts = rng.randint(*NAME_PARTS) + 1
    return "_".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8))) for _ in range(parts))


def _scalars(value: Any) -> Iterator[str]:
    """The string forms of `value`'s string and integer leaves (bools and floats are left alone)."""
    if isinstance(value, bool):
        return
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, int):
        yield str(value)
    elif isinstance(value, list):
        for v in value:
            yield from _scalars(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _scalars(v)


def _pattern(keys: list[str]) -> re.Pattern[str]:
    # Longest first, so "GM-105" is replaced whole before "105" could match inside it; a match must not
    # touch a word character on either side (no "12" inside "120", no name inside a longer name).
    alternatives = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def randomize_record(
    record: dict[str, Any], rng: random.Random, *, p_value: float = 0.9, p_name: float = 0.3
) -> dict[str, Any]:
    """A copy of a conversational record (`messages` with call arguments as JSON text, `tools` as
    OpenAI tools) with its argument values and some tool names replaced consistently.

    A value is a candidate when it is a string or integer argument of an assistant call that also
    occurs, as a whole token, in a user or tool message (so the model could have copied it); each
    candidate is replaced with probability `p_value`, each offered tool's name with `p_name`.
    Replacement covers user, tool and assistant text, call names and arguments, and tool
    parameters' `enum` lists; the system prompt and tool descriptions are left alone.
    """
    messages: list[dict[str, Any]] = copy.deepcopy(record["messages"])
    tools: list[dict[str, Any]] = copy.deepcopy(record["tools"])
    visible = " ".join(str(m.get("content") or "") for m in messages if m.get("role") in ("user", "tool"))
    mapping: dict[str, str] = {}
    seen: set[str] = set()
    for m in messages:
        for call in m.get("tool_calls") or []:
            try:
                args = json.loads(call["function"]["arguments"])
            except (json.JSONDecodeError, TypeError):
                continue  # a deliberately broken call: leave its text as it is
            for value in _scalars(args):
                if value in seen or not re.search(rf"(?<!\w){re.escape(value)}(?!\w)", visible):
                    continue
                seen.add(value)
                if rng.random() < p_value:
                    new = _shape(value, rng)
                    mapping[value] = new if new != value else _shape(value, rng)
    names = [t["function"]["name"] for t in tools]
    for name in names:
        if rng.random() < p_name:
            mapping[name] = _random_name(rng)
    if not mapping:
        return {"messages": messages, "tools": tools}
    pattern = _pattern(list(mapping))

    def sub(text: str) -> str:
        return pattern.sub(lambda m: mapping[m.group(0)], text)

    for m in messages:
        if m.get("role") != "system" and isinstance(m.get("content"), str):
            m["content"] = sub(m["content"])
        for call in m.get("tool_calls") or []:
            fn = call["function"]
            fn["name"] = mapping.get(fn["name"], fn["name"])
            if isinstance(fn.get("arguments"), str):
                fn["arguments"] = sub(fn["arguments"])
        if m.get("name"):
            m["name"] = mapping.get(m["name"], m["name"])
    for t in tools:
        fn = t["function"]
        fn["name"] = mapping.get(fn["name"], fn["name"])
        _enums(fn.get("parameters"), mapping)
    return {"messages": messages, "tools": tools}


def _enums(schema: Any, mapping: dict[str, str]) -> None:
    """Rename enum values in place, at any depth of a JSON schema."""
    if isinstance(schema, dict):
        if isinstance(schema.get("enum"), list):
            schema["enum"] = [mapping.get(v, v) if isinstance(v, str) else v for v in schema["enum"]]
        for v in schema.values():
            _enums(v, mapping)
    elif isinstance(schema, list):
        for v in schema:
            _enums(v, mapping)


def _closings() -> tuple[re.Pattern[str], re.Pattern[str], tuple[tuple[re.Pattern[str], str], ...]]:
    from hone.envs.build._demoplay import (  # the demonstrations' own phrases
        LEADS,
        NO_TOOL_REPLIES,
        QUESTIONS,
        RESULTS_LEAD,
        WRITE_REPLIES,
    )

    leads = "|".join(re.escape(lead) for lead in LEADS if lead)
    writes = "|".join(re.escape(reply) for reply in WRITE_REPLIES)
    refusals = "|".join(re.escape(reply) for reply in NO_TOOL_REPLIES)
    questions = "|".join(re.escape(q).replace(r"\{\}", f"(?P<q{i}>.+)") for i, q in enumerate(QUESTIONS))
    first_question = QUESTIONS[0].replace("{}", "{q}")
    return (
        re.compile(rf"^(?:{leads})(?=Answer: )"),
        re.compile(rf"(?:{writes}|{re.escape(RESULTS_LEAD)}.*)", re.DOTALL),
        ((re.compile(rf"(?:{refusals})"), NO_TOOL_REPLIES[0]), (re.compile(rf"(?:{questions})"), first_question)),
    )


READ_LEAD, WRITE_CLOSING, ONE_PHRASING = _closings()
"""toolgen's demonstrations close a read with one of three leads before `Answer: R` and a write with one of
three replies or `Done. Results: ...`, refuse a request no tool serves in one of three ways and ask for a missing
value in one of three (`envs.build._demoplay`). A tiny model spread the read's probability over the three leads,
so `Done` (one token) won the argmax after correct reads (greedy decoding closed `Done.` on 3 of 20 held-out
level 1-2 tasks, run G); with one closing per kind it still closed correct reads of verbless tools (`fuel_cost`,
`case_price`) with `Done.` (4 of 40, run J): it could not tell a read from a write by the name. So every closing
after tool results is `Answer: R`, and refusals and questions have one wording each."""


def _rendered(content: Any) -> str | None:
    from hone.envs.build import render_answer

    if not isinstance(content, str) or not content.strip():
        return None
    try:
        return render_answer(json.loads(content))
    except ValueError:
        return None


def canonical_closing(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with one closing for every kind of task: the reply that follows tool results ends `Answer: R`,
    R the last result as the environment's answers render it (a read's leads dropped; a write's `Done.`-style
    reply replaced, since toolgen grades a write by the state and its closing text is free). The model then
    never has to tell a read from a write to close a task. A refusal and a question for a missing value get one
    wording each (`ONE_PHRASING`). Other text (and the input) is left as it is."""
    messages = []
    last: Any = None
    for m in record["messages"]:
        content = m.get("content")
        if m.get("role") == "assistant" and isinstance(content, str) and not m.get("tool_calls"):
            content = READ_LEAD.sub("", content)
            for pattern, wording in ONE_PHRASING:
                if match := pattern.fullmatch(content):
                    content = wording.format(
                        q=next(g for g in match.groups() if g is not None) if match.groups() else ""
                    )
            if last is not None and WRITE_CLOSING.fullmatch(content) and (value := _rendered(last)) is not None:
                content = f"Answer: {value}"
            m = {**m, "content": content}
        last = m.get("content") if m.get("role") == "tool" else None
        messages.append(m)
    return {**record, "messages": messages}


KEEP_WORDS = frozenset(
    (  # noqa: SIM905 (a word list reads better as one string)
        "get find count by of id ids total set top bottom for add average highest lowest most least new list in to"
        " with and or the a an per is name"
    ).split()
)
"""Words of tool and parameter names that `swap_words` keeps: what toolgen's names share across scenarios (the
verbs and glue of `get_X_of_Y`), not what one scenario is about."""
_VOWELS, _CONSONANTS = "aeiou", "bcdfghjklmnprstvwz"


def _pseudo_word(rng: random.Random) -> str:
    """A pronounceable made-up word (2-3 syllables), so BPE splits it the way it splits unseen English words."""
    return "".join(
        rng.choice(_CONSONANTS) + rng.choice(_VOWELS) + (rng.choice(_CONSONANTS) if rng.random() < 0.4 else "")
        for _ in range(rng.randint(2, 3))
    )


def _case_like(word: str, model: str) -> str:
    if model.isupper() and len(model) > 1:
        return word.upper()
    return word.capitalize() if model[:1].isupper() else word


VERBS = frozenset(
    ("get", "find", "count", "total", "average", "highest", "lowest", "most", "least", "top", "bottom", "list", "add")
)
"""The `KEEP_WORDS` that start toolgen's names: `swap_words(p_verb=...)` may replace them too, so the first
token of a name stops being predictable without reading the documents."""


def swap_words(
    record: dict[str, Any], rng: random.Random, pool: list[str], *, p_word: float = 0.85, p_verb: float = 0.0
) -> dict[str, Any]:
    """A copy of `record` set in a new domain: each word of its tool and parameter names (not `KEEP_WORDS`, a
    trailing `s` dropped) is replaced, with probability `p_word`, by a word of `pool` or a made-up one,
    consistently (case and plural kept) in tool names, parameter names, descriptions, requests, results, calls
    and answers; the system prompt is left alone.

    Entity randomization renames values and whole tool names but leaves the scenario's words (`wine_id`, "the
    price of a case"), so the 36 training scenarios' vocabulary predicted most of each call: on their unseen
    tasks run G solved 60% of levels 1-2 (constrained), on held-out scenarios 27.5%. A swapped record can only
    be answered by reading its own documents, like a held-out scenario.

    With probability `p_verb` the record's `VERBS` are replaced too (all of them, everywhere): trained with the
    verbs kept, M's first name token went to `get`, `find` or `count` whatever the request said.
    """
    tools = record["tools"]
    candidates: set[str] = set()
    verbs = p_verb > 0 and rng.random() < p_verb
    swapped_verbs: set[str] = set()
    for t in tools:
        fn = t.get("function", t)
        names = [fn["name"], *((fn.get("parameters") or {}).get("properties") or {})]
        for name in names:
            for w in str(name).lower().split("_"):
                base = w[:-1] if w.endswith("s") and len(w) > 3 else w
                if len(base) >= 3 and base.isascii() and base.isalpha() and w not in KEEP_WORDS:
                    candidates.add(base)
                elif verbs and w in VERBS:
                    swapped_verbs.add(w)
    mapping: dict[str, str] = {}
    taken = set(candidates)
    candidates |= swapped_verbs
    for base in sorted(candidates):
        if base not in swapped_verbs and rng.random() >= p_word:
            continue
        for _ in range(20):
            new = rng.choice(pool) if pool and rng.random() < 0.5 else _pseudo_word(rng)
            if new not in taken and new not in KEEP_WORDS:
                break
        else:
            continue
        taken.add(new)
        mapping[base] = new
    if not mapping:
        return copy.deepcopy(record)
    alternatives = "|".join(re.escape(b) for b in sorted(mapping, key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z])({alternatives})(?=(?:s|es)?(?![A-Za-z]))", re.IGNORECASE)

    def sub(text: str) -> str:
        return pattern.sub(lambda m: _case_like(mapping[m.group(1).lower()], m.group(1)), text)

    messages = copy.deepcopy(record["messages"])
    for m in messages:
        if m.get("role") != "system" and isinstance(m.get("content"), str):
            m["content"] = sub(m["content"])
        for call in m.get("tool_calls") or []:
            fn = call["function"]
            fn["name"] = sub(fn["name"])
            if isinstance(fn.get("arguments"), str):
                fn["arguments"] = sub(fn["arguments"])
        if isinstance(m.get("name"), str):
            m["name"] = sub(m["name"])
    return {**record, "messages": messages, "tools": json.loads(sub(json.dumps(tools, ensure_ascii=False)))}
