"""Configuration options: one pydantic model per strategy or environment, and the one place that
turns `KEY=VALUE` text from the CLI (`--set`, `-e`) into its typed values, with one-line errors."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections import abc
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    PydanticSchemaGenerationError,
    PydanticUserError,
    ValidationError,
    create_model,
)

from ._errors import ConfigError

M = TypeVar("M", bound=BaseModel)
_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
_SEQUENCES = (tuple, list, set, frozenset, abc.Sequence)


def _usable(hint: Any) -> Any:
    """`hint`, or `Any` where pydantic cannot validate it (a protocol, a callable): checked by the code."""
    try:
        create_model("Probe", __config__=_CONFIG, value=(hint, None))
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError, NameError):
        return Any
    return hint


def options_model(target: Any) -> type[BaseModel]:
    """The pydantic model of `target`'s options: its `Options` model if it declares one, else derived
    from its dataclass fields or its signature (so a plugin's typed parameters are checked too)."""
    return _options_model(target)


@functools.cache  # one model per class or factory
def _options_model(target: Any) -> type[BaseModel]:
    declared = getattr(target, "Options", None)
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared
    fields: dict[str, Any] = {}
    if dataclasses.is_dataclass(target) and isinstance(target, type):
        try:
            hints = typing.get_type_hints(target, include_extras=True)
        except NameError:  # an annotation names what only type checkers import: left to the code
            hints = {}
        for f in dataclasses.fields(target):
            if f.init:
                fields[f.name] = (_usable(hints.get(f.name, Any)), None)
    else:
        try:
            signature = inspect.signature(target)
            # A class: the parameters of its constructor.
            source = target.__init__ if isinstance(target, type) else target  # type: ignore[misc]
            hints = typing.get_type_hints(source, include_extras=True)
        except (TypeError, ValueError, NameError):
            return create_model(
                f"{getattr(target, '__name__', 'Options')}Options", __config__=ConfigDict(extra="allow")
            )
        takes_any = False
        for p in signature.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                takes_any = True
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                fields[p.name] = (_usable(hints.get(p.name, Any)), None)
        if takes_any:
            config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
            return create_model(f"{target.__name__}Options", __config__=config, **fields)
    # Defaults are the target's own: only options given are validated and passed on.
    return create_model(f"{getattr(target, '__name__', 'Target')}Options", __config__=_CONFIG, **fields)


def _is_sequence(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(a) for a in typing.get_args(annotation) if a is not str)
    return origin in _SEQUENCES


def parse_options(target: Any, options: Mapping[str, Any], what: str) -> dict[str, Any]:
    """`options` (text from the CLI, or typed values) checked against `target`'s options model.

    Returns the options given, as typed values. A comma-separated text becomes a list where the
    option is a sequence. Raises `ConfigError` in one line naming the option and what it accepts.
    """
    model = options_model(target)
    known = model.model_fields
    if model.model_config.get("extra") != "allow":
        unknown = sorted(set(options) - set(known))
        if unknown:
            accepted = ", ".join(known) or "none"
            raise ConfigError(f"{what} has no option {unknown[0]!r}; accepted options: {accepted}")
    data: dict[str, Any] = {}
    for key, value in options.items():
        field = known.get(key)
        if isinstance(value, str) and field is not None and _is_sequence(field.annotation):
            value = [v.strip() for v in value.split(",") if v.strip()]
        data[key] = value
    parsed = validate_options(model, data, what, shown=options)
    return {key: getattr(parsed, key) for key in options}


def validate_options(
    model: type[M], data: Mapping[str, Any], what: str, *, shown: Mapping[str, Any] | None = None
) -> M:
    """`model` built from `data`; a `ValidationError` becomes a one-line `ConfigError` naming the option."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"][:1]) or "options"
        given = (data if shown is None else shown).get(loc, err.get("input"))
        msg = str(err["msg"]).removeprefix("Value error, ")
        msg = msg[0].lower() + msg[1:] if msg else msg
        raise ConfigError(f"{what}: option {loc}={given!r}: {msg}") from None
