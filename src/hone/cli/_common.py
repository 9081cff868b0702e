"""Shared CLI plumbing: one-line errors, option parsing, the store option."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from hone.core import ConfigError, HoneError

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)

STATE: dict[str, Any] = {"debug": False}

EXIT_USAGE = 2
EXIT_ERROR = 1


def debug_enabled() -> bool:
    return bool(STATE["debug"]) or os.environ.get("HONE_DEBUG", "") not in ("", "0")


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn errors into one clear line and a non-zero exit code; `--debug` shows tracebacks."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
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
