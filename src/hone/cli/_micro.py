"""`hone micro ...`: the embedded micro model (placeholder until the training command lands)."""

from __future__ import annotations

import typer

micro_app = typer.Typer(help="The embedded micro model: train it, inspect it.", no_args_is_help=True)
