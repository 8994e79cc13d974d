"""The service's public HTTP API, as the CLI uses it: nothing else, no shortcut into the service.

Connection: ``nexus_cli.config`` (``nexus configure``, ``NEXUS_API_URL``, ``NEXUS_API_TOKEN``). Errors
come back as the API's ``{"error": {"code", "message", "hint", "details"}}`` and are raised as
``ApiError`` with those fields. Every POST, PUT, PATCH and DELETE carries an ``Idempotency-Key``, so a
request that failed in transit (connection reset, 502/503/504, 429) is sent again with the same key
and starts at most one operation.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["ApiClient", "ApiError"]

RETRIED_STATUSES = (429, 502, 503, 504)
ATTEMPTS = 3
# 4xx that mean "what you sent is wrong": the CLI exits 2 (a usage error) for these, 1 for the rest.
BAD_INPUT_STATUSES = (400, 413, 422)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, hint: str | None, details: Any = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message, self.hint, self.details = status, code, message, hint, details

    @property
    def bad_input(self) -> bool:
        return self.status in BAD_INPUT_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        }


class ApiClient:
    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        import requests

        self._base = base_url.rstrip("/")
        self._http = requests.Session()
        self._http.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self._timeout = timeout

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None) -> Any:
        import requests

        params = {k: v for k, v in (query or {}).items() if v is not None}
        headers = {} if method == "GET" else {"Idempotency-Key": str(uuid.uuid4())}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._http.request(
                    method,
                    self._base + path,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=self._timeout,
                )
            except requests.RequestException as error:
                if attempt < ATTEMPTS:
                    time.sleep(0.5 * attempt)
                    continue
                raise ApiError(
                    0,
                    "API_UNREACHABLE",
                    f"{self._base}: {error}",
                    "Start the API (make run), or point NEXUS_API_URL / nexus configure at it.",
                ) from None
            if response.status_code in RETRIED_STATUSES and attempt < ATTEMPTS:
                time.sleep(0.5 * attempt)
                continue
            return _answer(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, {} if body is None else body)

    def pages(self, path: str, **query: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paged listing, following ``next_token`` to the last page."""
        token: str | None = None
        while True:
            page = self.get(path, **query, next_token=token)
            yield from page.get("items") or []
            token = page.get("next_token")
            if not token:
                return

    # -- the calls ``targets bootstrap`` makes ---------------------------------------------------------

    def target(self, target_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/targets/{target_id}")
        return result

    def bootstrap_template(self, target_id: str, part: str = "account") -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/targets/{target_id}/bootstrap-template", part=part)
        return result

    def validate(self, target_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.post(f"/targets/{target_id}/validate", {})
        return result

    def close(self) -> None:
        self._http.close()


def _answer(response: Any) -> Any:
    try:
        data = response.json() if response.content else None
    except ValueError:
        data = None
    if response.status_code >= 400:
        error_body = data.get("error", data) if isinstance(data, dict) else {}
        error_body = error_body if isinstance(error_body, dict) else {}
        raise ApiError(
            response.status_code,
            str(error_body.get("code", f"HTTP_{response.status_code}")),
            str(error_body.get("message", response.text[:200])),
            error_body.get("hint"),
            error_body.get("details"),
        )
    return data
