"""A small named-factory registry with entry-point discovery and `pkg.module:attr` specs."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar, cast

from ._errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories. Third-party packages add entries via the entry-point `group`."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._factories: dict[str, Callable[..., T]] = {}
        self._loaded_entry_points = False

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: `@envs.register("arith")` on a factory or class."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return deco

    def add(self, name: str, factory: Callable[..., T]) -> None:
        self._factories[name] = factory

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=self.group):
            if ep.name in self._factories:
                continue
            try:
                self._factories[ep.name] = ep.load()
            except Exception as exc:  # a broken plugin must not break hone
                self._factories[ep.name] = _broken(self.kind, ep.name, exc)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._factories)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Callable[..., T]:
        """The factory for `name`, or for a `pkg.module:attr` import path."""
        if name in self._factories:
            return self._factories[name]
        self._load_entry_points()
        if name in self._factories:
            return self._factories[name]
        if ":" in name and "." in name.split(":", 1)[0]:
            return cast("Callable[..., T]", import_object(name))
        known = ", ".join(self.names()) or "none"
        raise ConfigError(f"unknown {self.kind} {name!r}; known: {known} (or use pkg.module:factory)")


def import_object(path: str) -> object:
    """Import `pkg.module:attr`."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} from {path!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ConfigError(f"{module_name!r} has no attribute {attr!r}") from exc


def _broken(kind: str, name: str, exc: Exception) -> Callable[..., Any]:
    def factory(*args: object, **kwargs: object) -> Any:
        raise ConfigError(f"{kind} plugin {name!r} failed to load: {exc}")

    return factory
