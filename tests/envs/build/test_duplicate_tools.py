"""A tool set naming a tool twice is refused where it enters, in one line naming the name, before any
work: a `ToolEnv`, `hone env build` inputs (a Python module defining a function twice), a built
directory's scenarios and tasks, and a request to `hone serve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hone.core import ConfigError, ToolSpec, duplicate_tool_name
from hone.envs import Tool, ToolEnv
from hone.envs.build import BuiltEnv
from hone.envs.build._inputs import load_source
from hone.testing._builtenv import write_shop_env

MODULE = '''
def get_weather(city: str) -> str:
    """Get the weather.

    Args:
        city: The city.
    """
    return "sunny"


def get_weather(town: str) -> str:
    """Get the weather again.

    Args:
        town: The town.
    """
    return "rainy"
'''


def test_duplicate_tool_name_finds_the_first_repeat() -> None:
    spec = ToolSpec(name="b")
    assert duplicate_tool_name([ToolSpec(name="a"), spec, ToolSpec(name="c"), spec]) == "b"
    assert duplicate_tool_name(["a", "b", "c"]) is None and duplicate_tool_name([]) is None


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def test_a_tool_env_with_two_tools_of_one_name_is_refused() -> None:
    class Adder(ToolEnv):
        name = "adder"

    with pytest.raises(ConfigError, match=r"^adder: two tools are named 'add'; give every tool a distinct name$"):
        Adder([Tool.from_function(add), Tool.from_function(add)])
    Adder([Tool.from_function(add), Tool.from_function(add, name="plus")])  # distinct names are fine


def test_env_build_refuses_a_module_defining_a_function_twice(tmp_path: Path) -> None:
    module = tmp_path / "weather.py"
    module.write_text(MODULE)
    with pytest.raises(ConfigError, match=r"^weather\.py: tool 'get_weather': is defined twice; give every tool"):
        load_source(module)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return write_shop_env(tmp_path / "shop")


def test_a_built_directory_with_a_scenario_naming_a_tool_twice_is_refused(shop: Path) -> None:
    BuiltEnv.load(shop)  # as written it loads
    env_file = shop / "hone_env.json"
    data = json.loads(env_file.read_text())
    scenario = data["scenarios"][0]
    scenario["tools"].append(scenario["tools"][0])
    env_file.write_text(json.dumps(data))
    name = scenario["tools"][0]["name"]
    with pytest.raises(ConfigError, match=f"scenario {scenario['name']!r} has two tools named {name!r}"):
        BuiltEnv.load(shop)


def test_a_built_task_offering_a_tool_twice_is_refused(shop: Path) -> None:
    tasks_file = shop / "tasks.jsonl"
    lines = tasks_file.read_text().splitlines()
    first = json.loads(lines[0])
    first["offered"] = [*first["offered"], first["offered"][0]]
    tasks_file.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(ConfigError, match=f"task {first['id']!r} offers {first['offered'][0]!r} twice"):
        BuiltEnv.load(shop)


def test_hone_serve_answers_400_to_tools_naming_a_function_twice() -> None:
    pytest.importorskip("fastapi")
    from hone.serve._protocol import RequestError, parse_request

    tool = {"type": "function", "function": {"name": "get_x", "parameters": {"type": "object", "properties": {}}}}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [tool, tool]}
    with pytest.raises(RequestError) as caught:
        parse_request(body)
    assert caught.value.status == 400 and caught.value.param == "tools"
    assert caught.value.message == "'tools' names the function 'get_x' twice; give every tool a distinct name"
    parse_request({**body, "tools": [tool]})
