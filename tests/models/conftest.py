import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from hone.core import Message, ToolSpec
from hone.testing import OpenAIServer

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    """A fresh mock server on a random port (arith policy)."""
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def tools() -> list[ToolSpec]:
    return [CALCULATOR]


@pytest.fixture
def question() -> list[Message]:
    return [Message.system("Use the calculator."), Message.user("What is 12 * (3 + 4)?")]


def post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST `body` and return (status, JSON body, headers), error statuses included."""
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


@pytest.fixture
def post() -> Any:
    return post_json
