"""Model specs: strings such as `openai:gpt-4o-mini` resolved to `ChatModel`s."""

from __future__ import annotations

import os
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from hone.core import ConfigError, Registry

from ._base import ChatModel
from ._cache import Cached
from ._openai import OpenAICompatible
from ._replay import Replay

models: Registry[ChatModel] = Registry(kind="model", group="hone.models")
"""Named model factories; third-party packages add theirs under the `hone.models` entry point group."""

# scheme://host[:port][/path without colons] ":" MODEL (the model may contain colons).
_COMPATIBLE = re.compile(r"(?P<url>https?://(?:\[[^\]]*\]|[^/:\[\]]+)(?::\d+)?(?:/[^:]*)?):(?P<model>.+)")

_PORT_LIKE = re.compile(r"\d+(/[^:]*)?")

SPEC_FORMS = (
    "openai:MODEL",
    "openai-compatible:URL:MODEL (e.g. openai-compatible:http://127.0.0.1:8000/v1:llama3:8b)",
    "replay:PATH",
    "hf:PATH (a local Hugging Face model directory, a .gguf file or a folder holding one; "
    "options after ?: hf:PATH?tool_format=hermes&strict_tools=true)",
    "micro",
    "micro-base",
    "micro-tools",
    "micro-tools-base (the micro models take the hf: options: micro-tools?constrained_tools=true)",
    "a registered name",
    "pkg.module:factory",
)


def parse_compatible(rest: str) -> tuple[str, str]:
    """Split `URL:MODEL` (the part after `openai-compatible:`) into the base URL and the model."""
    match = _COMPATIBLE.fullmatch(rest)
    # "http://host:8000/v1" alone would read as host "http://host" and model "8000/v1".
    if match is None or _PORT_LIKE.fullmatch(match["model"]):
        raise ConfigError(
            f"cannot read openai-compatible:{rest}; expected openai-compatible:URL:MODEL with URL like "
            "http://127.0.0.1:8000/v1 (a path without colons), e.g. openai-compatible:http://127.0.0.1:8000/v1:llama3:8b"
        )
    return match["url"], match["model"]


def resolve_model(spec: str, **options: Any) -> ChatModel:
    """The `ChatModel` a spec names; `options` go to its constructor.

    Forms: `openai:MODEL` (key from `OPENAI_API_KEY`), `openai-compatible:URL:MODEL` (key
    from `HONE_API_KEY` or `OPENAI_API_KEY`, else a placeholder), `replay:PATH`, a name
    registered in `models`, or `pkg.module:factory`. The option `cache=PATH` wraps the
    model in an on-disk `Cached`. Anything else raises `ConfigError` listing the forms.
    """
    cache = options.pop("cache", None)
    model = _resolve(spec.strip(), options)
    if cache is not None:
        model = Cached(model, cache)
    return model


def _resolve(spec: str, options: dict[str, Any]) -> ChatModel:
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "openai":
        if not rest:
            raise ConfigError("openai: needs a model name, e.g. openai:gpt-4o-mini")
        return OpenAICompatible.from_env(rest, **options)
    if sep and prefix == "openai-compatible":
        url, model = parse_compatible(rest)
        return OpenAICompatible(model, base_url=url, **options)
    if sep and prefix == "replay":
        if not rest:
            raise ConfigError("replay: needs a cassette path, e.g. replay:runs/gsm8k.jsonl")
        return Replay(rest, **options)
    if sep and prefix == "hf":
        if not rest:
            raise ConfigError("hf: needs a model directory or GGUF file, e.g. hf:./checkpoints/qwen2.5-0.5b-instruct")
        where, given = hf_spec_options(rest)
        return _hf_local(where, {**given, **options})
    micro, query, _ = spec.partition("?")
    if micro in MICRO_SPECS:
        spec, given = hf_spec_options(spec, prefix="") if query else (micro, {})
        options = {**given, **options}
        from ._hf import require_train_extra

        require_train_extra()  # before the checkpoint: training it needs the extra too
        path = micro_spec_checkpoint(spec)
        if not (path / "config.json").is_file():
            env = "toolgen" if spec.startswith("micro-tools") else "arith"
            raise ConfigError(
                f"the {spec} checkpoint is missing; train it with `hone micro train --env {env}` (looked in {path})"
            )
        options.setdefault("name", spec)
        return _hf_local(path, options)
    if spec in models.names() or (sep and "." in prefix):
        made = models.get(spec)(**options)
        if not isinstance(made, ChatModel):
            raise ConfigError(f"model factory {spec!r} returned {type(made).__name__}, which is not a ChatModel")
        return made
    forms = "; ".join(SPEC_FORMS)
    known = ", ".join(models.names()) or "none"
    raise ConfigError(f"unknown model spec {spec!r}; use one of: {forms} (registered: {known})")


MICRO_SPECS = ("micro", "micro-base", "micro-tools", "micro-tools-base")


def micro_checkpoint(*, base: bool = False, tools: bool = False) -> Path:
    """Where a micro model checkpoint is: `HONE_MICRO_PATH` (`HONE_MICRO_BASE_PATH` for `base`; with `tools`,
    `HONE_MICRO_TOOLS_PATH` / `HONE_MICRO_TOOLS_BASE_PATH`), else the packaged one.

    `micro` is the trained micro model (arithmetic with a calculator); `micro-tools` reads tool
    documents (toolgen). Each `-base` is the same recipe stopped early, the weaker start `hone
    loop` improves from feedback.
    """
    stem = "HONE_MICRO_TOOLS" if tools else "HONE_MICRO"
    override = os.environ.get(f"{stem}_BASE_PATH" if base else f"{stem}_PATH")
    if override:
        return Path(override).expanduser()
    package = "micro_tools" if tools else "micro"
    return Path(str(files("hone") / "learn" / package / ("checkpoint-base" if base else "checkpoint")))


def micro_spec_checkpoint(spec: str) -> Path:
    """The checkpoint directory of one of `MICRO_SPECS`."""
    if spec not in MICRO_SPECS:
        raise ConfigError(f"{spec!r} is not a micro model; use one of {', '.join(MICRO_SPECS)}")
    return micro_checkpoint(base=spec.endswith("-base"), tools=spec.startswith("micro-tools"))


HF_SPEC_OPTIONS = ("tool_format", "strict_tools", "constrained_tools", "device", "dtype", "max_new_tokens")
"""Options an `hf:` spec may carry after `?` (`hf:DIR?tool_format=hermes&strict_tools=true`)."""


def hf_spec_options(rest: str, prefix: str = "hf:") -> tuple[str, dict[str, Any]]:
    """The path of an `hf:` spec (or a micro model's name) and its `?KEY=VALUE&...` options, typed
    (one-line `ConfigError` if bad; `prefix` is how the spec began, for the message)."""
    path, sep, query = rest.partition("?")
    if not sep:
        return rest, {}
    out: dict[str, Any] = {}
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if not eq or key not in HF_SPEC_OPTIONS:
            raise ConfigError(
                f"{prefix}{rest}: bad option {part!r}; write hf:PATH?KEY=VALUE&KEY=VALUE with KEY one of "
                + ", ".join(HF_SPEC_OPTIONS)
            )
        out[key] = value
    for key in ("strict_tools", "constrained_tools"):
        if key in out:
            flag = out[key].lower()
            if flag not in ("true", "false", "1", "0"):
                raise ConfigError(f"{prefix}{rest}: {key} must be true or false, got {out[key]!r}")
            out[key] = flag in ("true", "1")
    if "max_new_tokens" in out:
        if not out["max_new_tokens"].isdigit():
            raise ConfigError(f"{prefix}{rest}: max_new_tokens must be a whole number, got {out['max_new_tokens']!r}")
        out["max_new_tokens"] = int(out["max_new_tokens"])
    return path, out


def _hf_local(path: str | Path, options: dict[str, Any]) -> ChatModel:
    from ._hf import HFLocal, require_train_extra

    require_train_extra()
    return HFLocal(path, **options)
