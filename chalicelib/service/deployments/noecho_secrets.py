"""NoEcho values on their way to a stack call (chalicelib/domain/noecho.py): kept in the secret store
only while the records that refer to them are written. Module functions, as the rollouts keep a
rollout's values the same way as an operation's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from chalicelib.domain.errors import UnprocessableRequest
from chalicelib.domain.noecho import ParameterSplit
from chalicelib.service.ports import ParameterSecrets


def check_keeps_secrets(secrets: ParameterSecrets | None, split: ParameterSplit) -> None:
    """Refuse a request with NoEcho values when the service has no store for them."""
    if split.has_new_secrets and secrets is None:
        raise _no_secret_store()


def _no_secret_store() -> UnprocessableRequest:
    return UnprocessableRequest(
        "This service keeps no NoEcho values: it cannot deploy them.",
        code="NOECHO_NOT_AVAILABLE",
        hint="Deploy with the service's parameter store configured.",
    )


@contextmanager
def secrets_kept(secrets: ParameterSecrets | None, owner_id: str, split: ParameterSplit) -> Iterator[None]:
    """Keep a request's NoEcho values under ``owner_id`` (an operation, a rollout) while the records
    that refer to them are written; when the write fails, nothing of them stays behind."""
    if not split.has_new_secrets:
        yield
        return
    if secrets is None:
        raise _no_secret_store()
    secrets.put(owner_id, split.secret)
    try:
        yield
    except BaseException:
        secrets.delete(owner_id)
        raise
