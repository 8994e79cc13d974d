"""A request's account is found from its access key by a look-up, and always as moto would find it
(localaws/access_keys.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID

from localaws import access_keys
from localaws.sts import account_credentials
from localaws.sts import install as install_sts

REGION = "us-east-1"
ACCOUNTS = [f"{100000000000 + n:012d}" for n in range(40)]


@pytest.fixture(autouse=True)
def aws() -> Iterator[None]:
    """moto with the STS patches and this index (tests/conftest.py sets the fake credentials)."""
    install_sts()
    access_keys.install()
    with mock_aws():
        yield


def _walk(key_id: str) -> str:
    """moto's own answer: its walk over every account and partition, which the patch replaces."""
    from moto.iam import models

    walk: Any = getattr(models.get_account_id_from, "__wrapped__")  # noqa: B009 - set by install()
    return str(walk(key_id))


def _caller_account(key_id: str, secret: str, session_token: str | None = None) -> str:
    sts = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=session_token,
    )
    return str(sts.get_caller_identity()["Account"])


def _role_in(account: str) -> tuple[str, str, str]:
    """An assumed-role session in ``account``, from that account's administrator: its key triple."""
    admin = account_credentials(account)
    kwargs: dict[str, Any] = admin.boto3_kwargs()
    iam = boto3.client("iam", region_name=REGION, **kwargs)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(RoleName="work", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sts = boto3.client("sts", region_name=REGION, **kwargs)
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="work-session")["Credentials"]
    return creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]


def test_keys_of_many_accounts_are_found_by_the_index_and_agree_with_moto() -> None:
    """The last of 40 accounts' session key (the one moto's walk reaches last) is answered by the index,
    and every answer, index or walk, is the account the key belongs to."""
    admins = {account: account_credentials(account) for account in ACCOUNTS}
    last = ACCOUNTS[-1]
    session = _role_in(last)
    before = access_keys.lookups()

    assert _caller_account(*session) == last
    assert (
        _caller_account(admins[ACCOUNTS[0]].access_key_id, admins[ACCOUNTS[0]].secret_access_key)
        == ACCOUNTS[0]
    )

    after = access_keys.lookups()
    assert after["indexed"] - before["indexed"] >= 2
    # moto's walk asks every account for its IAM backend in each of six partitions, creating the ones
    # missing: the look-ups above created none (each account has only the partition its key is in).
    from moto.iam.models import iam_backends

    assert {account: sorted(dict.keys(iam_backends[account])) for account in ACCOUNTS} == {
        account: ["aws"] for account in ACCOUNTS
    }
    for account, admin in admins.items():
        assert _walk(admin.access_key_id) == account
    assert _walk(session[0]) == last


def test_an_iam_user_key_is_indexed_and_a_deleted_one_acts_as_moto_says() -> None:
    account = ACCOUNTS[3]
    kwargs: dict[str, Any] = account_credentials(account).boto3_kwargs()
    iam = boto3.client("iam", region_name=REGION, **kwargs)
    iam.create_user(UserName="ci")
    key = iam.create_access_key(UserName="ci")["AccessKey"]
    from moto.iam import models

    assert models.get_account_id_from(key["AccessKeyId"]) == account

    iam.delete_access_key(UserName="ci", AccessKeyId=key["AccessKeyId"])
    before = access_keys.lookups()
    assert models.get_account_id_from(key["AccessKeyId"]) == _walk(key["AccessKeyId"]) == DEFAULT_ACCOUNT_ID
    assert access_keys.lookups()["unknown"] >= before["unknown"] + 1  # no longer in the index


def test_a_key_from_before_a_reset_of_moto_is_not_answered_from_a_stale_index() -> None:
    from moto.core.base_backend import BackendDict
    from moto.iam import models

    admin = account_credentials(ACCOUNTS[5])
    assert models.get_account_id_from(admin.access_key_id) == ACCOUNTS[5]
    BackendDict.reset()  # what ending moto's mock does: every account and key is gone

    assert models.get_account_id_from(admin.access_key_id) == _walk(admin.access_key_id) == DEFAULT_ACCOUNT_ID


def test_an_unknown_key_gets_moto_default_account_as_moto_walk_gives_it() -> None:
    from moto.iam import models

    for account in ACCOUNTS:  # accounts with keys, none of them this one
        account_credentials(account)
    assert models.get_account_id_from("AKIANOTAKEYANYWHERE0") == _walk("AKIANOTAKEYANYWHERE0")
    assert _walk("AKIANOTAKEYANYWHERE0") == DEFAULT_ACCOUNT_ID
    assert _caller_account("AKIANOTAKEYANYWHERE0", "x") == DEFAULT_ACCOUNT_ID
