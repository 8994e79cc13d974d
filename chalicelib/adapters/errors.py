"""The one place a botocore ClientError becomes a domain error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.aws_errors import translate
from chalicelib.domain.errors import DeployerError, TransientAwsError


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


@contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """Run AWS calls; re-raise their failures as domain errors that name ``operation``."""
    try:
        yield
    except ClientError as error:
        reasons = [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons") or []]
        raise translate(
            error_code(error), error_message(error), operation=operation, cancellation_reasons=reasons
        ) from error
    except BotoCoreError as error:
        raise TransientAwsError(f"{operation} failed: {error}") from error
    except DeployerError:
        raise
