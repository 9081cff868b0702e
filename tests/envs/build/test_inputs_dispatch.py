"""`load_source`: the input kind from the file, the override, and the one-line errors for what is not a spec."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hone.core import ConfigError
from hone.envs.build._inputs import detect, load_source
from hone.envs.build._spec import TOOL_NAME, SourceSpec

SPECS = Path(__file__).parent / "specs"
FIXTURES = {
    "library.py": "python",
    "travel_tools.json": "json",
    "bfcl_math.json": "json",
    "petstore.yaml": "openapi",
    "checkout.yaml": "fsm",
}


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_every_kind_is_complete_for_the_pipeline(fixture: str) -> None:
    spec = load_source(SPECS / fixture)
    assert spec.kind == FIXTURES[fixture]
    assert SourceSpec.model_validate_json(spec.model_dump_json()) == spec  # JSON on disk round-trips
    assert spec.backend is not None and spec.tools
    for doc in spec.tools:
        assert TOOL_NAME.match(doc.name) and doc.description and 2 <= len(doc.utterances) <= 4
        assert doc.parameters["type"] == "object"
        for arg in doc.parameters["properties"]:
            assert spec.data["pools"].get(arg), (fixture, doc.name, arg)  # every argument has values to draw
        assert f"def {doc.name}(" in spec.backend.source or f"{doc.name} = " in spec.backend.source
    json.dumps(spec.backend.state)  # the initial state is JSON


def test_detect_and_override(tmp_path: Path) -> None:
    assert detect({"openapi": "3.0.0"}) == "openapi"
    assert detect({"fsm": "x"}) == "fsm" and detect({"actions": {}, "goals": {}}) == "fsm"
    assert detect([{"name": "f"}]) == "json" and detect({"functions": []}) == "json"
    assert detect({"hello": 1}) is None
    path = tmp_path / "spec.txt"
    path.write_text((SPECS / "library.py").read_text())
    assert load_source(path, kind="python", name="lib").name == "lib"


@pytest.mark.parametrize(
    ("name", "text", "kind", "expected"),
    [
        ("spec.toml", "x = 1", None, "spec.toml: unknown spec file type '.toml'; give a .py, .json, .yaml or .yml"),
        ("spec.json", '{"hello": 1}', None, "spec.json: neither tool specs, an OpenAPI document nor an FSM spec"),
        ("spec.json", "[]", "cobol", "spec.json: unknown input kind 'cobol'; use one of python, json, openapi, fsm"),
        ("spec.json", '{"openapi": "3.0.0"}', "fsm", "spec.json: variables: is missing or empty"),
    ],
)
def test_not_a_spec(tmp_path: Path, name: str, text: str, kind: str | None, expected: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_source(path, kind=kind)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nope\.py: no such file; give the path"):
        load_source(tmp_path / "nope.py")


def test_the_documented_examples_load(tmp_path: Path) -> None:
    text = (Path(__file__).parents[3] / "docs" / "env-specs.md").read_text()
    blocks = re.findall(r"```(python|json|yaml)\n(.*?)```", text, re.DOTALL)
    kinds = []
    for i, (lang, body) in enumerate(blocks):
        path = tmp_path / f"example{i}.{ {'python': 'py'}.get(lang, lang) }"
        path.write_text(body)
        spec = load_source(path)
        kinds.append(spec.kind)
        for group in spec.data.get("groups", {}).values():
            assert set(group) <= {t.name for t in spec.tools}
        if spec.kind == "fsm":
            shipped = next(t for t in spec.data["tasks"] if t["id"] == "fsm-shipped-1")
            assert [c["name"] for step in shipped["reference"] for c in step] == ["log_in", "add_item", "pay", "ship"]
    assert kinds == ["python", "json", "openapi", "fsm"]
