"""A bare moto DynamoDB table keyed like the service's own (``pk``, ``sk``), for tests of the local
AWS's DynamoDB patches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws


@contextmanager
def pk_sk_table(name: str, **extra: Any) -> Iterator[Any]:
    """Inside ``mock_aws``: a low-level DynamoDB client and an on-demand table ``name`` with a string
    ``pk`` hash key and ``sk`` range key (``extra``: more CreateTable arguments)."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            **extra,
        )
        yield client
