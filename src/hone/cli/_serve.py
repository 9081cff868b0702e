"""`hone serve`: a model behind an OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from hone.core import ConfigError
from hone.models import resolve_model
from hone.models._toolformats import tool_format_notice

from ._common import err_console, friendly

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@friendly
def serve_cmd(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model spec: micro, hf:PATH, openai:NAME, openai-compatible:URL:NAME.")
    ],
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8000,
    model_name: Annotated[
        str | None, typer.Option("--model-name", help="The name clients send as `model` (default: the spec).")
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="uvicorn log level (info logs each request).")
    ] = "warning",
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", help="Refuse request bodies over this many MB (413) before parsing them.")
    ] = 16.0,
) -> None:
    """Serve a model through an OpenAI-compatible chat-completions endpoint (Ctrl-C stops it).

    Clients get native tool calls, usage and, when they ask as with vLLM, token ids and
    logprobs: e.g. `hone eval arith -m openai-compatible:http://127.0.0.1:8000/v1:micro`.
    """
    try:
        from hone.serve import serve
    except ImportError as exc:
        raise ConfigError(f"hone serve needs {exc.name or 'FastAPI and uvicorn'}: pip install 'hone[serve]'") from exc
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port number (0-65535)")
    if not max_body_mb > 0:  # also NaN
        raise ConfigError(f"--max-body-mb {max_body_mb}: must be a positive number of megabytes")
    if log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"--log-level {log_level!r}: use one of {', '.join(LOG_LEVELS)}")
    name = model_name or model
    model_obj = resolve_model(model)
    notice = tool_format_notice(model_obj)
    if notice:
        err_console.print(notice, markup=False, highlight=False, soft_wrap=True)

    def ready(url: str) -> None:
        # stdout, flushed: scripts wait for this line before sending requests.
        print(f"serving {name} at {url}", flush=True)

    serve(
        model_obj,
        host=host,
        port=port,
        model_name=name,
        on_ready=ready,
        log_level=log_level.lower(),
        max_body_mb=max_body_mb,
    )
    err_console.print("stopped")
