"""`load_source`: what `hone env build SPEC` was given -> a complete `SourceSpec`.

The kind comes from the file: `.py` is a module of typed, documented functions; a `.json`/`.yaml`
document is an OpenAPI 3 document when it has `openapi`, an FSM spec when it has `fsm` (or both
`actions` and `goals`), and a list of tool specs otherwise (OpenAI or BFCL style, or an object with
`tools`/`functions`). `kind=` overrides the guess. Every spec returned has its tools documented
(with utterances), a backend that honours the contract in `_spec.py`, and `data["pools"]`;
`data["groups"]` (scenario hints) and `data["tasks"]` (FSM reference tasks) when the input gives them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hone.core import duplicate_tool_name

from ._fsm import is_fsm, load_fsm
from ._inputkit import problem, read_document
from ._jsoninput import load_json_tools, tool_items
from ._openapi import is_openapi, load_openapi
from ._pyinput import load_python
from ._spec import SourceSpec

INPUT_KINDS = ("python", "json", "openapi", "fsm")
_DOCUMENTS = (".json", ".yaml", ".yml")


def load_source(path: str | Path, *, name: str | None = None, kind: str | None = None) -> SourceSpec:
    """Read a spec file into a `SourceSpec`; every problem is a one-line `ConfigError` naming the file and item."""
    path = Path(path)
    spec = _load(path, name, kind)
    twice = duplicate_tool_name(doc.name for doc in spec.tools)
    if twice is not None:  # a Python module may define a function twice; OpenAPI names may collide
        raise problem(path, f"tool {twice!r}", "is defined twice", "give every tool a distinct name")
    return spec


def _load(path: Path, name: str | None, kind: str | None) -> SourceSpec:
    if kind is not None and kind not in INPUT_KINDS:
        raise problem(path, "", f"unknown input kind {kind!r}", f"use one of {', '.join(INPUT_KINDS)}")
    if not path.is_file():
        raise problem(path, "", "no such file", "give the path of a .py, .json or .yaml spec")
    suffix = path.suffix.lower()
    if kind == "python" or (kind is None and suffix == ".py"):
        return load_python(path, name)
    if suffix not in _DOCUMENTS:
        raise problem(path, "", f"unknown spec file type {suffix or '(none)'!r}", "give a .py, .json, .yaml or .yml")
    document = read_document(path)
    chosen = kind or detect(document)
    if chosen is None:
        raise problem(
            path,
            "",
            "neither tool specs, an OpenAPI document nor an FSM spec",
            "see docs/env-specs.md for the formats (or pass the kind)",
        )
    if chosen == "openapi":
        return load_openapi(path, document, name)
    if chosen == "fsm":
        return load_fsm(path, document, name)
    return load_json_tools(path, document, name)


def detect(document: Any) -> str | None:
    """The input kind a parsed JSON/YAML document looks like, or None."""
    if is_openapi(document):
        return "openapi"
    if is_fsm(document):
        return "fsm"
    if tool_items(document) is not None:
        return "json"
    return None
