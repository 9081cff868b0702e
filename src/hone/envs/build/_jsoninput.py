"""JSON tool specs (OpenAI or BFCL style, no implementation) -> `SourceSpec` (kind "json") with a simulated backend.

Accepted: a list of `{"type": "function", "function": {...}}` (OpenAI), of `{"name", "description",
"parameters"}` (BFCL: `"type": "dict"`, `"float"`, `"tuple"`, `"any"` are normalised to JSON
Schema), or an object with such a list under `"tools"` or `"functions"`. Dotted names
(`math.factorial`) are mapped to valid tool names (`math_factorial`), one-to-one.

The simulated backend (`_simbackend.py`) keeps one table per entity (the tool name less its verb:
`create_event` and `list_events` share `event`). Writes change it by verb (create/add/book/send...
append a record with a new id; update/set/edit... update the record named by the id-like
arguments, or add it; delete/cancel/remove... mark it). Reads return the stored records that match
the arguments, else a record derived deterministically from a hash of the canonical arguments, so
repeated calls agree; reads never change the state (an extra look-up must not fail completeness).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._inputkit import add_known, build_pools, doc_examples, effect_of, make_doc, map_names, problem, slug
from ._simbackend import backend_source
from ._spec import Backend, SourceSpec, ToolDoc

_TYPES = {"dict": "object", "float": "number", "tuple": "array", "int": "integer", "bool": "boolean", "str": "string"}
_JSON_TYPES = {"object", "number", "array", "integer", "boolean", "string", "null"}
_UPDATE = {"update", "set", "edit", "change", "modify", "rename", "move", "assign", "mark", "enable", "disable"}
_DELETE = {"delete", "cancel", "remove", "revoke", "unsubscribe", "archive", "close", "reject", "refund"}
_READ = {"get", "list", "search", "find", "fetch", "retrieve", "lookup", "show", "query", "check", "view", "read"}
_MANY = {"list", "search", "find", "query", "browse"}


def tool_items(document: Any) -> list[Any] | None:
    """The list of tool specs in a JSON document, or None when it is not a tool-spec document."""
    if isinstance(document, dict):
        for key in ("tools", "functions"):
            if isinstance(document.get(key), list):
                return list(document[key])
        return None
    return list(document) if isinstance(document, list) else None


def load_json_tools(path: Path, document: Any, name: str | None = None) -> SourceSpec:
    """Read a tool-spec document into a complete `SourceSpec` with a simulated local backend."""
    items = tool_items(document)
    if not items:
        raise problem(path, "", "no tool specs found", "give a JSON list of OpenAI- or BFCL-style function specs")
    raw: list[tuple[str, str, dict[str, Any], str]] = []
    for i, item in enumerate(items, start=1):
        raw.append(_read_item(path, i, item))
    names = [r[0] for r in raw]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise problem(path, f"tool {dup!r}", "is defined twice", "give every tool a distinct name")
    mapping = map_names(names)
    tools: list[ToolDoc] = []
    known: dict[str, list[Any]] = {}
    meta: dict[str, dict[str, Any]] = {}
    for source_name, description, parameters, returns in raw:
        tool_name = mapping[source_name]
        doc = make_doc(tool_name, description, parameters, returns=returns, source_name=source_name)
        tools.append(doc)
        meta[tool_name] = _meta(doc)
        for arg, schema in parameters.get("properties", {}).items():
            values = [schema["default"]] if "default" in schema and schema["default"] is not None else []
            values += [v for v in schema.get("examples", []) if v is not None] + (
                [schema["example"]] if "example" in schema else []
            )
            add_known(known, arg, values + doc_examples(str(schema.get("description", "")), schema))
    source = backend_source("json", meta, [t.name for t in tools])
    return SourceSpec(
        kind="json",
        name=name or slug(path.stem),
        description=str(document.get("description", "")) if isinstance(document, dict) else "",
        tools=tools,
        backend=Backend(source=source, state={"tables": {}}),
        data={"pools": build_pools(tools, known), "name_map": {t.name: t.source_name or t.name for t in tools}},
    )


def _read_item(path: Path, index: int, item: Any) -> tuple[str, str, dict[str, Any], str]:
    where = f"tool #{index}"
    if isinstance(item, dict) and item.get("type") == "function" and isinstance(item.get("function"), dict):
        item = item["function"]
    if not isinstance(item, dict):
        raise problem(path, where, f"is a {type(item).__name__}, not an object", "give {name, description, parameters}")
    tool_name = item.get("name")
    if not isinstance(tool_name, str) or not tool_name.strip():
        raise problem(path, where, "has no name", "add a non-empty string `name`")
    where = f"tool #{index} ({tool_name})"
    description = item.get("description")
    if not isinstance(description, str) or not description.strip():
        raise problem(path, where, "has no description", "add a `description` saying what the tool does")
    parameters = item.get("parameters", {"type": "object", "properties": {}})
    schema = _normalise(path, where, parameters, "parameters")
    if schema.get("type") != "object":
        raise problem(path, where, "`parameters` is not an object schema", 'use {"type": "object", "properties": ...}')
    schema.setdefault("properties", {})
    required = schema.setdefault("required", [])
    if not isinstance(required, list) or any(r not in schema["properties"] for r in required):
        raise problem(path, where, f"`required` names unknown arguments ({required!r})", "list only defined properties")
    returns = item.get("returns") or item.get("response") or ""
    return tool_name, description.strip(), schema, returns if isinstance(returns, str) else json.dumps(returns)


def _normalise(path: Path, where: str, schema: Any, at: str) -> dict[str, Any]:
    """A copy of a (BFCL or JSON) schema with JSON Schema type names; a malformed one is refused."""
    if not isinstance(schema, dict):
        raise problem(path, where, f"`{at}` is not an object", "give a JSON Schema object")
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        kind = _TYPES.get(kind, kind)
        if kind == "any":
            del out["type"]
        elif kind not in _JSON_TYPES:
            raise problem(path, where, f"`{at}` has unknown type {kind!r}", "use a JSON Schema type")
        else:
            out["type"] = kind
    elif kind is not None and not isinstance(kind, list):
        raise problem(path, where, f"`{at}.type` is not a string", "use a JSON Schema type")
    if "properties" in out:
        if not isinstance(out["properties"], dict):
            raise problem(path, where, f"`{at}.properties` is not an object", "map argument names to schemas")
        out["properties"] = {
            k: _normalise(path, where, v, f"{at}.properties.{k}") for k, v in out["properties"].items()
        }
    if "items" in out:
        out["items"] = _normalise(path, where, out["items"], f"{at}.items")
    return out


def _words(name: str) -> list[str]:
    return slug(name).split("_")


def _meta(doc: ToolDoc) -> dict[str, Any]:
    words = _words(doc.source_name or doc.name)
    verb = words[0] if words[0] in _UPDATE | _DELETE | _READ or effect_of(words[0]) == "write" else ""
    rest = words[1:] if verb else words
    entity = "_".join(rest) or doc.name
    if entity.endswith("s") and not entity.endswith("ss"):
        entity = entity[:-1]
    kind = "read"
    if doc.effect == "write":
        kind = "update" if verb in _UPDATE else "delete" if verb in _DELETE else "create"
    elif verb in _MANY:
        kind = "list"
    props: Mapping[str, Any] = doc.parameters.get("properties", {})
    keys = [a for a in props if a == "id" or a.endswith("_id") or a.endswith("Id")] or [
        a for a in props if a in ("name", "title")
    ]
    return {
        "kind": kind,
        "entity": entity,
        "keys": keys,
        "required": doc.parameters.get("required", []),
        "properties": {a: {k: v for k, v in s.items() if k in ("type", "enum")} for a, s in props.items()},
    }
