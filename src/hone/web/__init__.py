"""hone.web: `hone view` (a local web app over a store) and `hone report` (one self-contained
HTML file). Needs the `hone[web]` extra (FastAPI, uvicorn, Jinja2)."""

from ._app import create_app, serve
from ._report import render_report, write_report

__all__ = ["create_app", "render_report", "serve", "write_report"]
