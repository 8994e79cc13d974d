"""Credentials that act in an account, minted directly in moto's backends to bootstrap it.

Tests use them to create, for instance, the target role in an account before the code under test assumes
it; they never expire.
"""

from __future__ import annotations

from typing import NamedTuple


class AccountCredentials(NamedTuple):
    """Credentials acting in one account; unpack as ``key, secret`` or use ``boto3_kwargs()``."""

    access_key_id: str
    secret_access_key: str

    def boto3_kwargs(self) -> dict[str, str]:
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}


def account_credentials(account_id: str, partition: str = "aws") -> AccountCredentials:
    """Credentials that act in ``account_id`` as its administrator would (in-process moto only).

    The key is a moto temporary key without a session, so it never expires and the caller is moto's
    default identity in that account (``arn:aws:sts::<account_id>:user/moto``).
    """
    from moto.iam.models import iam_backends

    key = iam_backends[account_id][partition].create_temp_access_key()
    return AccountCredentials(str(key.access_key_id), str(key.secret_access_key))
