"""`hone serve` as a command: ready line, real requests, clean stop on SIGTERM and Ctrl-C, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

import openai
import pytest
from _serve_helpers import CALCULATOR, ServeProcess
from typer.testing import CliRunner

from hone.cli import app

FACTORY = """
from hone.models import Scripted, call_tool


def arith():
    def reply(messages, tools):
        last = messages[-1]
        if last.role == "tool":
            return f"The answer is {last.text}."
        return call_tool("calculator", {"expression": "6 * 7"})

    return Scripted(reply, name="fixture")
"""
SPEC = "hone_serve_fixture.models:arith"


@pytest.fixture
def fixture_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A `pkg.module:factory` model spec importable from a subprocess (and from this one)."""
    package = tmp_path / "hone_serve_fixture"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_command_answers_then_stops_cleanly(fixture_path: dict[str, str], sig: int) -> None:
    args = ["--model", SPEC, "--port", "0", "--model-name", "arith-bot", "--max-body-mb", "0.5"]
    with ServeProcess(args, env=fixture_path) as served:
        assert served.name == "arith-bot" and served.url.startswith("http://127.0.0.1:")
        client = openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": "What is 6 * 7?"}]
        reply = client.chat.completions.create(model="arith-bot", messages=messages, tools=[CALCULATOR])
        call = reply.choices[0].message.tool_calls[0]
        assert json.loads(call.function.arguments) == {"expression": "6 * 7"}
        too_big = [{"role": "user", "content": "x" * (600 * 1024)}]
        with pytest.raises(openai.APIStatusError, match=r"larger than 0\.5 MB") as caught:
            client.chat.completions.create(model="arith-bot", messages=too_big)
        assert caught.value.status_code == 413
        assert served.stop(sig) == 0
        err = served.stderr()
        assert "stopped" in err and "Traceback" not in err


runner = CliRunner()


def test_port_in_use_is_a_one_line_error(fixture_path: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--model", SPEC, "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_max_body_mb_must_be_positive(value: str) -> None:
    result = runner.invoke(app, ["serve", "--model", SPEC, "--max-body-mb", value])
    assert result.exit_code == 2 and "--max-body-mb" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_model_spec_is_a_one_line_error() -> None:
    result = runner.invoke(app, ["serve", "--model", "no-such-model"])
    assert result.exit_code == 2 and "unknown model spec 'no-such-model'" in result.stderr


def test_missing_serve_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hone.serve", None)  # as if FastAPI/uvicorn were not installed
    result = runner.invoke(app, ["serve", "--model", "openai-compatible:http://127.0.0.1:9/v1:x"])
    assert result.exit_code == 2 and "pip install 'hone[serve]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
