"""API tokens (``TOKEN#<sha256>``): the ``TokenStore`` port. Only a token's hash is ever stored."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.dynamodb.table import SharedTable
from chalicelib.adapters.errors import aws_call


class DynamoTokenStore:
    """Implements TokenStore (``chalicelib/service/ports.py``)."""

    def __init__(self, shared: SharedTable) -> None:
        self._shared = shared
        self._table: Any = shared.table

    def tenant_for_token_hash(self, token_sha256: str) -> str | None:
        item = self._shared.get(f"TOKEN#{token_sha256}", "TOKEN")
        return str(item["tenant_id"]) if item else None

    def put_token(self, token_sha256: str, tenant_id: str, label: str) -> None:
        with aws_call("PutItem"):
            self._table.put_item(
                Item={"pk": f"TOKEN#{token_sha256}", "sk": "TOKEN", "tenant_id": tenant_id, "label": label}
            )
