"""NoEcho parameter values in Secrets Manager, for the minutes between a request and its stack call.

One secret per operation (or rollout), named ``<prefix><owner id>``, holding a JSON object of the
values; deleted without a recovery window as soon as the stack call that used them was made. They
never touch DynamoDB, an execution's input or a log line (chalicelib/domain/noecho.py).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_call, error_code
from chalicelib.domain.noecho import secret_string

_GONE = frozenset({"ResourceNotFoundException"})


class SecretsManagerParameters:
    # Any: the dev requirements carry no mypy_boto3_secretsmanager stubs.
    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def put(self, owner_id: str, values: dict[str, str]) -> None:
        with aws_call("CreateSecret"):
            self._client.create_secret(
                Name=self._prefix + owner_id,
                SecretString=secret_string(values),
                Description="NexusAI Deployer: NoEcho parameter values until their stack call",
            )

    def get(self, owner_id: str) -> dict[str, str] | None:
        with aws_call("GetSecretValue"):
            try:
                found = self._client.get_secret_value(SecretId=self._prefix + owner_id)
            except ClientError as error:
                if error_code(error) in _GONE:
                    return None
                raise
        values = json.loads(found["SecretString"])
        return {str(k): str(v) for k, v in values.items()}

    def delete(self, owner_id: str) -> None:
        with aws_call("DeleteSecret"):
            try:
                self._client.delete_secret(SecretId=self._prefix + owner_id, ForceDeleteWithoutRecovery=True)
            except ClientError as error:
                if error_code(error) not in _GONE:
                    raise
