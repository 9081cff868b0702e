"""Model capabilities are declared by the model (its attribute, its checkpoint's config), not read from its name."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from hone.core import ConfigError
from hone.improve._defaults import default_sampling, follows_instructions
from hone.models import MICRO, Cached, Capabilities, Scripted, capabilities
from hone.models._hf import declared_capabilities


def test_the_declaration_counts_not_the_name() -> None:
    named_micro = Scripted(["ok"], name="micro-lookalike")  # declares nothing: a chat model's defaults
    assert capabilities(named_micro) == Capabilities() and follows_instructions(named_micro)
    assert default_sampling(named_micro).temperature == 1.0
    declared = Scripted(["ok"], name="gpt-4o-mini", capabilities=MICRO)
    assert not follows_instructions(declared) and default_sampling(declared).temperature == MICRO.temperature
    assert capabilities(object()) == Capabilities()  # a backend without the attribute


def test_wrappers_forward_the_inner_models_capabilities(tmp_path: Path) -> None:
    inner = Scripted(["ok"], capabilities=Capabilities(instruct=False, tools=False, context=512))
    assert capabilities(Cached(inner, tmp_path / "cache.db")) == inner.capabilities


def test_a_checkpoint_declares_them_in_its_config_else_its_template_shows_tools() -> None:
    config = SimpleNamespace(hone_capabilities={"instruct": False, "temperature": 0.7})
    got = declared_capabilities(config, SimpleNamespace(chat_template="{{ messages }}"), 1024)
    assert got == Capabilities(instruct=False, tools=True, context=1024, temperature=0.7)
    plain = SimpleNamespace()
    with_tools = declared_capabilities(
        plain, SimpleNamespace(chat_template="{% if tools %}{{ tools }}{% endif %}"), 32768
    )
    assert with_tools == Capabilities(instruct=True, tools=True, context=32768)
    assert not declared_capabilities(plain, SimpleNamespace(chat_template="{{ messages }}"), None).tools
    with pytest.raises(ConfigError, match="hone_capabilities"):
        declared_capabilities(SimpleNamespace(hone_capabilities={"instruct": "perhaps"}), SimpleNamespace(), None)


def test_the_micro_models_declare_theirs_and_trained_copies_keep_them() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from hone.learn.micro._model import new_micro_model
    from hone.learn.micro._tokenizer import build_tokenizer
    from hone.models import HFLocal, resolve_model

    for spec in ("micro", "micro-base"):
        model = resolve_model(spec)
        assert capabilities(model) == MICRO, spec
    tokenizer = build_tokenizer()
    fresh = new_micro_model(tokenizer)
    with tempfile.TemporaryDirectory() as out:
        fresh.save_pretrained(out)
        tokenizer.save_pretrained(out)
        assert capabilities(HFLocal(out, name="anything")) == MICRO  # read from config.json, whatever the name
