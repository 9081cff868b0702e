from __future__ import annotations

from collections.abc import Iterator

import pytest

from hone.testing import OpenAIServer


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def wide_console() -> Iterator[None]:
    """Tables are folded to the terminal width; tests read them whole."""
    from hone.cli._common import console, err_console

    old = (console.width, err_console.width)
    console.width = err_console.width = 250
    yield
    console.width, err_console.width = old
