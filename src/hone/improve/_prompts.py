"""The operators' prompts: plain files in `hone/improve/prompts/`, loaded here and nowhere else.

`Prompts()` holds the shipped texts; `Prompts(overrides)` replaces some of them, from a
mapping `{name: text}` or a directory of `NAME.md` files, so a user can read and rewrite
every instruction a strategy gives a model without touching code. The `*_short` prompts
are what models that cannot follow instructions (the micro model) see: the feedback in a
few characters, since such a model only samples with it in context.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from hone.core import ConfigError

PROMPT_NAMES = (
    "deliberate_consensus",
    "deliberate_evaluate",
    "deliberate_short",
    "evolve_guidance",
    "evolve_recombine",
    "evolve_refine",
    "evolve_revise",
    "evolve_short",
    "refine",
    "refine_short",
    "reflect",
    "reflect_short",
    "reflections",
    "rethink",
    "rethink_short",
)


def _shipped(name: str) -> str:
    return (files("hone.improve") / "prompts" / f"{name}.md").read_text(encoding="utf-8").strip()


class Prompts:
    """Named prompt templates (`str.format` fields) with optional overrides."""

    def __init__(self, overrides: Mapping[str, str] | str | Path | None = None) -> None:
        self._texts = {name: _shipped(name) for name in PROMPT_NAMES}
        if overrides is None:
            return
        if isinstance(overrides, str | Path):
            folder = Path(overrides)
            if not folder.is_dir():
                raise ConfigError(f"prompt overrides: {folder} is not a directory of NAME.md files")
            overrides = {p.stem: p.read_text(encoding="utf-8").strip() for p in folder.glob("*.md")}
        unknown = sorted(set(overrides) - set(PROMPT_NAMES))
        if unknown:
            raise ConfigError(f"unknown prompt {unknown[0]!r}; prompts: {', '.join(PROMPT_NAMES)}")
        self._texts.update(overrides)

    def text(self, name: str) -> str:
        """The raw template called `name`."""
        try:
            return self._texts[name]
        except KeyError:
            raise ConfigError(f"unknown prompt {name!r}; prompts: {', '.join(PROMPT_NAMES)}") from None

    def render(self, name: str, **fields: Any) -> str:
        """The template `name` with `fields` filled in; a missing field is a `ConfigError`."""
        try:
            return self.text(name).format(**fields)
        except KeyError as exc:
            raise ConfigError(f"prompt {name!r} needs the field {exc.args[0]!r}") from None
