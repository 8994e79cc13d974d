"""Who may assume a role, under the AWS-faithful STS patches in ``localaws.sts``: trust policies
(principals, actions, conditions, the external id, deny statements), AssumeRole's request validation
(role ARN, external id, session name, duration, role chaining), the patches' installation and a threaded
moto server, and the canary on the moto internals every STS patch relies on.

Session expiry is in ``test_sts_expiry``, MFA in ``test_sts_mfa``; the setup they share (``sts_aws``)
and the helpers are in this package's ``conftest``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.core.models import DEFAULT_ACCOUNT_ID

from localaws import sts as local_sts
from localaws.sts import account_credentials, install
from tests.localaws.conftest import (
    DEFAULT_CALLER,
    OTHER,
    TARGET,
    assume,
    client,
    create_role,
    denied,
    may_assume_roles,
    session_kwargs,
    threaded_moto_server,
    trust,
    validation,
)

pytestmark = pytest.mark.usefixtures("sts_aws")

EXTERNAL_ID = "nexus-7f3c2a9e-tenant-42"


def external_id_trust(principal: Any = None) -> dict[str, Any]:
    return trust(
        principal or {"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root"},
        {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
    )


def role_arn(name: str, account: str = TARGET) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


# ------------------------------------------------------------------------------ step 1: trust policies
def test_right_external_id_gives_credentials_that_act_in_the_target_account() -> None:
    arn = create_role("deployer", external_id_trust(), allow=("iam:ListRoles",))

    response = assume(arn, ExternalId=EXTERNAL_ID)

    creds = session_kwargs(response["Credentials"])
    identity = client("sts", creds).get_caller_identity()
    assert identity["Account"] == TARGET
    assert identity["Arn"] == f"arn:aws:sts::{TARGET}:assumed-role/deployer/deploy"
    assert response["AssumedRoleUser"]["Arn"] == identity["Arn"]
    # The credentials really act in the target account: they see its roles, the default account's do not.
    assert [r["RoleName"] for r in client("iam", creds).list_roles()["Roles"]] == ["deployer"]
    assert client("iam").list_roles()["Roles"] == []


def test_wrong_external_id_is_denied() -> None:
    arn = create_role("deployer", external_id_trust())

    with pytest.raises(ClientError) as exc:
        assume(arn, ExternalId="nexus-someone-else")

    denied(exc, DEFAULT_CALLER, arn)


def test_missing_external_id_is_denied_when_the_policy_requires_one() -> None:
    arn = create_role("deployer", external_id_trust())

    with pytest.raises(ClientError) as exc:
        assume(arn)

    denied(exc, DEFAULT_CALLER, arn)


def test_role_that_does_not_exist_is_denied() -> None:
    create_role("deployer", external_id_trust())
    missing = role_arn("no-such-role")

    with pytest.raises(ClientError) as exc:
        assume(missing, ExternalId=EXTERNAL_ID)

    denied(exc, DEFAULT_CALLER, missing)


def test_role_in_another_account_with_the_same_name_is_not_found() -> None:
    create_role("deployer", external_id_trust(), account=OTHER)

    with pytest.raises(ClientError) as exc:
        assume(role_arn("deployer"), ExternalId=EXTERNAL_ID)

    denied(exc, DEFAULT_CALLER, role_arn("deployer"))


def test_principal_of_another_account_is_denied() -> None:
    arn = create_role("deployer", external_id_trust({"AWS": f"arn:aws:iam::{OTHER}:root"}))

    with pytest.raises(ClientError) as exc:
        assume(arn, ExternalId=EXTERNAL_ID)

    denied(exc, DEFAULT_CALLER, arn)


def test_policy_without_condition_allows_without_external_id() -> None:
    arn = create_role("deployer", trust({"AWS": DEFAULT_ACCOUNT_ID}))

    creds = session_kwargs(assume(arn)["Credentials"])

    assert client("sts", creds).get_caller_identity()["Account"] == TARGET


def test_deny_statement_wins_over_allow() -> None:
    policy = external_id_trust()
    policy["Statement"].append({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:*"})
    arn = create_role("deployer", policy)

    with pytest.raises(ClientError) as exc:
        assume(arn, ExternalId=EXTERNAL_ID)

    denied(exc, DEFAULT_CALLER, arn)


def test_deny_with_a_condition_applies_only_when_the_condition_matches() -> None:
    policy = trust({"AWS": DEFAULT_ACCOUNT_ID})
    policy["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sts:AssumeRole",
            "Condition": {"StringLike": {"sts:ExternalId": "blocked-*"}},
        }
    )
    arn = create_role("deployer", policy)

    assume(arn, ExternalId="fine-id")
    with pytest.raises(ClientError) as exc:
        assume(arn, ExternalId="blocked-tenant")
    denied(exc, DEFAULT_CALLER, arn)


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": DEFAULT_ACCOUNT_ID},
        {"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root"},
        {"AWS": [f"arn:aws:iam::{OTHER}:root", DEFAULT_ACCOUNT_ID]},
    ],
    ids=["star", "aws-star", "account-id", "root-arn", "list"],
)
def test_principal_forms_that_name_the_caller_are_allowed(principal: Any) -> None:
    arn = create_role("deployer", trust(principal))

    assert assume(arn)["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{TARGET}:assumed-role/deployer/deploy"


@pytest.mark.parametrize(
    "action", ["sts:AssumeRole", "sts:*", ["sts:TagSession", "sts:AssumeRole"], "sts:Assume*"]
)
def test_action_forms_that_cover_assume_role_are_allowed(action: Any) -> None:
    arn = create_role("deployer", trust({"AWS": DEFAULT_ACCOUNT_ID}, Action=action))

    assert assume(arn)["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{TARGET}:assumed-role/deployer/deploy"


def test_statement_for_another_action_does_not_allow() -> None:
    arn = create_role("deployer", trust({"AWS": DEFAULT_ACCOUNT_ID}, Action="sts:AssumeRoleWithSAML"))

    with pytest.raises(ClientError) as exc:
        assume(arn)

    denied(exc, DEFAULT_CALLER, arn)


def test_service_principal_does_not_allow_an_aws_caller() -> None:
    arn = create_role("deployer", trust({"Service": "lambda.amazonaws.com"}))

    with pytest.raises(ClientError) as exc:
        assume(arn)

    denied(exc, DEFAULT_CALLER, arn)


def test_string_like_external_id_condition() -> None:
    arn = create_role(
        "deployer",
        trust({"AWS": DEFAULT_ACCOUNT_ID}, {"StringLike": {"sts:ExternalId": "nexus-*-tenant-??"}}),
    )

    assume(arn, ExternalId=EXTERNAL_ID)
    with pytest.raises(ClientError) as exc:
        assume(arn, ExternalId="nexus-7f3c-tenant-420")
    denied(exc, DEFAULT_CALLER, arn)


def test_iam_user_principal_matches_that_user_only() -> None:
    iam = client("iam")
    user_arn = iam.create_user(UserName="alice", Path="/people/")["User"]["Arn"]
    iam.create_user(UserName="bob")
    may_assume_roles(iam, "alice", "bob")
    alice = iam.create_access_key(UserName="alice")["AccessKey"]
    bob = iam.create_access_key(UserName="bob")["AccessKey"]
    arn = create_role("deployer", trust({"AWS": user_arn}))

    alice_creds = {
        "aws_access_key_id": alice["AccessKeyId"],
        "aws_secret_access_key": alice["SecretAccessKey"],
    }
    bob_creds = {"aws_access_key_id": bob["AccessKeyId"], "aws_secret_access_key": bob["SecretAccessKey"]}
    assume(arn, alice_creds)
    with pytest.raises(ClientError) as exc:
        assume(arn, bob_creds)
    denied(exc, f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:user/bob", arn)


def test_role_principal_matches_sessions_of_that_role_path_insensitively() -> None:
    service_role = create_role(
        "nexus-service", trust({"AWS": DEFAULT_ACCOUNT_ID}), account=OTHER, path="/svc/"
    )
    assert service_role == f"arn:aws:iam::{OTHER}:role/svc/nexus-service"
    create_role("intruder", trust({"AWS": DEFAULT_ACCOUNT_ID}), account=OTHER)
    target = create_role(
        "deployer",
        trust(
            {"AWS": f"arn:aws:iam::{OTHER}:role/nexus-service"},
            {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
        ),
    )
    service = session_kwargs(assume(service_role)["Credentials"])
    intruder = session_kwargs(assume(role_arn("intruder", OTHER))["Credentials"])

    chained = assume(target, service, ExternalId=EXTERNAL_ID)

    assert chained["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{TARGET}:assumed-role/deployer/deploy"
    with pytest.raises(ClientError) as exc:
        assume(target, intruder, ExternalId=EXTERNAL_ID)
    denied(exc, f"arn:aws:sts::{OTHER}:assumed-role/intruder/deploy", target)


def test_principal_arn_condition_uses_the_role_arn_of_a_session() -> None:
    source = create_role("source", trust({"AWS": DEFAULT_ACCOUNT_ID}), account=OTHER)
    target = create_role(
        "deployer",
        trust({"AWS": OTHER}, {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:role/sour*"}}),
    )

    assume(target, session_kwargs(assume(source)["Credentials"]))
    with pytest.raises(ClientError):
        assume(target, account_credentials(OTHER).boto3_kwargs())


def test_unsupported_condition_operator_never_allows() -> None:
    arn = create_role(
        "deployer", trust({"AWS": DEFAULT_ACCOUNT_ID}, {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}})
    )

    with pytest.raises(ClientError) as exc:
        assume(arn)
    denied(exc, DEFAULT_CALLER, arn)


def test_account_credentials_act_in_that_account_as_its_default_identity() -> None:
    key, secret = account_credentials(TARGET)

    identity = client(
        "sts", {"aws_access_key_id": key, "aws_secret_access_key": secret}
    ).get_caller_identity()

    assert identity["Account"] == TARGET
    assert identity["Arn"] == f"arn:aws:sts::{TARGET}:user/moto"


# --------------------------------------------------------------------------------- step 1: validation
@pytest.mark.parametrize(
    "bad_arn",
    [
        "arn:aws:iam::1111:role/deployer",
        "arn:aws:iam::111111111111:user/deployer",
        "not-an-arn-at-all-really",
    ],
)
def test_malformed_role_arn_is_a_validation_error(bad_arn: str) -> None:
    with pytest.raises(ClientError) as exc:
        assume(bad_arn)

    assert validation(exc) == "Request ARN is invalid"


def test_too_long_role_arn_is_a_validation_error() -> None:
    with pytest.raises(ClientError) as exc:
        assume(role_arn("a/" * 1100 + "x"))

    assert "Member must have length less than or equal to 2048" in validation(exc)


@pytest.mark.parametrize(
    ("external_id", "rule"),
    [
        ("has space", "satisfy regular expression pattern"),
        ("bad#char", "satisfy regular expression pattern"),
        ("x" * 1225, "have length less than or equal to 1224"),
    ],
)
def test_malformed_external_id_is_a_validation_error(external_id: str, rule: str) -> None:
    arn = create_role("deployer", trust("*"))

    with pytest.raises(ClientError) as exc:
        assume(arn, ExternalId=external_id)

    message = validation(exc)
    assert "at 'externalId' failed to satisfy constraint" in message
    assert rule in message


def test_external_id_with_every_allowed_character_is_accepted() -> None:
    arn = create_role("deployer", trust("*", {"StringEquals": {"sts:ExternalId": "aZ0_+=,.@:/-"}}))

    assert assume(arn, ExternalId="aZ0_+=,.@:/-")["AssumedRoleUser"]["Arn"].endswith(
        ":assumed-role/deployer/deploy"
    )


def test_session_name_pattern_is_validated() -> None:
    arn = create_role("deployer", trust("*"))

    with pytest.raises(ClientError) as exc:
        client("sts").assume_role(RoleArn=arn, RoleSessionName="has space")

    assert "at 'roleSessionName'" in validation(exc)


def test_duration_above_43200_is_a_validation_error() -> None:
    arn = create_role("deployer", trust("*"), MaxSessionDuration=43200)

    with pytest.raises(ClientError) as exc:
        assume(arn, DurationSeconds=43201)

    assert "Member must have value less than or equal to 43200" in validation(exc)


def test_duration_above_the_roles_max_session_duration_is_a_validation_error() -> None:
    arn = create_role("deployer", trust("*"), MaxSessionDuration=7200)
    assume(arn, DurationSeconds=7200)

    with pytest.raises(ClientError) as exc:
        assume(arn, DurationSeconds=7201)

    assert (
        validation(exc) == "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    )


def test_role_chaining_is_limited_to_one_hour() -> None:
    first = create_role("first", trust("*"), account=OTHER)
    second = create_role("second", trust("*"), MaxSessionDuration=43200)
    chained = session_kwargs(assume(first)["Credentials"])
    assume(second, chained, DurationSeconds=3600)

    with pytest.raises(ClientError) as exc:
        assume(second, chained, DurationSeconds=3601)

    assert "1 hour session limit for roles assuming other roles" in validation(exc)


def test_validation_happens_before_the_trust_check() -> None:
    with pytest.raises(ClientError) as exc:
        assume(role_arn("no-such-role"), ExternalId="bad id")

    validation(exc)


def test_install_is_idempotent() -> None:
    from moto.core.responses import BaseResponse
    from moto.sts.responses import TokenResponse

    before = (TokenResponse.assume_role, BaseResponse.setup_class)
    install()
    install()

    assert (TokenResponse.assume_role, BaseResponse.setup_class) == before
    arn = create_role("deployer", external_id_trust())
    with pytest.raises(ClientError):
        assume(arn)
    assume(arn, ExternalId=EXTERNAL_ID)


def test_trust_is_enforced_through_a_threaded_moto_server() -> None:
    with threaded_moto_server() as endpoint:
        arn = create_role("deployer", external_id_trust())
        sts = client("sts", endpoint_url=endpoint)

        with pytest.raises(ClientError) as exc:
            sts.assume_role(RoleArn=arn, RoleSessionName="deploy", ExternalId="wrong-id")
        denied(exc, DEFAULT_CALLER, arn)

        creds = sts.assume_role(RoleArn=arn, RoleSessionName="deploy", ExternalId=EXTERNAL_ID)["Credentials"]
        identity = client("sts", session_kwargs(creds), endpoint_url=endpoint).get_caller_identity()
        assert identity["Account"] == TARGET


def test_trust_policy_evaluator_directly() -> None:
    caller = local_sts.Caller(
        user_id="AROA:s",
        arn=f"arn:aws:sts::{OTHER}:assumed-role/svc/s",
        account=OTHER,
        kind="assumed-role",
        name="svc",
        temporary=True,
        mfa=False,
        role_arn=f"arn:aws:iam::{OTHER}:role/svc",
    )
    allow = trust({"AWS": f"arn:aws:iam::{OTHER}:role/svc"})

    assert local_sts.trust_policy_allows(allow, caller, {})
    assert local_sts.trust_policy_allows(json.dumps(allow), caller, {})
    assert not local_sts.trust_policy_allows("not json", caller, {})
    assert not local_sts.trust_policy_allows(trust({"AWS": f"arn:aws:iam::{OTHER}:user/svc"}), caller, {})
    null_check = trust("*", {"Null": {"sts:ExternalId": "false"}})
    assert local_sts.trust_policy_allows(null_check, caller, {"sts:externalid": "x1"})
    assert not local_sts.trust_policy_allows(null_check, caller, {})
    not_equals = trust("*", {"StringNotEquals": {"sts:ExternalId": "x1"}})
    assert local_sts.trust_policy_allows(not_equals, caller, {})
    assert not local_sts.trust_policy_allows(not_equals, caller, {"sts:externalid": "x1"})


# ---------------------------------------------------------------------------------------- step 5: canary
def test_canary_moto_internals_that_the_patches_rely_on_are_unchanged() -> None:
    """If this fails, moto changed under localaws/sts/: re-check every patch before trusting the tests."""
    import moto
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    assert moto.__version__ == local_sts.MOTO_VERSION, (
        f"moto {moto.__version__} is installed but localaws/sts/ was verified against {local_sts.MOTO_VERSION}"
    )
    local_sts.check_moto_internals()
    # Runtime shapes that signatures cannot show.
    iam = client("iam")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="canary")["VirtualMFADevice"]
    model = iam_backends[DEFAULT_ACCOUNT_ID]["aws"].virtual_mfa_devices[device["SerialNumber"]]
    assert model.base32_string_seed == device["Base32StringSeed"].decode(), (
        "VirtualMfaDevice.base32_string_seed"
    )
    assert model.enable_date is None, "VirtualMfaDevice.enable_date"
    assert model.user is None, "VirtualMfaDevice.user"
    arn = create_role("canary", trust("*"))
    credentials = assume(arn)["Credentials"]
    assumed = sts_backends[TARGET]["aws"].get_assumed_role_from_access_key(credentials["AccessKeyId"])
    assert assumed is not None, "assumed roles are stored in the target account's STS backend"
    assert assumed.role_arn == arn, "AssumedRole.role_arn"
    assert assumed.expiration.tzinfo is None, "AssumedRole.expiration is a naive UTC datetime"
    role = iam_backends[TARGET]["aws"].get_role("canary")
    assert json.loads(role.assume_role_policy_document) == trust("*"), "Role.assume_role_policy_document"
    assert int(str(role.max_session_duration)) == 3600, "Role.max_session_duration"


def test_canary_reports_a_changed_internal_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sts.models import STSBackend

    monkeypatch.delattr(STSBackend, "get_assumed_role_from_access_key")

    with pytest.raises(
        RuntimeError, match=r"moto internals changed \(STSBackend.get_assumed_role_from_access_key"
    ):
        local_sts.check_moto_internals()
