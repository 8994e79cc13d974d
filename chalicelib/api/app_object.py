"""The Chalice app object, with the current request kept per thread.

Chalice keeps the request being served on the app object (``app.current_request``), which is right on
Lambda, where one process serves one request at a time. Local mode's threaded HTTP server and the
concurrent reliability scenarios (bench/chaos/) serve many at once in one process: there, a request could
read another's body and headers (concurrent creates answered 400 or 409 for bodies they never sent). Here
each thread keeps its own.
"""

from __future__ import annotations

import threading
from typing import Any

from chalice.app import Chalice


class ThreadSafeChalice(Chalice):
    _requests = threading.local()

    @property
    def current_request(self) -> Any:
        return getattr(self._requests, "request", None)

    @current_request.setter
    def current_request(self, request: Any) -> None:
        self._requests.request = request
