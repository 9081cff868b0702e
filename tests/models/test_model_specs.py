from pathlib import Path

import pytest

from hone.core import ConfigError, Message
from hone.models import Cached, OpenAICompatible, Replay, Scripted, models, parse_compatible, resolve_model
from hone.testing import OpenAIServer


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "HONE_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_openai_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set; export it or use openai-compatible:URL:MODEL"):
        resolve_model("openai:gpt-4o-mini")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = resolve_model("openai:gpt-4o-mini", max_concurrency=4)
    assert isinstance(model, OpenAICompatible)
    assert (model.model, model.base_url, model.api_key, model.max_concurrency) == (
        "gpt-4o-mini",
        "https://api.openai.com/v1",
        "sk-test",
        4,
    )


@pytest.mark.parametrize(
    ("rest", "url", "model"),
    [
        ("http://127.0.0.1:8000/v1:llama3:8b", "http://127.0.0.1:8000/v1", "llama3:8b"),
        ("http://localhost:8000:gpt-oss", "http://localhost:8000", "gpt-oss"),
        ("http://localhost:qwen", "http://localhost", "qwen"),
        ("https://api.together.xyz/v1:meta-llama/Llama-3-8b", "https://api.together.xyz/v1", "meta-llama/Llama-3-8b"),
        ("http://[::1]:8000/v1:org/model:q4_K_M", "http://[::1]:8000/v1", "org/model:q4_K_M"),
    ],
)
def test_openai_compatible_spec_parsing(rest: str, url: str, model: str) -> None:
    assert parse_compatible(rest) == (url, model)
    made = resolve_model(f"openai-compatible:{rest}")
    assert isinstance(made, OpenAICompatible) and (made.base_url, made.model, made.api_key) == (url, model, "EMPTY")


@pytest.mark.parametrize("rest", ["llama3", "127.0.0.1:8000/v1:m", "http://host:8000/v1"])
def test_openai_compatible_spec_errors(rest: str) -> None:
    with pytest.raises(ConfigError, match="openai-compatible:URL:MODEL"):
        resolve_model(f"openai-compatible:{rest}")


async def test_openai_compatible_spec_calls_the_server(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HONE_API_KEY", "hone-key")
    model = resolve_model(f"openai-compatible:{server.base_url}:llama3:8b", cache=tmp_path / "c.db")
    assert isinstance(model, Cached) and isinstance(model.inner, OpenAICompatible)
    assert model.inner.api_key == "hone-key"
    call = await model.generate([Message.user("What is 1 + 2?")])
    assert call.model == "llama3:8b" and server.requests[-1]["model"] == "llama3:8b"
    await model.aclose()


async def test_replay_spec(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    await Replay(cassette, Scripted(["hi"], name="rec"), mode="record").generate([Message.user("a")])
    model = resolve_model(f"replay:{cassette}")
    assert isinstance(model, Replay) and model.name == "rec"
    assert (await model.generate([Message.user("a")])).message.content == "hi"


def test_registered_name_and_import_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(models._factories, "echo-test", lambda **kw: Scripted(["echo"], **kw))
    made = resolve_model("echo-test", name="e")
    assert isinstance(made, Scripted) and made.name == "e"
    imported = resolve_model("hone.models:Scripted", replies=["x"])
    assert isinstance(imported, Scripted)
    with pytest.raises(ConfigError, match="not a ChatModel"):
        resolve_model("hone.core:Usage")


@pytest.mark.parametrize("spec", ["gpt-4o", "nonsense:thing", "hf-local:x"])
def test_unknown_spec_lists_the_forms(spec: str) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown model spec .*openai:MODEL.*openai-compatible:URL:MODEL.*replay:PATH"
    ):
        resolve_model(spec)
