"""JSON tool specs (OpenAI and BFCL styles) as a build input, with the simulated backend run in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _inputs_sandbox import run_calls

from hone.core import ConfigError
from hone.envs.build._inputkit import map_names
from hone.envs.build._inputs import load_source

SPECS = Path(__file__).parent / "specs"


def test_openai_style_tools_effects_pools() -> None:
    spec = load_source(SPECS / "travel_tools.json")
    assert spec.kind == "json" and spec.name == "travel_tools"
    assert [(t.name, t.effect) for t in spec.tools] == [
        ("get_weather", "read"),
        ("book_hotel", "write"),
        ("list_hotels", "read"),
        ("cancel_hotel", "write"),
    ]
    assert spec.tools[0].parameters["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    pools = spec.data["pools"]
    assert pools["city"][:2] == ["Paris", "Lima"]  # the description's examples come first
    assert pools["unit"] == ["celsius", "fahrenheit"]
    assert all(1 <= n <= 14 for n in pools["nights"])  # generic ints inside minimum/maximum
    assert pools["guest_name"] and pools["id"] == ["hotel-1"]
    hotel = spec.tools[1]
    assert all("{city}" in u and "{nights}" in u and "{guest_name}" in u for u in hotel.utterances)
    assert "the how many" not in " ".join(hotel.utterances)  # a question-like doc falls back to the name


def test_bfcl_style_names_are_mapped_one_to_one_and_types_normalised() -> None:
    spec = load_source(SPECS / "bfcl_math.json")
    names = {t.source_name or t.name: t.name for t in spec.tools}
    assert names == {
        "math.factorial": "math_factorial_2",  # math_factorial is taken by the second spec
        "math_factorial": "math_factorial",
        "geometry.area_circle": "geometry_area_circle",
    }
    assert spec.data["name_map"]["math_factorial_2"] == "math.factorial"
    circle = spec.tools[2].parameters
    assert circle["type"] == "object" and circle["properties"]["radius"]["type"] == "number"
    assert spec.data["pools"]["units"] == ["meters"]  # the default
    assert map_names(["a.b", "a_b", "a-b"]) == {"a.b": "a_b_2", "a_b": "a_b", "a-b": "a_b_3"}
    # a keyword, a builtin the backend calls, or its `state` global cannot be a backend function
    assert map_names(["import", "dict", "state", "print_tool"]) == {
        "import": "import_tool",
        "dict": "dict_tool",
        "state": "state_tool",
        "print_tool": "print_tool",
    }


def test_simulated_backend_in_the_sandbox() -> None:
    spec = load_source(SPECS / "travel_tools.json")
    booked, weather, bad, cancel_unknown = run_calls(
        spec,
        [
            ("book_hotel", {"city": "Paris", "nights": 2, "guest_name": "Eva Novak"}),
            ("list_hotels", {"guest_name": "Eva Novak"}),
            ("cancel_hotel", {"id": "hotel-1"}),
            ("list_hotels", {"guest_name": "Eva Novak"}),
        ],
        [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Lima"})],
        [("book_hotel", {"city": "Paris", "nights": "two", "guest_name": "Eva Novak"})],
        [("cancel_hotel", {"id": "hotel-9"})],
    )
    assert booked.results is not None
    record = {"id": "hotel-1", "city": "Paris", "nights": 2, "guest_name": "Eva Novak"}
    assert booked.results[0] == [record] and booked.results[1] == [[record]]  # the read sees the write
    assert booked.results[3][0][0]["status"] == "deleted"
    assert booked.state == {"tables": {"hotel": [{**record, "status": "deleted"}]}}
    assert weather.results is not None
    paris, again, lima = (step[0] for step in weather.results)
    assert paris == again and paris != lima and paris["city"] == "Paris"  # deterministic, derived from the args
    assert weather.state == {"tables": {}}  # reads never change the state
    assert bad.error == "book_hotel: value_error: book_hotel: nights must be of type integer"
    assert cancel_unknown.state == {"tables": {"hotel": [{"id": "hotel-9", "status": "deleted"}]}}


def test_wrapped_list_and_missing_arguments(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.json"
    tools = [
        {
            "name": "send_message",
            "description": "Sends a message.",
            "parameters": {
                "type": "object",
                "properties": {"to": {"type": "string"}, "text": {"type": "string"}},
                "required": ["to"],
            },
        }
    ]
    path.write_text(json.dumps({"description": "Chat.", "tools": tools}))
    spec = load_source(path)
    assert spec.description == "Chat." and spec.tools[0].effect == "write"
    (missing,) = run_calls(spec, [("send_message", {"text": "hi"})])
    assert missing.error == "send_message: value_error: send_message: missing required argument(s): to"
    tools[0]["name"] = "set"  # would shadow a builtin the simulated backend uses
    path.write_text(json.dumps(tools))
    spec = load_source(path)
    assert spec.tools[0].name == "set_tool" and spec.tools[0].source_name == "set" and spec.tools[0].effect == "write"
    (renamed,) = run_calls(spec, [("set_tool", {"to": "Bob Chen"})])
    assert renamed.error is None and renamed.state == {"tables": {"set_tool": [{"id": "set_tool-1", "to": "Bob Chen"}]}}


BAD: dict[str, tuple[Any, str]] = {
    "no_name": ([{"description": "x", "parameters": {"type": "object"}}], "tool #1: has no name"),
    "no_description": ([{"name": "f", "parameters": {"type": "object"}}], "tool #1 (f): has no description"),
    "not_object": ([{"name": "f", "description": "F.", "parameters": {"type": "string"}}], "not an object schema"),
    "bad_type": (
        [{"name": "f", "description": "F.", "parameters": {"type": "dict", "properties": {"x": {"type": "text"}}}}],
        "`parameters.properties.x` has unknown type 'text'",
    ),
    "bad_required": (
        [{"name": "f", "description": "F.", "parameters": {"type": "dict", "properties": {}, "required": ["x"]}}],
        "`required` names unknown arguments",
    ),
    "bad_properties": ([{"name": "f", "description": "F.", "parameters": {"properties": []}}], "is not an object"),
    "duplicate": (
        [{"name": "f", "description": "F."}, {"name": "f", "description": "G."}],
        "tool 'f': is defined twice",
    ),
    "item": (["f"], "tool #1: is a str, not an object"),
    "empty": ([], "no tool specs found"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_specs_are_one_line_errors(tmp_path: Path, case: str) -> None:
    document, expected = BAD[case]
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as info:
        load_source(path)
    message = str(info.value)
    assert message.startswith("tools.json") and expected in message and "\n" not in message


def test_json_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text('[\n  {"name": "f",\n  "description": }\n]')
    with pytest.raises(ConfigError, match=r"^tools\.json: not valid JSON \(line 3: Expecting value\); fix the syntax$"):
        load_source(path)


BFCL = Path(__file__).parents[4] / "shared" / "data" / "bfcl"


@pytest.mark.skipif(not (BFCL / "BFCL_v4_simple_python.json").exists(), reason="no BFCL data in ../shared/data/bfcl")
def test_every_bfcl_function_loads(tmp_path: Path) -> None:
    functions: dict[str, Any] = {}
    for category in ("simple_python", "multiple", "parallel", "parallel_multiple"):
        for line in (BFCL / f"BFCL_v4_{category}.json").read_text().splitlines():
            for fn in json.loads(line)["function"]:
                functions.setdefault(fn["name"], fn)
    path = tmp_path / "bfcl.json"
    path.write_text(json.dumps(list(functions.values())))
    spec = load_source(path)
    assert len(spec.tools) == len(functions) > 700
    assert sorted(t.source_name or t.name for t in spec.tools) == sorted(functions)  # one-to-one
    pools = spec.data["pools"]
    calls = []
    for doc in spec.tools:
        assert not doc.utterances[0].lower().startswith(("please this ", "please function", "please the "))
        calls.append(
            [(doc.name, {a: (pools.get(f"{doc.name}.{a}") or pools[a])[0] for a in doc.parameters["required"]})]
        )
    assert any("." in key for key in pools)  # e.g. `unit`: an enum in one tool, free text in another
    outcomes = run_calls(spec, *calls)  # every tool accepts the values its pools offer
    assert [o.error for o in outcomes if o.error] == []
