"""The HTTP side of local mode: a port check and Chalice's own local dev server, in a thread.

Chalice's dev server (what ``chalice local`` runs) turns each HTTP request into the API Gateway
event a deployed function gets, so the routes run through the same Chalice code path as on AWS,
over real sockets. It is threaded and keeps ``current_request`` per thread, so a slow request (one
that waits on DynamoDB) does not block ``/health``. Only HTTP routes are served; the workflow's
Lambda steps run inside the embedded AWS (see ``localaws.lambda_runner``).

Three things it does not do as a server must, fixed here:

* it listens with the standard library's backlog of 5, so a burst of connections overflows the
  accept queue (of 200 concurrent requests, 48 waited 60 s; of 50 POSTs, 22 were reset): the
  backlog here is 1,024;
* a route or method it does not know is answered in API Gateway's SigV4 words, echoing the
  ``Authorization`` header back (the bearer token!), and a method outside its list with an HTML
  501: here an unknown path is 404 ``NOT_FOUND`` and an unknown method on a known path is 405
  ``METHOD_NOT_ALLOWED`` (with ``Allow``), in the service's ``{"error": ...}`` shape, as the cloud
  template's gateway responses answer (there both are 404: API Gateway cannot tell them apart);
* the HTTP errors of the standard library (a malformed request line, a URI over 64 KiB, too many
  headers) are HTML: here they are the same error shape.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from http import HTTPStatus
from http.server import ThreadingHTTPServer
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


# The accept queue: connections the kernel holds until the server thread accepts them.
LISTEN_BACKLOG = 1024
HINT = "See the API in the README (GET /openapi.json describes every route); every route except GET /health needs Authorization: Bearer <token>."


def error_body(code: str, message: str, hint: str = HINT) -> bytes:
    """The service's error shape; never any part of the request's headers."""
    details = {"request_id": str(uuid.uuid4())}
    return json.dumps(
        {"error": {"code": code, "message": message, "hint": hint, "details": details}}
    ).encode()


class ApiHttpServer(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def _handler_class() -> type[Any]:
    from chalice.local import ChaliceRequestHandler, RouteMatcher

    class ApiRequestHandler(ChaliceRequestHandler):
        """Chalice's handler, with unknown routes and methods, and HTTP errors, in the error shape."""

        def _generic_handle(self) -> None:
            routes: dict[str, dict[str, Any]] = self.local_gateway._app_object.routes
            try:
                route = RouteMatcher(list(routes)).match_route(self.path).route
            except ValueError:
                self._refuse(
                    HTTPStatus.NOT_FOUND, "NOT_FOUND", f"No route {self.command} {self._shown_path()}."
                )
                return
            if self.command not in routes[route]:
                allowed = ", ".join(sorted(routes[route]))
                self._refuse(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    f"{route} does not take {self.command}; it takes {allowed}.",
                    {"Allow": allowed},
                )
                return
            super()._generic_handle()

        # Chalice binds these to its own _generic_handle; any other method goes through __getattr__.
        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def __getattr__(self, name: str) -> Any:
            if name.startswith("do_"):  # any method: TRACE, CONNECT, PROPFIND, ...
                return self._generic_handle
            raise AttributeError(name)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # The standard library's own message quotes the request line: the phrase says enough.
            status = HTTPStatus(code)
            self._refuse(status, status.name, f"{status.phrase}: the HTTP request is malformed.", close=True)

        def _shown_path(self) -> str:
            path = str(self.path).split("?", 1)[0]
            return path if len(path) <= 200 else path[:200] + "..."

        def _refuse(
            self,
            status: HTTPStatus,
            code: str,
            message: str,
            headers: dict[str, str] | None = None,
            *,
            close: bool = False,
        ) -> None:
            if not close:
                self._drain_body()
            body = error_body(code, message)
            self.send_response(status.value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(body)

        def _drain_body(self) -> None:
            """Read the body the refused request sent, so the connection stays usable."""
            try:
                length = int(self.headers.get("content-length", "0") or 0)
            except ValueError:
                self.close_connection = True
                return
            if length > 0:
                self.rfile.read(length)

    return ApiRequestHandler


class ApiServer:
    """The Chalice app's HTTP routes on ``host:port``, served from a background thread."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        from chalice.config import Config
        from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

        if not isinstance(app, CustomLocalChalice):
            # What chalice.local.create_local_server does: requests keep current_request per thread.
            # Once per process: doing it again would make the class its own base.
            CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
            app.__class__ = CustomLocalChalice
        # Binds the socket now, so a port taken since the check fails here, before serving.
        self._dev_server = LocalDevServer(
            app, Config.create(), host, port, handler_cls=_handler_class(), server_cls=ApiHttpServer
        )
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
