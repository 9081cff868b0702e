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
