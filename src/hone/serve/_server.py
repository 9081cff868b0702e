"""Running the app under uvicorn: in the foreground until a signal (`serve`), or in a thread (`BackgroundServer`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import uvicorn

from hone.core import ConfigError
from hone.models import ChatModel, aclose_model

from ._app import DEFAULT_MAX_BODY_MB, create_app


def base_url(host: str, port: int) -> str:
    """The `/v1` URL clients use for `host:port` (IPv6 hosts in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` (port 0: a free one); `ConfigError` when that is impossible."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGINT/SIGTERM without re-raising the signal afterwards.

    uvicorn re-raises a caught signal once it has shut down, which turns Ctrl-C into a
    KeyboardInterrupt traceback and SIGTERM into death by signal; `hone serve` exits 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _server(model: ChatModel, model_name: str | None, log_level: str, max_body_mb: float) -> _Server:
    app = create_app(model, model_name, max_body_mb=max_body_mb)
    # A log line per request only when asked for (info and below): it costs time at high request rates.
    access_log = log_level in ("info", "debug", "trace")
    config = uvicorn.Config(
        app, log_level=log_level, access_log=access_log, lifespan="off", timeout_graceful_shutdown=5
    )
    return _Server(config)


async def _serve(server: _Server, sock: socket.socket, model: ChatModel) -> None:
    try:
        await server.serve(sockets=[sock])
    finally:
        await aclose_model(model)  # on the loop that used it: HTTP clients belong to one loop


def serve(
    model: ChatModel,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    model_name: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
) -> None:
    """Serve `model` until SIGINT or SIGTERM, then close it and return.

    `on_ready(base_url)` is called once the port is bound (port 0 picks a free one). Request
    bodies over `max_body_mb` are refused with a 413 before they are parsed.
    """
    server = _server(model, model_name, log_level, max_body_mb)
    sock = bind(host, port)
    url = base_url(host, sock.getsockname()[1])

    async def main() -> None:
        task = asyncio.create_task(_serve(server, sock, model))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started and on_ready is not None:
            on_ready(url)
        await task

    try:
        asyncio.run(main())
    finally:
        sock.close()


class BackgroundServer:
    """Serves a model from a daemon thread with its own event loop (tests, notebooks, benchmarks).

    `with BackgroundServer(model) as server:` gives `server.base_url` once it accepts
    connections; leaving the block stops it. Port 0 (the default) picks a free port.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str | None = None,
        log_level: str = "warning",
        max_body_mb: float = DEFAULT_MAX_BODY_MB,
    ) -> None:
        self.model = model
        self.max_body_mb = max_body_mb
        self.host = host
        self.port = port
        self.model_name = model_name or model.name
        self.log_level = log_level
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The `/v1` URL clients use."""
        return base_url(self.host, self.port)

    def start(self) -> BackgroundServer:
        """Start serving; returns once the server accepts connections (raises if it could not start)."""
        if self._thread is not None:
            return self
        server = self._server = _server(self.model, self.model_name, self.log_level, self.max_body_mb)
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(_serve(server, sock, self.model))
            except BaseException as exc:  # uvicorn exits with SystemExit on startup failures
                failure.append(exc)
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="hone-serve", daemon=True)
        self._thread.start()
        while not server.started and self._thread.is_alive():
            self._thread.join(0.01)
        if not server.started:
            self._thread = None
            cause = failure[0] if failure else None
            raise RuntimeError(f"hone serve did not start on {self.base_url}: {cause!r}") from cause
        return self

    def stop(self) -> None:
        """Stop serving (in-flight requests get a few seconds to finish) and join the thread."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
