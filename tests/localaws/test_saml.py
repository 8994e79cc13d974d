"""The local AWS's AssumeRoleWithSAML checks what AWS checks: provider, signature, expiry, role pair, trust.

Assertions come from ``localaws.adfs`` over its real HTTP sign-on flow (``nexus_cli.adfs``); every
refusal is asserted through boto3 with AWS's error code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from localaws import saml
from localaws.adfs import AdfsProvider, AdfsUser
from localaws.environment import LocalAws
from localaws.sts import CLOCK
from nexus_cli.adfs import fetch_assertion, roles_in

ACCOUNT = "111111111111"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Federated"
UNTRUSTED = f"arn:aws:iam::{ACCOUNT}:role/Untrusted"


@pytest.fixture
def adfs(local_aws: LocalAws) -> Iterator[AdfsProvider]:
    iam = local_aws.account_session(ACCOUNT).client("iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithSAML"}]}  # fmt: skip
    iam.create_role(RoleName="Federated", AssumeRolePolicyDocument=json.dumps(trust))
    other = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    iam.create_role(RoleName="Untrusted", AssumeRolePolicyDocument=json.dumps(other))
    with AdfsProvider({"bob": AdfsUser("pw", [(ROLE, PROVIDER), (UNTRUSTED, PROVIDER)])}) as provider:
        iam.create_saml_provider(Name="corp", SAMLMetadataDocument=provider.metadata_xml())
        yield provider
    CLOCK.reset()


def _sts() -> object:
    return boto3.client("sts", region_name="us-east-1")


def _error(role: str, principal: str, assertion: str) -> str:
    with pytest.raises(ClientError) as caught:
        _sts().assume_role_with_saml(RoleArn=role, PrincipalArn=principal, SAMLAssertion=assertion)  # type: ignore[attr-defined]
    return str(caught.value.response["Error"]["Code"])


def test_a_signed_assertion_for_a_trusting_role_gives_credentials_in_its_account(adfs: AdfsProvider) -> None:
    assertion = fetch_assertion(adfs.sign_on_url, "bob", "pw")
    assert [r.role_arn for r in roles_in(assertion)] == [ROLE, UNTRUSTED]
    answer = _sts().assume_role_with_saml(RoleArn=ROLE, PrincipalArn=PROVIDER, SAMLAssertion=assertion)  # type: ignore[attr-defined]
    credentials = answer["Credentials"]
    identity = boto3.client(
        "sts", region_name="us-east-1", aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"], aws_session_token=credentials["SessionToken"],
    ).get_caller_identity()  # fmt: skip
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/Federated/bob@127.0.0.1"


def test_refusals(adfs: AdfsProvider) -> None:
    assertion = fetch_assertion(adfs.sign_on_url, "bob", "pw")
    assert _error(UNTRUSTED, PROVIDER, assertion) == "AccessDenied"  # trust policy names no SAML provider
    assert _error(f"arn:aws:iam::{ACCOUNT}:role/NotOffered", PROVIDER, assertion) == "AccessDenied"
    assert _error(ROLE, PROVIDER + "-other", assertion) == "InvalidIdentityToken"
    forged = base64.b64decode(assertion).replace(b"bob@127.0.0.1", b"eve@127.0.0.1")
    assert _error(ROLE, PROVIDER, base64.b64encode(forged).decode()) == "InvalidIdentityToken"
    CLOCK.advance(adfs.assertion_seconds + 1)
    assert _error(ROLE, PROVIDER, assertion) == "ExpiredTokenException"


def test_an_assertion_signed_by_another_key_is_refused(adfs: AdfsProvider) -> None:
    with AdfsProvider({"bob": AdfsUser("pw", [(ROLE, PROVIDER)])}) as impostor:
        assertion = fetch_assertion(impostor.sign_on_url, "bob", "pw")
    assert _error(ROLE, PROVIDER, assertion) == "InvalidIdentityToken"


def test_moto_internals_canary() -> None:
    saml.check_moto_internals()  # raises RuntimeError naming what changed
