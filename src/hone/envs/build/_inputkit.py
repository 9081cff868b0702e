"""What every input reader shares: reading JSON/YAML, one-line errors, tool-name mapping, effects,
request templates (`ToolDoc.utterances`) and value pools for task arguments.

Nothing here executes user code; the readers only parse text.
"""

from __future__ import annotations

import builtins
import importlib
import json
import keyword
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hone.core import ConfigError

from ._spec import TOOL_NAME, ToolDoc

_WRITE_WORDS = (
    "create add book send update set delete cancel remove insert post put patch edit change modify save "
    "register reserve assign transfer pay buy order submit schedule move rename archive enable disable "
    "start stop close open reset mark approve reject upload write append push subscribe unsubscribe "
    "invite revoke grant apply checkout purchase refund"
)
WRITE_VERBS = frozenset(_WRITE_WORDS.split())
"""Leading verbs of a tool name that change the world (the rest are reads)."""

MAX_POOL = 12
_RESERVED = frozenset(dir(builtins)) | {"state"}
_EXAMPLE = re.compile(r"(?:e\.g\.|for example|examples?:|such as)\s*,?\s*(.+?)(?:\)|$)", re.IGNORECASE)


def problem(path: str | Path, item: str, what: str, fix: str) -> ConfigError:
    """The one-line build-time error every reader raises: file, item, what is wrong, what to do."""
    where = f"{Path(path).name}: {item}" if item else Path(path).name
    return ConfigError(f"{where}: {what}; {fix}")


def read_document(path: Path) -> Any:
    """Parse a .json/.yaml/.yml file; a syntax error is one line naming the file and the position."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise problem(path, "", f"cannot read the file ({exc})", "check the path") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            yaml: Any = importlib.import_module("yaml")
        except ImportError:
            raise problem(
                path, "", "reading YAML needs PyYAML", "pip install pyyaml, or give the spec as JSON"
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise problem(path, "", f"not valid YAML{at}", "fix the syntax") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise problem(path, "", f"not valid JSON (line {exc.lineno}: {exc.msg})", "fix the syntax") from None


def slug(text: str) -> str:
    """A lower-case identifier made of the words of `text` (never empty, never starting with a digit)."""
    words = re.findall(r"[A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text))
    out = "_".join(w.lower() for w in words) or "tool"
    return f"t_{out}" if out[0].isdigit() else out


def usable_name(name: str) -> bool:
    """A valid tool name that can also be a function of a generated backend: not a keyword, a builtin
    (the backend's own code calls `dict`, `sorted`...) or `state` (the backend's global)."""
    return bool(TOOL_NAME.match(name)) and not keyword.iskeyword(name) and name not in _RESERVED


def map_names(source_names: Iterable[str]) -> dict[str, str]:
    """Source name -> usable tool name; usable names stay, others are slugged (`math.factorial` ->
    `math_factorial`, `print` -> `print_tool`); collisions get `_2`, `_3`.

    Reversible: the mapping is one-to-one (the reverse is kept in `ToolDoc.source_name`).
    """
    names = list(source_names)
    taken = {n for n in names if usable_name(n)}
    out: dict[str, str] = {}
    for name in names:
        if name in out:
            continue
        if usable_name(name):
            out[name] = name
            continue
        base = slug(name)[:58]
        base = base if usable_name(base) else f"{base}_tool"
        candidate, k = base, 2
        while candidate in taken:
            candidate, k = f"{base}_{k}", k + 1
        taken.add(candidate)
        out[name] = candidate
    return out


def effect_of(name: str) -> str:
    """'write' when the tool name starts with a verb that changes the world, else 'read'."""
    words = slug(name).split("_")
    # `math.factorial` -> math_factorial: look at every word up to the first two for the verb.
    return "write" if any(w in WRITE_VERBS for w in words[:3]) else "read"


_SELF = re.compile(
    r"^(?:this |the |a |an )?(?:function|tool|api|method|endpoint|service)\s+"
    r"(?:that |which |to |will |can |is used to )?",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])|\n")  # "the U.S. president" is one sentence


def _verb_phrase(description: str, name: str) -> str:
    """The description's first sentence as an imperative: "Gets the weather." -> "get the weather"."""
    first = _SENTENCE.split(description.strip(), maxsplit=1)[0].strip().rstrip(".!?:")
    first = _SELF.sub("", first).strip()
    if first.lower().startswith("is for "):  # "This function is for playing a file"
        first = "help with " + first[7:]
    if not first:
        first = slug(name).replace("_", " ")
    words = first.split()
    head = words[0]
    low = head.lower()
    if low in ("the", "a", "an", "all", "current"):  # a noun phrase: ask for it
        words, head, low = ["get", low, *words[1:]], "get", "get"
    if low.endswith(("ches", "shes", "sses", "xes")):
        head = head[:-2]
    elif low.endswith("ies") and len(low) > 4:
        head = head[:-3] + "y"
    elif low.endswith("s") and not low.endswith(("ss", "us", "is")) and len(low) > 3:
        head = head[:-1]
    if head.lower() == "return":
        head = "get"
    if not (len(head) > 1 and head.isupper()):
        head = head[0].lower() + head[1:]
    return " ".join([head, *words[1:]])


def _noun(arg: str, schema: Mapping[str, Any]) -> str:
    doc = str(schema.get("description", "")).strip().rstrip(".")
    doc = re.split(r"[,;(]|\s-\s", doc, maxsplit=1)[0].strip()
    words = doc.split()
    if words and words[0].lower() in ("how", "what", "which", "when", "where", "who", "whether", "if"):
        words = []
    if words and words[0].lower() in ("the", "a", "an"):
        words = words[1:]
    if 0 < len(words) <= 5:
        return " ".join(words[:1]).lower() + (" " + " ".join(words[1:]) if len(words) > 1 else "")
    return arg.replace("_", " ").strip() or arg


def utterances(name: str, description: str, parameters: Mapping[str, Any]) -> list[str]:
    """2-4 request templates with `{argument}` slots (the required arguments) that vary the wording."""
    props: Mapping[str, Any] = parameters.get("properties") or {}
    required = [a for a in parameters.get("required") or [] if a in props]
    phrase = _verb_phrase(description, name)
    nouns = [(_noun(a, props[a] if isinstance(props[a], Mapping) else {}), a) for a in required]
    if not nouns:
        return [f"Please {phrase}.", f"Could you {phrase}?", f"I need you to {phrase}."]

    def join(parts: list[str]) -> str:
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    capital = phrase[0].upper() + phrase[1:]
    return [
        f"Please {phrase} ({', '.join(f'{n}: {{{a}}}' for n, a in nouns)}).",
        f"Could you {phrase}? {join([f'the {n} is {{{a}}}' for n, a in nouns]).capitalize()}.",
        f"I need to {phrase}: use {join([f'{{{a}}} as the {n}' for n, a in nouns])}.",
        f"{capital} for {join([f'{n} {{{a}}}' for n, a in nouns])}, please.",
    ]


def make_doc(
    name: str,
    description: str,
    parameters: dict[str, Any],
    *,
    returns: str = "",
    effect: str | None = None,
    source_name: str | None = None,
) -> ToolDoc:
    """A complete `ToolDoc` (effect from the name unless given; utterances from the description and args)."""
    return ToolDoc(
        name=name,
        description=description,
        parameters=parameters,
        returns=returns,
        effect="write" if (effect or effect_of(source_name or name)) == "write" else "read",
        source_name=source_name if source_name and source_name != name else None,
        utterances=utterances(name, description, parameters),
    )


_CITIES = ["Paris", "Berlin", "Tokyo", "Lisbon", "Toronto", "Nairobi", "Sydney", "Lima"]
_PEOPLE = ["Alice Martin", "Bob Chen", "Carla Diaz", "David Okafor", "Eva Novak", "Farid Haddad"]
_GENERIC: list[tuple[str, list[Any]]] = [
    (r"e_?mail", ["alice@example.com", "bob@example.org", "carla@example.net"]),
    (r"city|location|place|destination|origin|town", _CITIES),
    (r"country", ["France", "Japan", "Brazil", "Kenya", "Canada"]),
    (r"currency", ["USD", "EUR", "GBP", "JPY"]),
    (r"lang", ["English", "French", "Spanish", "German"]),
    (r"date|day|deadline", ["2025-03-14", "2025-06-01", "2025-09-22", "2025-12-05"]),
    (r"zone", ["UTC", "Europe/Paris", "America/New_York"]),
    (r"time|hour", ["09:00", "12:30", "17:45"]),
    (r"phone", ["+1-555-0100", "+44-20-7946-0000"]),
    (r"url|link|website", ["https://example.com", "https://example.org/page"]),
    (r"name|person|user|author|customer|owner|guest|contact|recipient|assignee", _PEOPLE),
    (r"title|subject|topic", ["Quarterly review", "Team lunch", "Release plan"]),
    (r"message|text|body|content|note|comment|description", ["See you soon.", "Thanks for the update."]),
    (r"query|keyword|search|term", ["laptop", "coffee", "jazz"]),
    (r"colou?r", ["red", "green", "blue"]),
    (r"unit", ["celsius", "fahrenheit"]),
]


def generic_pool(arg: str, schema: Mapping[str, Any]) -> list[Any]:
    """Plausible values for an argument with nothing better known: by enum, then by name, then by type."""
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return list(schema["enum"])[:MAX_POOL]
    kind = schema.get("type")
    low = arg.lower()
    if kind == "boolean":
        return [True, False]
    if kind in ("integer", "number"):
        lo = schema.get("minimum", 1)
        hi = schema.get("maximum", max(lo, 0) + 20)
        base = [v for v in (1, 2, 3, 5, 7, 10, 12, 20) if lo <= v <= hi] or [lo]
        return [float(v) for v in base] if kind == "number" else base
    if kind == "array":
        items: Mapping[str, Any] = schema["items"] if isinstance(schema.get("items"), Mapping) else {}
        inner = generic_pool(arg.rstrip("s"), items)
        return [inner[:1], inner[:2]] if inner else [[]]
    if kind == "object":
        props = schema.get("properties") or {}
        req = schema.get("required") or list(props)
        obj = {k: (generic_pool(k, props[k]) or [None])[0] for k in req if isinstance(props.get(k), Mapping)}
        return [obj]
    if re.search(r"(?:^|_)ids?$|[a-z]Ids?$", arg):  # id, user_id, petId (not "paid", "valid")
        return [f"{slug(arg)[:3].upper()}{100 + i}" for i in range(4)]
    for pattern, values in _GENERIC:
        if re.search(pattern, low):
            return list(values)
    return ["alpha", "bravo", "charlie", "delta"]


def fits(value: Any, schema: Mapping[str, Any]) -> bool:
    """A shallow check that `value` has the JSON Schema type (and enum) of `schema`."""
    if isinstance(schema.get("enum"), list) and value not in schema["enum"]:
        return False
    kind = schema.get("type")
    checks: dict[str, Any] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
    }
    return kind not in checks or bool(checks[kind](value))


def state_values(state: Any) -> dict[str, list[Any]]:
    """Field name -> scalar values found anywhere in a seeded state; a dict of records also gives
    its keys under `<singular>_id` and `id` (so `users: {"u1": {...}}` feeds `user_id`)."""
    found: dict[str, list[Any]] = {}

    def add(key: str, value: Any) -> None:
        bucket = found.setdefault(key, [])
        if value not in bucket and len(bucket) < 50:
            bucket.append(value)

    def walk(node: Any, key: str | None, depth: int) -> None:
        if depth > 8:
            return
        if isinstance(node, dict):
            records = [v for v in node.values() if isinstance(v, dict)]
            if key and records and len(records) == len(node):
                singular = key[:-1] if key.endswith("s") else key
                for k in node:
                    add(f"{singular}_id", k)
                    add("id", k)
            for k, v in node.items():
                walk(v, str(k), depth + 1)
        elif isinstance(node, list):
            for v in node:
                walk(v, key, depth + 1)
        elif key is not None and isinstance(node, str | int | float | bool):
            add(key, node)

    walk(state, None, 0)
    return found


def build_pools(tools: Iterable[ToolDoc], known: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """Argument name -> values valid in this world: `known` (enums, defaults, examples, seeded records)
    that fit the argument's schema first, generic values by name and type when nothing fits.

    Tools that share an argument name share its pool; a tool for which some of the shared values
    do not fit (another type or enum) gets its own `"tool.argument"` pool, which generators prefer.
    """
    own: dict[tuple[str, str], list[Any]] = {}
    schemas: dict[tuple[str, str], Mapping[str, Any]] = {}
    pools: dict[str, list[Any]] = {}
    for doc in tools:
        props = doc.parameters.get("properties") or {}
        for arg, schema in props.items():
            schema = schema if isinstance(schema, Mapping) else {}
            values = [v for v in known.get(arg, []) if fits(v, schema)]
            if isinstance(schema.get("enum"), list):
                values += [v for v in schema["enum"] if v not in values]
            if not values:
                values = [v for v in generic_pool(arg, schema) if fits(v, schema)]
            own[doc.name, arg], schemas[doc.name, arg] = values[:MAX_POOL], schema
            bucket = pools.setdefault(arg, [])
            bucket += [v for v in values if v not in bucket][: MAX_POOL - len(bucket)]
    for (tool, arg), values in own.items():
        if values and not all(fits(v, schemas[tool, arg]) for v in pools[arg]):
            pools[f"{tool}.{arg}"] = values
    return pools


def add_known(known: dict[str, list[Any]], arg: str, values: Iterable[Any]) -> None:
    """Append values to `known[arg]` without duplicates."""
    bucket = known.setdefault(arg, [])
    for v in values:
        if v not in bucket:
            bucket.append(v)


def doc_examples(text: str, schema: Mapping[str, Any]) -> list[Any]:
    """Values a parameter's doc gives as examples ("e.g. 'Paris'", "such as 3 or 5"), typed by the schema."""
    match = _EXAMPLE.search(text)
    if not match:
        return []
    out: list[Any] = []
    for raw in re.split(r",|\bor\b|\band\b", match.group(1)):
        word = raw.strip().strip(".").strip("'\"`")
        if not word:
            continue
        try:
            value: Any = {"integer": int, "number": float}.get(str(schema.get("type", "")), str)(word)
        except ValueError:
            continue
        out.append(value)
    return out[:6]
