from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from _serve_helpers import CharTokenizer, Recorder, SamplingSpy, serving

from hone.serve import BackgroundServer


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder) -> Iterator[BackgroundServer]:
    """hone serve in a thread, serving a scripted arith model named `scripted` with a char tokenizer."""
    model = SamplingSpy(recorder, name="scripted")
    model.tokenizer = CharTokenizer()
    with serving(model) as srv:
        yield srv
