from __future__ import annotations

import asyncio

import pytest

from hone.core import ConfigError, ToolError
from hone.envs import Tool, tool


def add(a: int, b: int = 2, tags: list[str] | None = None) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number,
            defaulting to two.
        tags: Ignored labels.
    """
    return a + b


def test_schema_and_description_from_function() -> None:
    t = Tool.from_function(add)
    assert t.name == "add" and t.spec.description == "Add two numbers."
    params = t.spec.parameters
    assert params["required"] == ["a"]
    assert params["additionalProperties"] is False
    assert params["properties"]["a"] == {"type": "integer", "description": "The first number."}
    assert params["properties"]["b"]["default"] == 2
    assert params["properties"]["b"]["description"] == "The second number, defaulting to two."
    assert "title" not in params and "title" not in params["properties"]["a"]


async def test_run_validates_and_stringifies() -> None:
    t = Tool.from_function(add, name="plus", description="Sum.")
    assert (t.name, t.spec.description) == ("plus", "Sum.")
    assert await t.run({"a": 1}) == "3"
    assert await t.run({"a": "4", "b": 5}) == "9"  # lax coercion of numeric strings, as pydantic does


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "missing argument 'a'"),
        ({"a": 1, "c": 3}, "unexpected argument 'c'"),
        ({"a": "one"}, "a: Input should be a valid integer"),
    ],
)
async def test_bad_arguments_are_tool_errors_naming_the_tool(arguments: dict[str, object], message: str) -> None:
    t = Tool.from_function(add)
    with pytest.raises(ToolError, match=message) as info:
        await t.run(arguments)
    assert str(info.value).startswith("add: invalid arguments:")
    assert "expected add(a: integer, b: integer?" in str(info.value)


async def test_tool_exceptions_become_tool_errors() -> None:
    @tool
    def boom(x: int) -> str:
        """Always fails."""
        raise KeyError(x)

    @tool
    def picky(x: int) -> str:
        """Refuses."""
        raise ValueError("x must be even")

    with pytest.raises(ToolError, match=r"^boom: KeyError: 3$"):
        await boom.run({"x": 3})
    with pytest.raises(ToolError, match=r"^picky: x must be even$"):
        await picky.run({"x": 3})


async def test_async_and_threaded_tools() -> None:
    @tool(name="wait", description="Sleeps.")
    async def wait_a_bit(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    @tool(in_thread=True)
    def blocking(x: int) -> str:
        """Runs in a worker thread."""
        return f"x={x}"

    assert wait_a_bit.name == "wait" and wait_a_bit.spec.description == "Sleeps."
    assert await wait_a_bit.run({"seconds": 0}) == "0.0"
    assert blocking.in_thread and await blocking.run({"x": 1}) == "x=1"
    assert blocking(x=2) == "x=2"  # still callable as the plain function


def test_unsupported_signatures_are_config_errors() -> None:
    def star(*values: int) -> int:
        return sum(values)

    def kw(**options: str) -> str:
        return ""

    for fn in (star, kw):
        with pytest.raises(ConfigError, match="must be a named"):
            Tool.from_function(fn)
