"""Bucket policies are decided with their conditions (localaws/s3.py), as S3 decides them."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from localaws import s3
from localaws.environment import LocalAws

TLS_ONLY = {
    "Sid": "TlsOnly",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::guarded", "arn:aws:s3:::guarded/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def test_canary_the_bucket_permission_check_it_replaces_is_still_there() -> None:
    s3.check_moto_internals()


def test_a_tls_only_deny_lets_sdk_calls_through_and_an_unconditional_deny_does_not() -> None:
    with LocalAws() as aws:
        client = aws.central_session().client("s3")
        client.create_bucket(Bucket="guarded")
        policy = {"Version": "2012-10-17", "Statement": [TLS_ONLY]}
        client.put_bucket_policy(Bucket="guarded", Policy=json.dumps(policy))
        client.put_object(Bucket="guarded", Key="bootstrap/a.json", Body=b"{}")
        assert client.get_object(Bucket="guarded", Key="bootstrap/a.json")["Body"].read() == b"{}"

        closed = {**TLS_ONLY, "Sid": "Closed", "Resource": "arn:aws:s3:::guarded/closed/*"}
        del closed["Condition"]
        policy = {"Version": "2012-10-17", "Statement": [TLS_ONLY, closed]}
        client.put_bucket_policy(Bucket="guarded", Policy=json.dumps(policy))
        client.put_object(Bucket="guarded", Key="bootstrap/b.json", Body=b"{}")
        with pytest.raises(ClientError) as refused:
            client.put_object(Bucket="guarded", Key="closed/c.json", Body=b"{}")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_expected_bucket_owner_refuses_a_bucket_of_another_account_whatever_the_policy() -> None:
    with LocalAws() as aws:
        client = aws.central_session().client("s3")
        client.create_bucket(Bucket="owned")
        client.put_object(Bucket="owned", Key="t.json", Body=b"{}")
        owner = aws.central.account_id
        assert (
            client.get_object(Bucket="owned", Key="t.json", ExpectedBucketOwner=owner)["Body"].read() == b"{}"
        )
        client.head_bucket(Bucket="owned", ExpectedBucketOwner=owner)
        refusals = []
        for call in (
            lambda: client.get_object(Bucket="owned", Key="t.json", ExpectedBucketOwner="210987654321"),
            lambda: client.put_object(
                Bucket="owned", Key="u.json", Body=b"{}", ExpectedBucketOwner="210987654321"
            ),
            lambda: client.get_bucket_versioning(Bucket="owned", ExpectedBucketOwner="210987654321"),
        ):
            with pytest.raises(ClientError) as refused:
                call()
            refusals.append(
                (
                    refused.value.response["Error"]["Code"],
                    refused.value.response["ResponseMetadata"]["HTTPStatusCode"],
                )
            )
    assert refusals == [("AccessDenied", 403)] * 3
