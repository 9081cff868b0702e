"""Shared CLI plumbing: one-line errors, option parsing, the store option."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from hone.core import ConfigError, HoneError
from hone.store import SQLStore, check_run_id, open_store

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)

STATE: dict[str, Any] = {"debug": False}
_OPEN_STORES: list[SQLStore] = []

EXIT_USAGE = 2
EXIT_ERROR = 1


def debug_enabled() -> bool:
    return bool(STATE["debug"]) or os.environ.get("HONE_DEBUG", "") not in ("", "0")


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn errors into one clear line and a non-zero exit code; `--debug` shows tracebacks."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return _call(fn, *args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except HoneError as exc:
            if debug_enabled():
                raise
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR) from None
        except Exception as exc:
            if debug_enabled():
                raise
            err_console.print(
                f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))} (rerun with --debug for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper


def _call(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return fn(*args, **kwargs)
    finally:
        while _OPEN_STORES:
            _OPEN_STORES.pop().close()


def cli_store(location: str | None, *, readonly: bool = False) -> SQLStore:
    """Open the store for this command; it is closed when the command ends.

    Closing matters: SQLite folds its write-ahead log back into the file when the last
    connection closes, so a store copied or mounted read-only afterwards reads whole.
    """
    st = open_store(location, readonly=readonly)
    _OPEN_STORES.append(st)
    return st


def parse_kv(items: list[str] | None, what: str) -> dict[str, str]:
    """Parse repeated `KEY=VALUE` options."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad {what} {item!r}: use KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def is_tty() -> bool:
    return sys.stderr.isatty()


def at_least(option: str, value: float | None, minimum: float, *, above: bool = False) -> None:
    """Refuse a number below `minimum` (or not above it) in one line naming the option."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, got {value}")
    if value < minimum or (above and value == minimum):
        raise ConfigError(f"{option} must be {'>' if above else '>='} {minimum:g}, got {value:g}")


def check_run_options(
    *,
    n: int | None = None,
    k: int | None = None,
    concurrency: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> None:
    """The numeric options `eval`, `improve` and `loop` share, each refused in one line naming it."""
    for option, value in (("-n", n), ("-k", k), ("--concurrency", concurrency), ("--max-tokens", max_tokens)):
        at_least(option, value, 1)
    at_least("--temperature", temperature, 0)


def run_id_option(value: str | None, option: str = "--run-id") -> str | None:
    """A run id given on the command line, refused if it cannot name a file (see `check_run_id`)."""
    return None if value is None else check_run_id(value, option)


def writable_file(path: Path | None, option: str) -> None:
    """Refuse, before any work, a file option the command will write later and cannot.

    Opening for append proves what `os.access` cannot (root passes every permission check,
    yet not a read-only file system); a file created just for the check is removed again.
    """
    if path is None:
        return
    existed = path.exists()
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write: {exc.strerror or exc}") from exc
    if not existed:
        with contextlib.suppress(OSError):
            path.unlink()
