"""MFA under the AWS-faithful STS patches in ``localaws.sts``: TOTP codes (RFC 6238), virtual MFA devices
and their enabling, roles that require MFA, which codes and devices are accepted (once, adjacent time
steps, the caller's own device), MFA carried into role chaining, and GetSessionToken.

The setup shared with the other ``test_sts_*`` modules (``sts_aws``) and the helpers are in this
package's ``conftest``.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.core.models import DEFAULT_ACCOUNT_ID

from localaws import sts as local_sts
from localaws.sts import CLOCK
from tests.localaws.conftest import (
    OTHER,
    TARGET,
    assume,
    client,
    create_role,
    denied,
    expired,
    may_assume_roles,
    session_kwargs,
    trust,
    validation,
)

pytestmark = pytest.mark.usefixtures("sts_aws")


# ------------------------------------------------------------------------------------------- step 3: MFA
def test_totp_code_matches_rfc_6238_vectors() -> None:
    seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of b"12345678901234567890"
    vectors = {
        59: "287082",
        1111111109: "081804",
        1111111111: "050471",
        1234567890: "005924",
        2000000000: "279037",
    }

    assert {at: local_sts.totp_code(seed, at) for at in vectors} == vectors
    assert local_sts.totp_code(seed.lower().encode(), 59) == "287082"


def middle_of_a_totp_step() -> None:
    """Move CLOCK to 15 s into a 30 s step, so no test straddles a step boundary."""
    CLOCK.advance(15 - CLOCK.time() % 30)


@pytest.fixture
def alice() -> dict[str, Any]:
    """IAM user alice (default account) with access keys and an enabled virtual MFA device."""
    middle_of_a_totp_step()
    iam = client("iam")
    iam.create_user(UserName="alice")
    may_assume_roles(iam, "alice")
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    serial, seed = local_sts.enable_virtual_mfa(iam, "alice", "alice-phone")
    return {
        "creds": creds,
        "serial": serial,
        "seed": seed,
        "arn": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:user/alice",
    }


def mfa_trust() -> dict[str, Any]:
    return trust({"AWS": DEFAULT_ACCOUNT_ID}, {"Bool": {"aws:MultiFactorAuthPresent": "true"}})


def test_enable_virtual_mfa_registers_the_device_for_the_user(alice: dict[str, Any]) -> None:
    devices = client("iam").list_mfa_devices(UserName="alice")["MFADevices"]

    assert [d["SerialNumber"] for d in devices] == [alice["serial"]]
    assert alice["serial"] == f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:mfa/alice-phone"
    assert len(alice["seed"]) == 64


def test_enable_mfa_device_requires_two_consecutive_current_codes() -> None:
    iam = client("iam")
    iam.create_user(UserName="carol")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="carol-phone")["VirtualMFADevice"]
    serial, seed = device["SerialNumber"], device["Base32StringSeed"]
    middle_of_a_totp_step()
    now = CLOCK.time()

    for first, second in (
        ("123456", "654321"),
        (local_sts.totp_code(seed, now), local_sts.totp_code(seed, now - 30)),
    ):
        with pytest.raises(ClientError) as exc:
            iam.enable_mfa_device(
                UserName="carol", SerialNumber=serial, AuthenticationCode1=first, AuthenticationCode2=second
            )
        assert exc.value.response["Error"]["Code"] == "InvalidAuthenticationCode"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert iam.list_mfa_devices(UserName="carol")["MFADevices"] == []

    iam.enable_mfa_device(
        UserName="carol",
        SerialNumber=serial,
        AuthenticationCode1=local_sts.totp_code(seed, now - 30),
        AuthenticationCode2=local_sts.totp_code(seed, now),
    )
    assert [d["SerialNumber"] for d in iam.list_mfa_devices(UserName="carol")["MFADevices"]] == [serial]


def test_mfa_required_role_refuses_assume_role_without_mfa(alice: dict[str, Any]) -> None:
    arn = create_role("admin", mfa_trust())

    with pytest.raises(ClientError) as exc:
        assume(arn, alice["creds"])

    denied(exc, alice["arn"], arn)


def test_mfa_required_role_accepts_the_current_code(alice: dict[str, Any]) -> None:
    arn = create_role("admin", mfa_trust())

    response = assume(
        arn, alice["creds"], SerialNumber=alice["serial"], TokenCode=local_sts.totp_code(alice["seed"])
    )

    assert response["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{TARGET}:assumed-role/admin/deploy"


def test_adjacent_time_steps_are_accepted_but_older_codes_are_not(alice: dict[str, Any]) -> None:
    arn = create_role("admin", mfa_trust())
    now = CLOCK.time()

    for at in (now - 30, now + 30):
        assume(
            arn,
            alice["creds"],
            SerialNumber=alice["serial"],
            TokenCode=local_sts.totp_code(alice["seed"], at),
        )
    with pytest.raises(ClientError) as exc:
        assume(
            arn,
            alice["creds"],
            SerialNumber=alice["serial"],
            TokenCode=local_sts.totp_code(alice["seed"], now - 90),
        )
    assert exc.value.response["Error"]["Message"] == local_sts.MFA_INVALID_CODE


def test_a_code_works_once_then_only_a_newer_one_does(alice: dict[str, Any]) -> None:
    """AWS refuses a code it accepted before, whatever the call: the next call waits for the next code."""
    arn = create_role("admin", mfa_trust())
    now = CLOCK.time()
    code = local_sts.totp_code(alice["seed"], now)
    assume(arn, alice["creds"], SerialNumber=alice["serial"], TokenCode=code)

    sts = client("sts", alice["creds"])
    for again in (code, local_sts.totp_code(alice["seed"], now - 30)):  # the same code, or an older one
        with pytest.raises(ClientError) as exc:
            sts.get_session_token(SerialNumber=alice["serial"], TokenCode=again)
        assert exc.value.response["Error"]["Code"] == "AccessDenied"
        assert exc.value.response["Error"]["Message"] == local_sts.MFA_INVALID_CODE

    newer = local_sts.totp_code(alice["seed"], now + 30)
    assert sts.get_session_token(SerialNumber=alice["serial"], TokenCode=newer)["Credentials"]["AccessKeyId"]
    with pytest.raises(ClientError):
        assume(arn, alice["creds"], SerialNumber=alice["serial"], TokenCode=newer)


def test_wrong_mfa_code_is_access_denied(alice: dict[str, Any]) -> None:
    arn = create_role("admin", mfa_trust())
    good = local_sts.totp_code(alice["seed"])
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"

    with pytest.raises(ClientError) as exc:
        assume(arn, alice["creds"], SerialNumber=alice["serial"], TokenCode=wrong)

    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert exc.value.response["Error"]["Message"] == local_sts.MFA_INVALID_CODE
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_wrong_code_is_refused_even_when_the_role_does_not_need_mfa(alice: dict[str, Any]) -> None:
    arn = create_role("plain", trust("*"))

    with pytest.raises(ClientError) as exc:
        assume(arn, alice["creds"], SerialNumber=alice["serial"], TokenCode="000000")

    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_mfa_device_of_another_user_is_refused(alice: dict[str, Any]) -> None:
    iam = client("iam")
    iam.create_user(UserName="bob")
    may_assume_roles(iam, "bob")
    key = iam.create_access_key(UserName="bob")["AccessKey"]
    bob = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    arn = create_role("admin", mfa_trust())

    with pytest.raises(ClientError) as exc:
        assume(arn, bob, SerialNumber=alice["serial"], TokenCode=local_sts.totp_code(alice["seed"]))

    assert exc.value.response["Error"]["Message"] == local_sts.MFA_UNKNOWN_DEVICE


def test_unknown_or_unassigned_device_is_refused(alice: dict[str, Any]) -> None:
    iam = client("iam")
    spare = iam.create_virtual_mfa_device(VirtualMFADeviceName="spare")["VirtualMFADevice"]
    arn = create_role("admin", mfa_trust())

    for serial, seed in (
        (spare["SerialNumber"], spare["Base32StringSeed"]),
        (alice["serial"] + "x", alice["seed"]),
    ):
        with pytest.raises(ClientError) as exc:
            assume(arn, alice["creds"], SerialNumber=serial, TokenCode=local_sts.totp_code(seed))
        assert exc.value.response["Error"]["Message"] == local_sts.MFA_UNKNOWN_DEVICE


def test_token_code_must_be_six_digits(alice: dict[str, Any]) -> None:
    arn = create_role("admin", mfa_trust())

    with pytest.raises(ClientError) as exc:
        assume(arn, alice["creds"], SerialNumber=alice["serial"], TokenCode="12a456")

    assert "at 'tokenCode'" in validation(exc)


def test_bool_if_exists_deny_blocks_long_term_keys_without_mfa(alice: dict[str, Any]) -> None:
    policy = trust({"AWS": DEFAULT_ACCOUNT_ID})
    policy["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "sts:AssumeRole",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        }
    )
    arn = create_role("admin", policy)

    with pytest.raises(ClientError) as exc:
        assume(arn, alice["creds"])
    denied(exc, alice["arn"], arn)
    assume(arn, alice["creds"], SerialNumber=alice["serial"], TokenCode=local_sts.totp_code(alice["seed"]))


def test_a_session_created_with_mfa_carries_it_into_role_chaining(alice: dict[str, Any]) -> None:
    entry = create_role("entry", trust({"AWS": DEFAULT_ACCOUNT_ID}), account=OTHER)
    admin = create_role("admin", trust({"AWS": OTHER}, {"Bool": {"aws:MultiFactorAuthPresent": True}}))
    code = local_sts.totp_code(alice["seed"])
    with_mfa = session_kwargs(
        assume(entry, alice["creds"], SerialNumber=alice["serial"], TokenCode=code)["Credentials"]
    )
    without_mfa = session_kwargs(assume(entry, alice["creds"])["Credentials"])

    assume(admin, with_mfa)
    with pytest.raises(ClientError) as exc:
        assume(admin, without_mfa)
    denied(exc, f"arn:aws:sts::{OTHER}:assumed-role/entry/deploy", admin)


def test_get_session_token_checks_the_code_and_acts_as_the_user(alice: dict[str, Any]) -> None:
    sts = client("sts", alice["creds"])
    with pytest.raises(ClientError) as exc:
        sts.get_session_token(SerialNumber=alice["serial"], TokenCode="000000")
    assert exc.value.response["Error"]["Message"] == local_sts.MFA_INVALID_CODE

    credentials = sts.get_session_token(
        SerialNumber=alice["serial"], TokenCode=local_sts.totp_code(alice["seed"]), DurationSeconds=900
    )["Credentials"]

    session = session_kwargs(credentials)
    assert client("sts", session).get_caller_identity()["Arn"] == alice["arn"]
    assert credentials["AccessKeyId"] != sts.get_session_token()["Credentials"]["AccessKeyId"]
    # The MFA session satisfies an MFA-only trust policy without a code...
    arn = create_role("admin", mfa_trust())
    assume(arn, session)
    # ...a session without MFA does not...
    plain = session_kwargs(sts.get_session_token()["Credentials"])
    with pytest.raises(ClientError) as exc:
        assume(arn, plain)
    denied(exc, alice["arn"], arn)
    # ...and the session expires like any other.
    CLOCK.advance(901)
    with pytest.raises(ClientError) as exc:
        client("sts", session).get_caller_identity()
    expired(exc)


def test_get_session_token_refuses_session_credentials(alice: dict[str, Any]) -> None:
    session = session_kwargs(client("sts", alice["creds"]).get_session_token()["Credentials"])

    with pytest.raises(ClientError) as exc:
        client("sts", session).get_session_token()

    assert exc.value.response["Error"]["Code"] == "AccessDenied"
