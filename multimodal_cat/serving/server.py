"""Run the app with uvicorn: in the foreground (the CLI) or in a thread (tests, benchmarks).

Shutdown is graceful: on SIGINT/SIGTERM (or leaving :func:`running`) uvicorn stops taking
connections, lets in-flight requests finish (up to ``grace_s``), then the app's shutdown
finishes every queued product before the batcher stops.

Example:
    >>> with running(app) as url:  # doctest: +SKIP
    ...     httpx.get(url + "/healthz").json()
    {'status': 'ok'}
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

GRACE_S = 30.0


def serve(app: Any, host: str = "127.0.0.1", port: int = 8080, *, grace_s: float = GRACE_S) -> None:
    """Serve until interrupted (SIGINT/SIGTERM), then shut down gracefully; a model that
    cannot be loaded stops the server too (the caller reads ``service.load_error``)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", timeout_graceful_shutdown=int(grace_s)
    )
    server = _Server(config)
    service = getattr(app.state, "service", None)
    if service is not None:
        service.on_load_error = lambda: setattr(server, "should_exit", True)
    server.run()


@contextmanager
def running(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, grace_s: float = GRACE_S,
    start_timeout: float = 60.0,
) -> Iterator[str]:
    """Serve ``app`` in a thread for the ``with`` block; yields its base URL.

    ``port=0`` picks a free port. Leaving the block shuts the server down gracefully and
    waits for the thread.

    Raises:
        RuntimeError: The server did not start within ``start_timeout`` seconds.
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=int(grace_s)
    )
    server = uvicorn.Server(config)  # in a thread, uvicorn installs no signal handlers
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        stop = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > stop:
                raise RuntimeError(f"the server did not start on {host}:{port}")
            time.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=grace_s + 10)



class _Server(uvicorn.Server):
    """uvicorn's server, except that a SIGINT/SIGTERM it shut down for gracefully is not raised
    again afterwards: the command then exits 0, as a service stopped on purpose should."""

    @contextmanager
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
