"""AWS-shaped HTTP errors that moto passes through unchanged, in the protocol of the service called.

``AwsHttpError`` is also what other localaws modules raise (faults, authorization, SAML), with
``_protocol_of`` choosing the error shape of the service a request was for.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.exceptions import HTTPException

EXPIRED_MESSAGE = "The security token included in the request is expired"
S3_EXPIRED_MESSAGE = "The provided token has expired."


class AwsHttpError(HTTPException):
    """An AWS error response that moto passes through unchanged (any protocol, any HTTP status)."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        protocol: str = "query",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.extra_headers = dict(headers or {})
        self.code = status
        self.error_code = error_code
        self.message = message
        self.protocol = protocol
        if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor"):
            self.content_type = "application/json"
            self.description = json.dumps({"__type": error_code, "message": message})
        else:
            self.content_type = "text/xml"
            error = f"<Code>{escape(error_code)}</Code><Message>{escape(message)}</Message>"
            if protocol == "rest-xml":  # S3's shape
                self.description = f"<?xml version='1.0' encoding='UTF-8'?><Error>{error}</Error>"
            else:
                self.description = (
                    f"<ErrorResponse><Error><Type>Sender</Type>{error}</Error>"
                    "<RequestId>localaws</RequestId></ErrorResponse>"
                )

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [
            ("Content-Type", self.content_type),
            ("X-Amzn-ErrorType", self.error_code),
            *self.extra_headers.items(),
        ]

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return self.description or ""

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}"


def _access_denied(message: str) -> AwsHttpError:
    return AwsHttpError(403, "AccessDenied", message)


def _not_authorized(caller_arn: str, role_arn: str) -> AwsHttpError:
    return _access_denied(
        f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )


def _protocol_of(response: Any) -> str:
    from moto.core.utils import get_service_model

    try:
        return str(get_service_model(response.boto3_service_name).protocol)
    except Exception:  # noqa: BLE001 - an unknown service model: answer in the query protocol's shape
        return "query"


def _expired_token(protocol: str) -> AwsHttpError:
    """AWS's answer to expired credentials: S3 says it its own way, JSON services add ``Exception``."""
    if protocol == "rest-xml":
        return AwsHttpError(400, "ExpiredToken", S3_EXPIRED_MESSAGE, protocol)
    if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor"):
        return AwsHttpError(400, "ExpiredTokenException", EXPIRED_MESSAGE, protocol)
    return AwsHttpError(403, "ExpiredToken", EXPIRED_MESSAGE, protocol)
