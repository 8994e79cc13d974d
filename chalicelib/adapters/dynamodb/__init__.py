"""The service's records in its one DynamoDB table, one store per port of ``chalicelib/service/ports.py``.

:mod:`.table` holds the table's layout and what every store shares (``SharedTable``, ``query_page``),
:mod:`.records` the conversions between items and domain records, and each store its port:
:mod:`.targets` ``TargetStore``, :mod:`.deployments` ``DeploymentStore`` (with the operations' events
and the stack-name claims), :mod:`.locks` ``LockStore``, :mod:`.tokens` ``TokenStore``. The
composition root builds one ``SharedTable`` and every store over it.
"""

from __future__ import annotations

from chalicelib.adapters.dynamodb.deployments import DynamoDeploymentStore
from chalicelib.adapters.dynamodb.locks import DynamoLockStore
from chalicelib.adapters.dynamodb.records import (
    deployment_from_item,
    deployment_to_item,
    request_to_item,
    target_from_item,
    target_to_item,
)
from chalicelib.adapters.dynamodb.table import TTL_ATTRIBUTE, SharedTable, query_page
from chalicelib.adapters.dynamodb.targets import DynamoTargetStore
from chalicelib.adapters.dynamodb.tokens import DynamoTokenStore

__all__ = [
    "TTL_ATTRIBUTE",
    "DynamoDeploymentStore",
    "DynamoLockStore",
    "DynamoTargetStore",
    "DynamoTokenStore",
    "SharedTable",
    "deployment_from_item",
    "deployment_to_item",
    "query_page",
    "request_to_item",
    "target_from_item",
    "target_to_item",
]
