"""A Python module of typed, documented functions -> `SourceSpec` (kind "python").

The module is never executed in hone's process (it is untrusted): everything is read from its
syntax tree. Each public top-level function (or each name in `__all__`) is a tool; its schema is
built by `Tool.from_function` over a stand-in function that carries the parsed annotations, so the
docstring parsing and schema rules are the ones `@tool` uses. The backend is the module's own
source (run in `hone.sandbox` only), plus an epilogue that turns Enum arguments' values into members.
"""

from __future__ import annotations

import ast
import inspect
import re
import typing
from pathlib import Path
from typing import Any, Literal

from hone.core import ConfigError

from .._tools import Tool
from ._inputkit import add_known, build_pools, doc_examples, effect_of, make_doc, problem, slug, state_values
from ._spec import Backend, SourceSpec, ToolDoc

_SIMPLE: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "Any": Any, "None": type(None)}
_LISTS = {"list", "List", "Sequence", "tuple", "Tuple", "Iterable"}
_DICTS = {"dict", "Dict", "Mapping"}
_MUTATORS = {
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "update",
    "setdefault",
    "clear",
    "add",
    "discard",
    "popitem",
}
_SECTION = re.compile(r"^#\s*(?:%%|[-=#]{2,})\s*(.*?)\s*[-=#]*\s*$")


class _Refused(Exception):
    """An annotation or default the reader cannot turn into a schema (the message says which)."""


def load_python(path: Path, name: str | None = None) -> SourceSpec:
    """Read `path` (a module of typed, documented functions) into a complete `SourceSpec`."""
    text = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise problem(path, f"line {exc.lineno}", f"syntax error ({exc.msg})", "fix the module") from None
    enums, members = _enums(path, tree)
    exported = _exported(tree)
    state = _state(tree)
    tools: list[ToolDoc] = []
    known: dict[str, list[Any]] = {}
    enum_args: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef) and _public(node.name, exported):
            raise problem(path, f"function {node.name!r}", "async functions are not supported", "make it a plain def")
        if not isinstance(node, ast.FunctionDef) or not _public(node.name, exported):
            continue
        doc, args_enums = _document(path, node, (enums, members), known, state is not None)
        tools.append(doc)
        if args_enums:
            enum_args[node.name] = args_enums
    if not tools:
        raise problem(path, "", "no public typed function found", "define functions (no leading _) to become tools")
    for key, values in state_values(state or {}).items():
        add_known(known, key, values)
    source = text if text.endswith("\n") else text + "\n"
    if enum_args:
        source += _epilogue(enum_args)
    module_doc = ast.get_docstring(tree) or ""
    data: dict[str, Any] = {"pools": build_pools(tools, known), "module": path.name}
    groups = _sections(text, tree, {t.name for t in tools})
    if groups:
        data["groups"] = groups
    return SourceSpec(
        kind="python",
        name=name or slug(path.stem),
        description=module_doc.strip().split("\n\n")[0],
        tools=tools,
        backend=Backend(source=source, state=state or {}),
        data=data,
    )


def _public(name: str, exported: set[str] | None) -> bool:
    return name in exported if exported is not None else not name.startswith("_")


def _exported(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return {str(x) for x in ast.literal_eval(node.value)}
            except ValueError:
                return None
    return None


def _state(tree: ast.Module) -> dict[str, Any] | None:
    """The module-level `state = {...}` when it is a literal (the source rebinds it to the same value)."""
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id == "state" and value is not None:
            try:
                found = ast.literal_eval(value)
            except ValueError:
                return {}  # computed by the module itself when it runs
            return found if isinstance(found, dict) else {}
    return None


def _enums(path: Path, tree: ast.Module) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Enum classes defined in the module: name -> member values (literals only), and "Class.MEMBER" -> value."""
    out: dict[str, list[Any]] = {}
    members: dict[str, Any] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {ast.unparse(b).split(".")[-1] for b in node.bases}
        if not bases & {"Enum", "StrEnum", "IntEnum"}:
            continue
        values: list[Any] = []
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
                try:
                    values.append(ast.literal_eval(stmt.value))
                    members.update({f"{node.name}.{t.id}": values[-1] for t in stmt.targets if isinstance(t, ast.Name)})
                except ValueError:
                    raise problem(
                        path, f"enum {node.name!r}", "a member value is not a literal", "write the values out"
                    ) from None
        out[node.name] = values
    return out, members


def _document(
    path: Path,
    node: ast.FunctionDef,
    module_enums: tuple[dict[str, list[Any]], dict[str, Any]],
    known: dict[str, list[Any]],
    has_state: bool,
) -> tuple[ToolDoc, dict[str, str]]:
    enums, members = module_enums
    where = f"function {node.name!r} (line {node.lineno})"
    docstring = ast.get_docstring(node)
    if not docstring or not docstring.strip():
        raise problem(path, where, "has no docstring", "document what it does and its arguments (Args:)")
    a = node.args
    if a.vararg or a.kwarg or a.posonlyargs:
        raise problem(path, where, "*args, **kwargs and positional-only parameters cannot be tools", "name them")
    params = a.args + a.kwonlyargs
    untyped = [p.arg for p in params if p.annotation is None]
    if untyped:
        raise problem(path, where, f"parameter(s) {', '.join(untyped)} have no type hint", "annotate every parameter")
    defaults: dict[str, ast.expr | None] = dict(zip([p.arg for p in a.args][::-1], a.defaults[::-1], strict=False))
    defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)})
    sig_params: list[inspect.Parameter] = []
    annotations: dict[str, Any] = {}
    enum_args: dict[str, str] = {}
    for p in params:
        assert p.annotation is not None
        try:
            hint = _type(p.annotation, enums, enum_args, p.arg)
        except _Refused as exc:
            raise problem(
                path,
                where,
                f"parameter {p.arg!r}: {exc}",
                "use str, int, float, bool, list, dict, Literal, Optional or an Enum of the module",
            ) from None
        default: Any = inspect.Parameter.empty
        node_default = defaults.get(p.arg)
        if node_default is not None and ast.unparse(node_default) in members:  # Format.PRINT -> "print"
            default = members[ast.unparse(node_default)]
            add_known(known, p.arg, [default])
        elif node_default is not None:
            try:
                default = ast.literal_eval(node_default)
                add_known(known, p.arg, [default] if default is not None else [])
            except ValueError:
                default = None  # a computed default: optional in the schema, the module supplies it
        annotations[p.arg] = hint
        sig_params.append(inspect.Parameter(p.arg, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint))

    def stand_in(**kwargs: Any) -> Any:  # carries the parsed signature; never called
        raise NotImplementedError

    stand_in.__signature__ = inspect.Signature(sig_params)  # type: ignore[attr-defined]
    stand_in.__annotations__ = annotations
    stand_in.__doc__ = docstring
    try:
        spec = Tool.from_function(stand_in, name=node.name).spec
    except ConfigError as exc:
        raise problem(path, where, str(exc), "simplify the parameter types") from None
    parameters = _flatten_optional(spec.parameters)
    for arg, schema in parameters.get("properties", {}).items():
        add_known(known, arg, doc_examples(str(schema.get("description", "")), schema))
    returns = _returns(docstring, node)
    if not spec.description:
        raise problem(path, where, "the docstring has no description before its sections", "add one line")
    writes = _mutates_state(node) if has_state else effect_of(node.name) == "write"
    doc = make_doc(node.name, spec.description, parameters, returns=returns, effect="write" if writes else "read")
    return doc, enum_args


def _type(expr: ast.expr, enums: dict[str, list[Any]], enum_args: dict[str, str], arg: str) -> Any:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):  # a string annotation
        try:
            return _type(ast.parse(expr.value, mode="eval").body, enums, enum_args, arg)
        except SyntaxError:
            raise _Refused(f"annotation {expr.value!r} does not parse") from None
    if isinstance(expr, ast.Constant) and expr.value is None:
        return type(None)
    head = ast.unparse(expr.value if isinstance(expr, ast.Subscript) else expr).split(".")[-1]
    if isinstance(expr, ast.Name | ast.Attribute):
        if head in _SIMPLE:
            return _SIMPLE[head]
        if head in enums:
            enum_args[arg] = head
            return Literal[tuple(enums[head])]
        if head in _LISTS:
            return list[Any]
        if head in _DICTS:
            return dict[str, Any]
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return _union((_type(expr.left, enums, enum_args, arg), _type(expr.right, enums, enum_args, arg)))
    elif isinstance(expr, ast.Subscript):
        inner = expr.slice
        items = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
        if head == "Literal":
            try:
                return Literal[tuple(ast.literal_eval(x) for x in items)]
            except ValueError:
                raise _Refused("Literal values must be literals") from None
        if head == "Optional":
            return _union((_type(items[0], enums, enum_args, arg), type(None)))
        if head == "Union":
            return _union(tuple(_type(x, enums, enum_args, arg) for x in items))
        if head in _LISTS:
            return list[_type(items[0], enums, enum_args, arg)]  # type: ignore[misc]
        if head in _DICTS and len(items) == 2:
            if ast.unparse(items[0]) != "str":
                raise _Refused("dict keys must be str (JSON objects)")
            return dict[str, _type(items[1], enums, enum_args, arg)]  # type: ignore[misc]
        if head == "Annotated":
            return _type(items[0], enums, enum_args, arg)
    raise _Refused(f"type {ast.unparse(expr)!r} is not supported")


def _union(parts: tuple[Any, ...]) -> Any:
    return typing.Union[parts]  # noqa: UP007 - built at run time from parsed parts


def _flatten_optional(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` (pydantic's Optional) -> X: tool-call schemas keep one type per argument."""
    props = schema.get("properties", {})
    for arg, prop in list(props.items()):
        options = prop.get("anyOf")
        if isinstance(options, list):
            rest = [o for o in options if o.get("type") != "null"]
            if len(rest) == 1:
                merged = {k: v for k, v in prop.items() if k != "anyOf"}
                props[arg] = {**rest[0], **merged}
        if props[arg].get("default", 0) is None:
            props[arg].pop("default")
    return schema


def _returns(docstring: str, node: ast.FunctionDef) -> str:
    lines = docstring.splitlines()
    text: list[str] = []
    inside = False
    for line in lines:
        if re.match(r"^(Returns|Yields):\s*$", line.strip()) and not line.startswith(" "):
            inside = True
            continue
        if inside:
            if re.match(r"^[A-Z][a-z]+:\s*$", line.strip()) and not line.startswith(" "):
                break
            text.append(line.strip())
    described = " ".join(t for t in text if t)
    annotated = ast.unparse(node.returns) if node.returns is not None else ""
    return f"{annotated}: {described}" if annotated and described else annotated or described


def _mutates_state(node: ast.FunctionDef) -> bool:
    """Does the function change the module's `state` (directly or through a local alias of a part of it)?"""
    aliases = {"state"}

    def rooted(expr: ast.expr) -> bool:
        while isinstance(expr, ast.Subscript | ast.Attribute | ast.Call):
            expr = expr.func if isinstance(expr, ast.Call) else expr.value
        return isinstance(expr, ast.Name) and expr.id in aliases

    for sub in ast.walk(node):
        if isinstance(sub, ast.Global) and "state" in sub.names:
            return True
        if isinstance(sub, ast.Assign) and rooted(sub.value):
            aliases.update(t.id for t in sub.targets if isinstance(t, ast.Name))
    for sub in ast.walk(node):
        targets: list[ast.expr] = []
        if isinstance(sub, ast.Assign | ast.Delete):
            targets = list(sub.targets)
        elif isinstance(sub, ast.AugAssign | ast.AnnAssign):
            targets = [sub.target]
        if any(isinstance(t, ast.Subscript | ast.Attribute) and rooted(t) for t in targets):
            return True
        if (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Attribute)
            and sub.func.attr in _MUTATORS
            and rooted(sub.func.value)
        ):
            return True
    return False


def _sections(text: str, tree: ast.Module, tools: set[str]) -> dict[str, list[str]]:
    """Scenario hints from section comments (`# --- Billing ---`, `# %% Billing`): section -> its tools."""
    marks = [(i + 1, m.group(1)) for i, line in enumerate(text.splitlines()) if (m := _SECTION.match(line.strip()))]
    marks = [(line, title) for line, title in marks if title]
    if not marks:
        return {}
    groups: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in tools:
            title = next((t for line, t in reversed(marks) if line < node.lineno), "general")
            groups.setdefault(slug(title), []).append(node.name)  # every tool in exactly one group
    return groups


def _epilogue(enum_args: dict[str, dict[str, str]]) -> str:
    lines = [
        "",
        "",
        "# Added by hone: arguments of an Enum type arrive as JSON values; pass the members on.",
        "def _hone_enum_args(fn, enums):",
        "    import functools",
        "",
        "    @functools.wraps(fn)",
        "    def wrapper(**kwargs):",
        "        for key, cls in enums.items():",
        "            value = kwargs.get(key)",
        "            if isinstance(value, list):",
        "                kwargs[key] = [cls(v) for v in value]",
        "            elif value is not None and not isinstance(value, cls):",
        "                kwargs[key] = cls(value)",
        "        return fn(**kwargs)",
        "",
        "    return wrapper",
        "",
        "",
    ]
    for fn, args in enum_args.items():
        mapping = ", ".join(f"{arg!r}: {cls}" for arg, cls in args.items())
        lines.append(f"{fn} = _hone_enum_args({fn}, {{{mapping}}})")
    return "\n".join(lines) + "\n"
