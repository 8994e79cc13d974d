"""The service's HTTP API, as the CLI uses it: a target, its bootstrap template, its validation.

Connection: ``--api-url``/``NEXUS_API_URL`` (default ``http://127.0.0.1:8000``, what ``make run`` serves)
and ``NEXUS_API_TOKEN`` (a tenant bearer token). Errors come back as the API's ``{"code", "message",
"hint"}`` document and are raised as ``ApiError`` with those fields.
"""

from __future__ import annotations

from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, hint: str | None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message, self.hint = status, code, message, hint


class ApiClient:
    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        import requests

        self._base = base_url.rstrip("/")
        self._http = requests.Session()
        self._http.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self._timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        import requests

        try:
            response = self._http.request(method, self._base + path, json=body, timeout=self._timeout)
        except requests.RequestException as error:
            raise ApiError(
                0, "API_UNREACHABLE", f"{self._base}: {error}", "Start the API (make run) or fix --api-url."
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 400:
            error_body = data.get("error", data) if isinstance(data, dict) else {}
            raise ApiError(
                response.status_code,
                str(error_body.get("code", "HTTP_ERROR")),
                str(error_body.get("message", response.text[:200])),
                error_body.get("hint"),
            )
        return data

    def target(self, target_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/targets/{target_id}")
        return result

    def bootstrap_template(self, target_id: str, part: str = "account") -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/targets/{target_id}/bootstrap-template?part={part}")
        return result

    def validate(self, target_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/targets/{target_id}/validate", {})
        return result

    def close(self) -> None:
        self._http.close()
