"""Many HTTP requests at one instant, each on its own connection: what answered, what was reset, how fast.

Used by ``make bench`` (section 6 of BENCHMARKS.md, ``local_server_report``) and by
``tests/local/test_api_server.py`` against a real local-mode server. Each request runs in its own
thread and opens its own TCP connection; a barrier releases them together, so the server sees a
burst of ``len(requests)`` connections at once, as a CI job or a portal's page load does.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no answer (see error)
    seconds: float
    error: str | None = None  # "reset", "timeout", "refused" or an exception's name


@dataclass(frozen=True)
class Burst:
    outcomes: list[Outcome]

    @property
    def answered(self) -> int:
        return sum(1 for o in self.outcomes if o.status is not None)

    @property
    def resets(self) -> int:
        return sum(1 for o in self.outcomes if o.error == "reset")

    @property
    def errors(self) -> Counter[str]:
        return Counter(o.error for o in self.outcomes if o.error is not None)

    @property
    def statuses(self) -> Counter[int]:
        return Counter(o.status for o in self.outcomes if o.status is not None)

    def percentile(self, q: float) -> float:
        times = sorted(o.seconds for o in self.outcomes)
        return times[min(len(times) - 1, round(q / 100 * (len(times) - 1)))]

    def slower_than(self, seconds: float) -> int:
        return sum(1 for o in self.outcomes if o.seconds > seconds)


def burst(base_url: str, requests: list[Request], timeout: float = 60.0) -> Burst:
    """Send every request at once, each on a new connection; wait for all of them."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    start = threading.Barrier(len(requests))
    outcomes: list[Outcome | None] = [None] * len(requests)

    def one(n: int, request: Request) -> None:
        body = json.dumps(request.body).encode() if request.body is not None else None
        headers = {"Content-Type": "application/json", **request.headers}
        start.wait()
        began = time.monotonic()
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.request(request.method, request.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            outcomes[n] = Outcome(response.status, time.monotonic() - began)
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            outcomes[n] = Outcome(None, time.monotonic() - began, "reset")
        except TimeoutError:
            outcomes[n] = Outcome(None, time.monotonic() - began, "timeout")
        except ConnectionRefusedError:
            outcomes[n] = Outcome(None, time.monotonic() - began, "refused")
        except OSError as error:
            outcomes[n] = Outcome(None, time.monotonic() - began, type(error).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(n, r), daemon=True) for n, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 30)
    return Burst([o if o is not None else Outcome(None, timeout, "lost") for o in outcomes])
