"""The HTTP side of local mode: a port check and Chalice's own local dev server, in a thread.

Chalice's dev server (what ``chalice local`` runs) turns each HTTP request into the API Gateway
event a deployed function gets, so the routes run through the same Chalice code path as on AWS,
over real sockets. It is threaded and keeps ``current_request`` per thread, so a slow request (one
that waits on DynamoDB) does not block ``/health``. Only HTTP routes are served; the workflow's
Lambda steps run inside the embedded AWS (see ``localaws.lambda_runner``).
"""

from __future__ import annotations

import socket
import threading
from typing import Any


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on (or holds) ``host:port``.

    Binds with ``SO_REUSEADDR``, as both servers do, so a port in TIME_WAIT counts as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it); for tests and the demo."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class ApiServer:
    """The Chalice app's HTTP routes on ``host:port``, served from a background thread."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        from chalice.config import Config
        from chalice.local import CustomLocalChalice, LocalDevServer, create_local_server

        # Binds the socket now, so a port taken since the check fails here, before serving.
        if isinstance(app, CustomLocalChalice):
            # Served before in this process: create_local_server already mixed chalice's local class
            # into the app's, and doing it again would make the class its own base.
            self._dev_server = LocalDevServer(app, Config.create(), host, port)
        else:
            self._dev_server = create_local_server(app, Config.create(), host, port)
        self._thread: threading.Thread | None = None
        self.url = f"http://{host}:{port}"

    def start(self) -> None:
        # The inner HTTPServer, not LocalDevServer.serve_forever, which prints its own banner line.
        self._thread = threading.Thread(
            target=self._dev_server.server.serve_forever, name="nexus-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._dev_server.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._dev_server.server.server_close()
