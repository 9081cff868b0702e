"""`hone serve`: placeholder until the serving command lands."""

from __future__ import annotations


def serve_cmd() -> None:
    """Serve a model through an OpenAI-compatible chat-completions endpoint."""
    raise SystemExit("hone serve is not built yet")
