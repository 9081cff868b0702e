"""An OpenAPI 3.x document (JSON or YAML) -> `SourceSpec` (kind "openapi") with a local backend.

Each operation becomes a tool (its `operationId`, else a slug of `METHOD path`); path and query
parameters and the properties of a JSON request body are flattened into one JSON Schema, with local
`$ref`s resolved and `allOf` of objects merged. Header parameters are ignored (transport detail).
Resources are inferred from paths: the last literal segment is the collection (`/pets`,
`/pets/{petId}`; `/owners/{ownerId}/pets` stores `ownerId` on its records). The backend (`_simbackend.py`,
run in `hone.sandbox` only) keeps every collection as a list of records seeded from the schemas'
examples, enums and generic values: GET collection lists (query parameters that are record fields
filter, `limit`/`offset` page), GET item fetches (unknown id -> ValueError "no pet with id ..."),
POST creates, PUT/PATCH update (merge), DELETE deletes.

Anything that cannot be flattened faithfully is refused with its JSON pointer: external `$ref`,
`callbacks`, `oneOf`/`anyOf` (other than "X or null"), `allOf` of non-objects, non-JSON bodies,
cookie parameters, recursive schemas, collection-level PUT/PATCH/DELETE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hone.core import ConfigError

from ._inputkit import add_known, build_pools, doc_examples, generic_pool, make_doc, map_names, problem, slug
from ._simbackend import backend_source
from ._spec import Backend, SourceSpec, ToolDoc

_METHODS = ("get", "post", "put", "patch", "delete")
_SEEDED = 3
_NOISE = ("title", "nullable", "readOnly", "writeOnly", "xml", "externalDocs", "discriminator")
"""Schema keywords dropped from tool schemas (generated titles and such are noise in a prompt)."""


def is_openapi(document: Any) -> bool:
    return isinstance(document, dict) and ("openapi" in document or "swagger" in document)


def _pointer(*parts: str) -> str:
    return _child("#", *parts)


def _child(pointer: str, *parts: str) -> str:
    """`pointer` extended by `parts`, each escaped as RFC 6901 says (`~` -> `~0`, `/` -> `~1`)."""
    return "/".join([pointer, *(p.replace("~", "~0").replace("/", "~1") for p in parts)])


class _Reader:
    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = path
        self.doc = document

    def fail(self, pointer: str, what: str, fix: str) -> ConfigError:
        return problem(self.path, pointer, what, fix)

    def schema(self, node: Any, pointer: str, depth: int = 0) -> dict[str, Any]:
        """`node` with local $refs inlined, `allOf` merged and "X or null" unions flattened."""
        if depth > 32:
            raise self.fail(pointer, "recursive or too deeply nested schema", "flatten the schema")
        if not isinstance(node, dict):
            raise self.fail(pointer, "schema is not an object", "give a JSON Schema object")
        if "$ref" in node:
            return self.schema(self.ref(node["$ref"], pointer), str(node["$ref"]), depth + 1)
        for key in ("oneOf", "anyOf"):
            if key in node:
                options = [o for o in node[key] if not (isinstance(o, dict) and o.get("type") == "null")]
                if len(options) != 1:
                    raise self.fail(
                        f"{pointer}/{key}",
                        f"{key} with several alternatives is not supported",
                        "give one schema (or X-or-null)",
                    )
                rest = {k: v for k, v in node.items() if k != key and k not in _NOISE}
                return {**self.schema(options[0], f"{pointer}/{key}/0", depth + 1), **rest}
        out = dict(node)
        if "allOf" in out:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for i, part in enumerate(out.pop("allOf")):
                sub = self.schema(part, f"{pointer}/allOf/{i}", depth + 1)
                if sub.get("type", "object") != "object":
                    raise self.fail(
                        f"{pointer}/allOf/{i}",
                        "allOf of a non-object schema is not supported",
                        "merge the schemas by hand",
                    )
                merged["properties"].update(sub.get("properties", {}))
                merged["required"] += [r for r in sub.get("required", []) if r not in merged["required"]]
            merged["properties"].update(out.pop("properties", {}))
            merged["required"] += [r for r in out.pop("required", []) if r not in merged["required"]]
            out = {**merged, **out}
        if isinstance(out.get("properties"), dict):
            out["properties"] = {
                k: self.schema(v, _child(pointer, "properties", k), depth + 1) for k, v in out["properties"].items()
            }
        if isinstance(out.get("items"), dict):
            out["items"] = self.schema(out["items"], f"{pointer}/items", depth + 1)
        for key in _NOISE:
            out.pop(key, None)
        return out

    def ref(self, ref: Any, pointer: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise self.fail(pointer, f"external $ref {ref!r} is not supported", "inline it into #/components")
        node: Any = self.doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise self.fail(pointer, f"$ref {ref!r} points nowhere", "fix the reference")
            node = node[part]
        return node

    def deref(self, node: Any, pointer: str) -> Any:
        """A parameter / request body / response object with its own $ref followed."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            node, seen = self.ref(node["$ref"], pointer), seen + 1
            if seen > 8:
                raise self.fail(pointer, "circular $ref", "fix the reference")
        return node


def load_openapi(path: Path, document: Any, name: str | None = None) -> SourceSpec:
    """Read an OpenAPI 3.x document into a complete `SourceSpec` (one tool per operation, local backend)."""
    if not isinstance(document, dict):
        raise problem(path, "", "not an OpenAPI document", "give an object with an `openapi: 3.x` field")
    version = str(document.get("openapi", document.get("swagger", "")))
    if not version.startswith("3."):
        raise problem(path, "#/openapi", f"OpenAPI version {version!r} is not supported", "convert it to OpenAPI 3.x")
    reader = _Reader(path, document)
    paths = document.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise problem(path, "#/paths", "no paths", "add at least one operation")
    ops: list[dict[str, Any]] = []
    for route, item in paths.items():
        item = reader.deref(item, _pointer("paths", route))
        if not isinstance(item, dict):
            raise reader.fail(_pointer("paths", route), "path item is not an object", "fix the document")
        for method in item:
            if method in ("head", "options", "trace"):
                raise reader.fail(
                    _pointer("paths", route, method), f"{method.upper()} operations are not supported", "remove them"
                )
        for method in _METHODS:
            if method in item:
                ops.append(_operation(reader, route, method, item))
    mapping = map_names([op["source"] if op["operation_id"] is None else op["operation_id"] for op in ops])
    tools: list[ToolDoc] = []
    groups: dict[str, list[str]] = {}
    known: dict[str, list[Any]] = {}
    for op in ops:
        key = op["source"] if op["operation_id"] is None else op["operation_id"]
        op["tool"] = mapping[key]
        doc = make_doc(
            op["tool"],
            op["description"],
            op["schema"],
            returns=op["returns"],
            effect="read" if op["method"] == "get" else "write",
            source_name=op["source"],
        )
        tools.append(doc)
        # One group per tool (its first tag, else its collection) so every tool lands in exactly one scenario.
        groups.setdefault(slug(str(op["tags"][0])) if op["tags"] else op["collection"], []).append(doc.name)
        for arg, schema in op["schema"]["properties"].items():
            values = [schema[k] for k in ("example", "default") if k in schema] + list(schema.get("examples", []))
            add_known(known, arg, values + doc_examples(str(schema.get("description", "")), schema))
    state = _seed(reader, ops, known)
    meta = {
        op["tool"]: {
            k: op[k]
            for k in (
                "kind",
                "collection",
                "singular",
                "id_param",
                "id_field",
                "parents",
                "query",
                "body",
                "required",
                "properties",
                "id_type",
                "defaults",
            )
        }
        for op in ops
    }
    source = backend_source("openapi", meta, [t.name for t in tools])
    info: dict[str, Any] = document["info"] if isinstance(document.get("info"), dict) else {}
    data: dict[str, Any] = {
        "pools": build_pools(tools, known),
        "name_map": {t.name: t.source_name for t in tools},
        "resources": sorted({op["collection"] for op in ops}),
    }
    if any(op["tags"] for op in ops):
        data["groups"] = groups
    return SourceSpec(
        kind="openapi",
        name=name or slug(str(info.get("title") or path.stem)),
        description=str(info.get("description") or info.get("title") or ""),
        tools=tools,
        backend=Backend(source=source, state=state),
        data=data,
    )


def _operation(reader: _Reader, route: str, method: str, item: dict[str, Any]) -> dict[str, Any]:
    at = _pointer("paths", route, method)
    op = reader.deref(item[method], at)
    if not isinstance(op, dict):
        raise reader.fail(at, "operation is not an object", "fix the document")
    if "callbacks" in op:
        raise reader.fail(f"{at}/callbacks", "callbacks are not supported", "remove them")
    segments = [s for s in route.strip("/").split("/") if s]
    literal = [i for i, s in enumerate(segments) if not s.startswith("{")]
    if not literal:
        raise reader.fail(at, f"path {route!r} names no resource", "give it a literal segment such as /items")
    last = literal[-1]
    tail = segments[last + 1 :]
    if len(tail) > 1:
        raise reader.fail(at, f"path {route!r} has several parameters after its resource", "use /things/{id}")
    id_param = tail[0].strip("{}") if tail else None
    parents = [s.strip("{}") for s in segments[:last] if s.startswith("{")]
    kind = {
        "get": "fetch" if id_param else "list",
        "post": "update" if id_param else "create",
        "put": "update",
        "patch": "update",
        "delete": "delete",
    }[method]
    if kind in ("update", "delete") and not id_param:
        raise reader.fail(
            at, f"{method.upper()} on the collection {route!r} is not supported", "operate on one item (/things/{id})"
        )
    properties: dict[str, Any] = {}
    required: list[str] = []
    query: list[str] = []
    params = list(item.get("parameters", [])) + list(op.get("parameters", []))
    for i, raw in enumerate(params):
        where = f"{at}/parameters/{i}"
        param = reader.deref(raw, where)
        if not isinstance(param, dict) or "name" not in param or "in" not in param:
            raise reader.fail(where, "parameter without name or in", "fix the parameter")
        place, pname = param["in"], str(param["name"])
        if place == "cookie":
            raise reader.fail(where, f"cookie parameter {pname!r} is not supported", "drop it or make it a query one")
        if place == "header":
            continue
        if "content" in param and "schema" not in param:
            raise reader.fail(where, f"parameter {pname!r} uses `content`", "give it a `schema`")
        schema = reader.schema(param.get("schema", {"type": "string"}), f"{where}/schema")
        if param.get("description"):
            schema.setdefault("description", param["description"])
        if "example" in param:
            schema.setdefault("example", param["example"])
        properties[pname] = schema
        if param.get("required") or place == "path":
            required.append(pname)
        if place == "query":
            query.append(pname)
    body: list[str] = []
    if "requestBody" in op:
        where = f"{at}/requestBody"
        request = reader.deref(op["requestBody"], where)
        content = request.get("content", {}) if isinstance(request, dict) else {}
        media = next((m for m in content if m == "application/json" or m.endswith("+json")), None)
        if media is None:
            kinds = ", ".join(content) or "none"
            raise reader.fail(f"{where}/content", f"non-JSON request body ({kinds})", "give an application/json body")
        schema = reader.schema(content[media].get("schema", {}), _child(where, "content", media, "schema"))
        if schema.get("type", "object") != "object":
            raise reader.fail(where, "request body is not a JSON object", "wrap it in an object with properties")
        for bname, bschema in schema.get("properties", {}).items():
            if bname in properties:
                raise reader.fail(where, f"body property {bname!r} clashes with a parameter", "rename one of them")
            properties[bname] = bschema
            body.append(bname)
        required += [r for r in schema.get("required", []) if r in body and request.get("required", True)]
    description = str(op.get("summary") or op.get("description") or f"{method.upper()} {route}").strip()
    collection = slug(segments[last])
    singular = collection[:-1] if collection.endswith("s") and not collection.endswith("ss") else collection
    id_schema = properties.get(id_param or "", {})
    return {
        "operation_id": op.get("operationId"),
        "source": f"{method.upper()} {route}",
        "method": method,
        "description": description,
        "tags": list(op.get("tags", [])),
        "schema": {"type": "object", "properties": properties, "required": required},
        "returns": _returns(reader, op, at),
        "kind": kind,
        "collection": collection,
        "singular": singular.replace("_", " "),
        "id_param": id_param,
        "id_field": None,
        "id_type": "integer" if id_schema.get("type") == "integer" else "string",
        "parents": parents,
        "query": query,
        "body": body,
        "required": required,
        "properties": {k: {x: v[x] for x in ("type", "enum") if x in v} for k, v in properties.items()},
        "defaults": {b: properties[b]["default"] for b in body if properties[b].get("default") is not None},
        "item_schema": _item_schema(reader, op, at, kind, properties, body),
    }


def _json_response(reader: _Reader, op: dict[str, Any], at: str) -> tuple[str, dict[str, Any]] | None:
    for code, response in (op.get("responses") or {}).items():
        if str(code).startswith("2"):
            response = reader.deref(response, f"{at}/responses/{code}")
            content = response.get("content", {}) if isinstance(response, dict) else {}
            media = next((m for m in content if m == "application/json" or m.endswith("+json")), None)
            if media is not None and "schema" in content[media]:
                return str(code), reader.schema(
                    content[media]["schema"], _child(at, "responses", str(code), "content", media, "schema")
                )
    return None


def _returns(reader: _Reader, op: dict[str, Any], at: str) -> str:
    found = _json_response(reader, op, at)
    if found is None:
        return ""
    schema = found[1]
    if schema.get("type") == "array":
        return "a JSON list of records"
    return "a JSON " + str(schema.get("type", "value"))


def _item_schema(
    reader: _Reader, op: dict[str, Any], at: str, kind: str, properties: dict[str, Any], body: list[str]
) -> dict[str, Any]:
    found = _json_response(reader, op, at)
    if found is not None:
        schema = found[1]
        if kind == "list" and schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            return dict(schema["items"])
        if kind != "list" and schema.get("type", "object") == "object" and schema.get("properties"):
            return schema
    if kind == "create" and body:
        return {"type": "object", "properties": {b: properties[b] for b in body}}
    return {}


def _seed(reader: _Reader, ops: list[dict[str, Any]], known: dict[str, list[Any]]) -> dict[str, Any]:
    """Three records per collection, from the richest item schema seen (examples, enums, then generic values)."""
    schemas: dict[str, dict[str, Any]] = {}
    info: dict[str, dict[str, Any]] = {}
    for op in ops:
        props = op["item_schema"].get("properties", {})
        if len(props) > len(schemas.get(op["collection"], {}).get("properties", {})):
            schemas[op["collection"]] = op["item_schema"]
        if op["id_param"]:
            info.setdefault(
                op["collection"],
                {
                    "id_param": op["id_param"],
                    "id_type": op["id_type"],
                    "parents": op["parents"],
                    "singular": op["singular"],
                },
            )
    collections: dict[str, list[dict[str, Any]]] = {}
    for op in ops:
        name = op["collection"]
        facts = info.get(
            name, {"id_param": None, "id_type": "string", "parents": op["parents"], "singular": op["singular"]}
        )
        props = schemas.get(name, {}).get("properties", {})
        id_field = "id" if "id" in props or facts["id_param"] is None else facts["id_param"]
        op["id_field"] = id_field
        op["id_type"] = (
            facts["id_type"]
            if facts["id_param"]
            else ("integer" if props.get(id_field, {}).get("type") == "integer" else "string")
        )
        if name in collections:
            continue
        example = schemas.get(name, {}).get("example")
        records: list[dict[str, Any]] = []
        for i in range(_SEEDED):
            record: dict[str, Any] = dict(example) if i == 0 and isinstance(example, dict) else {}
            for field, schema in props.items():
                if field not in record:
                    record[field] = _value(field, schema, i)
            record[id_field] = i + 1 if op["id_type"] == "integer" else f"{slug(facts['singular'])}-{i + 1}"
            for parent in op["parents"]:
                record.setdefault(parent, None)
            records.append(record)
        collections[name] = records
    for name, records in collections.items():  # parents point at seeded records of the parent collection
        for op in ops:
            if op["collection"] != name:
                continue
            for parent in op["parents"]:
                owner = next((o for o in ops if o["id_param"] == parent), None)
                pool = [r[owner["id_field"]] for r in collections[owner["collection"]]] if owner else [1]
                for i, record in enumerate(records):
                    if record.get(parent) is None:
                        record[parent] = pool[i % len(pool)]
        for op in ops:
            if op["collection"] == name and op["id_param"]:
                add_known(known, op["id_param"], [r[op["id_field"]] for r in records])
        for record in records:
            for field, value in record.items():
                if isinstance(value, str | int | float | bool):
                    add_known(known, field, [value])
    for op in ops:
        op.pop("item_schema", None)
    return {"collections": collections, "next_id": {name: _SEEDED + 1 for name in collections}}


def _value(field: str, schema: dict[str, Any], i: int) -> Any:
    if "example" in schema and i == 0:
        return schema["example"]
    if isinstance(schema.get("examples"), list) and len(schema["examples"]) > i:
        return schema["examples"][i]
    if "default" in schema and i == 0:
        return schema["default"]
    pool = generic_pool(field, schema)
    return pool[i % len(pool)] if pool else None
