"""HTTP ``Idempotency-Key`` on top of Powertools' idempotency utility.

Powertools stores each key's result in DynamoDB, replays it for the same payload, refuses a
different payload under the same key (IdempotencyValidationError), and refuses a key whose first
request is still running. We feed it ``{"key", "fingerprint"}``: the key scoped to tenant and route,
the fingerprint a memory-hard hash of the canonical body (``chalicelib/api/http.py``; a body can hold
secrets). Its import is heavy, so only this adapter pays for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

from chalicelib.domain.errors import Conflict, TransientAwsError

if TYPE_CHECKING:
    from botocore.config import Config

logger = logging.getLogger(__name__)


class PowertoolsIdempotency:
    def __init__(
        self, table_name: str, session: boto3.Session, ttl_seconds: int, boto_config: Config | None = None
    ) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
        )

        self._persistence = DynamoDBPersistenceLayer(
            table_name=table_name,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value="IDEMPOTENCY",
            expiry_attr="expires_at",
            boto3_session=session,
            boto_config=boto_config,  # the service's retries (standard mode), not botocore's defaults
        )
        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="fingerprint",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
        )

    def run(
        self, key: str, fingerprint: str, produce: Callable[[], dict[str, Any]], lambda_context: Any = None
    ) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        if lambda_context is not None:
            # Lets Powertools expire an in-progress record when the function times out mid-request.
            self._config.register_lambda_context(lambda_context)

        produced: list[dict[str, Any]] = []
        raised: list[Exception] = []

        def call(request: dict[str, str]) -> dict[str, Any]:
            try:
                produced.append(produce())
            except Exception as error:
                raised.append(error)
                raise
            return produced[-1]

        guarded = idempotent_function(
            data_keyword_argument="request", persistence_store=self._persistence, config=self._config
        )(call)
        try:
            result: dict[str, Any] = guarded(request={"key": key, "fingerprint": fingerprint})
        except IdempotencyValidationError:
            raise Conflict(
                "This Idempotency-Key was already used with a different request body.",
                code="IDEMPOTENCY_KEY_REUSED",
                hint="Use a new Idempotency-Key for a different request; reuse a key only to retry the same one.",
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise Conflict(
                "The first request with this Idempotency-Key is still being processed.",
                code="IDEMPOTENCY_KEY_IN_PROGRESS",
                hint="Retry in a moment with the same key and body to get its answer.",
            ) from None
        except IdempotencyPersistenceLayerError as error:
            if produced:
                # The request's work is done (an operation may have started): answer it, rather than a
                # 500 that a client would retry into a conflict. Only the replay of this answer is lost.
                logger.warning("idempotency record not saved: %s", error)
                return produced[-1]
            if raised:
                # The request failed, and Powertools could not delete the key's in-progress record after
                # it (throttled past botocore's retries): the key would answer IDEMPOTENCY_KEY_IN_PROGRESS
                # to every retry until that record expires. Delete it once more, then answer the request's
                # own error (it was not "nothing done": the route ran, and failed as it says).
                failure = raised[-1]
                self._forget_in_progress(key, fingerprint, failure)
                raise failure from failure.__cause__  # its own cause kept
            # Nothing ran: the key's record could not be written (throttled): safe to retry as it is.
            raise TransientAwsError(
                "The request could not be recorded under its Idempotency-Key; nothing was done.",
                hint="Retry with the same key and body.",
            ) from error
        return result

    def _forget_in_progress(self, key: str, fingerprint: str, failure: Exception) -> None:
        """Delete the in-progress record of a request that failed, as Powertools does after a failure;
        a record that still cannot be deleted is left to expire (logged). Unconditional, as Powertools'
        own delete: if that delete did reach DynamoDB but its answer was lost, and a retry under the key
        saved its own record meanwhile, this removes that one, and a third request under the key may run
        beside the retry. The routes' own guards (an operation's transaction, the stack's claim and lock)
        still refuse a second operation; a key's replay is what is lost."""
        try:
            self._persistence.delete_record(data={"key": key, "fingerprint": fingerprint}, exception=failure)
        except Exception as error:  # noqa: BLE001 - the request's own error is what the caller gets
            logger.warning("in-progress idempotency record not deleted; it expires: %s", error)
