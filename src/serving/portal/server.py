"""Running the portal inside the current process on a background thread (tests, benchmarks, notebooks).

``python -m src.serving.portal`` is the way to serve people; this is for code that needs a real HTTP server
for a while (a browser test, a load benchmark) and must stop it by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["running"]


@contextmanager
def running(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, timeout_s: float = 30.0, **config: Any
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on ``host`` (a free port when ``port`` is 0) and yield its base URL;
    the server is stopped when the block ends. ``config``: more ``uvicorn.Config`` arguments (by default
    uvicorn leaves logging to the caller: ``log_config=None``)."""
    import uvicorn

    config.setdefault("log_config", None)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **config))
    thread = threading.Thread(target=server.run, name="portal-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the portal did not start on {host}:{port} within {timeout_s:.0f} s")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
