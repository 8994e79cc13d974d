"""Behaviour of the AWS-faithful STS patches in ``localaws.sts`` (trust policies, expiry, MFA)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID

from localaws import authorization
from localaws import sts as local_sts
from localaws.sts import CLOCK, account_credentials, install

TARGET = "111111111111"
OTHER = "222222222222"
REGION = "us-east-1"
EXTERNAL_ID = "nexus-7f3c2a9e-tenant-42"
DEFAULT_CALLER = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:user/moto"


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    install()
    authorization.install()  # role sessions and IAM users act within their identity policies, as on AWS
    CLOCK.reset()
    with mock_aws():
        yield
    CLOCK.reset()


_make_client: Callable[..., Any] = boto3.client


def client(service: str, credentials: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return _make_client(service, region_name=REGION, **(credentials or {}), **kwargs)


def session_kwargs(credentials: dict[str, Any]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def trust(principal: Any, condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    statement.update(extra)
    return {"Version": "2012-10-17", "Statement": [statement]}


def external_id_trust(principal: Any = None) -> dict[str, Any]:
    return trust(
        principal or {"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:root"},
        {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
    )


def create_role(
    name: str,
    policy: dict[str, Any],
    account: str = TARGET,
    path: str = "/",
    allow: tuple[str, ...] = ("sts:AssumeRole",),
    **kwargs: Any,
) -> str:
    """Create a role in ``account`` with credentials that belong to that account; its sessions may call
    ``allow`` (by default assume other roles, which AWS requires of a chaining role's own policies)."""
    iam = client("iam", account_credentials(account).boto3_kwargs())
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy), Path=path, **kwargs)
    if allow:
        grant = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(allow), "Resource": "*"}],
        }
        iam.put_role_policy(RoleName=name, PolicyName="allow", PolicyDocument=json.dumps(grant))
    return str(role["Role"]["Arn"])


def may_assume_roles(iam: Any, *users: str) -> None:
    """Let IAM users assume roles, as AWS requires of their own policies (besides the role's trust)."""
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
    for user in users:
        iam.put_user_policy(UserName=user, PolicyName="assume-roles", PolicyDocument=json.dumps(grant))


def role_arn(name: str, account: str = TARGET) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def assume(arn: str, credentials: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    response = client("sts", credentials).assume_role(RoleArn=arn, RoleSessionName="deploy", **kwargs)
    return dict(response)


def denied(exc: pytest.ExceptionInfo[ClientError], caller: str, arn: str) -> None:
    error = exc.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert (
        error["Message"] == f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {arn}"
    )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def validation(exc: pytest.ExceptionInfo[ClientError]) -> str:
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(exc.value.response["Error"]["Message"])


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
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        arn = create_role("deployer", external_id_trust())
        sts = client("sts", endpoint_url=endpoint)

        with pytest.raises(ClientError) as exc:
            sts.assume_role(RoleArn=arn, RoleSessionName="deploy", ExternalId="wrong-id")
        denied(exc, DEFAULT_CALLER, arn)

        creds = sts.assume_role(RoleArn=arn, RoleSessionName="deploy", ExternalId=EXTERNAL_ID)["Credentials"]
        identity = client("sts", session_kwargs(creds), endpoint_url=endpoint).get_caller_identity()
        assert identity["Account"] == TARGET
    finally:
        server.stop()


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


# ---------------------------------------------------------------------------------------- step 2: expiry
def expired(exc: pytest.ExceptionInfo[ClientError], code: str = "ExpiredToken", status: int = 403) -> None:
    error = exc.value.response["Error"]
    assert error["Code"] == code
    assert error["Message"] == "The security token included in the request is expired"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_assumed_role_credentials_expire_after_their_duration() -> None:
    arn = create_role("deployer", trust("*"))
    credentials = assume(arn, DurationSeconds=900)["Credentials"]
    creds = session_kwargs(credentials)
    sts = client("sts", creds)
    lifetime = credentials["Expiration"].timestamp() - CLOCK.time()
    assert 895 < lifetime <= 900

    CLOCK.advance(890)
    assert sts.get_caller_identity()["Account"] == TARGET
    CLOCK.advance(11)

    with pytest.raises(ClientError) as exc:
        sts.get_caller_identity()
    expired(exc)
    with pytest.raises(ClientError) as exc:
        client("iam", creds).list_roles()
    expired(exc)
    with pytest.raises(ClientError) as exc:
        client("cloudformation", creds).list_stacks()
    expired(exc)


def test_expired_credentials_answer_in_each_protocols_shape() -> None:
    arn = create_role("deployer", trust("*"))
    creds = session_kwargs(assume(arn, DurationSeconds=900)["Credentials"])
    CLOCK.advance(901)

    with pytest.raises(ClientError) as exc:
        client("dynamodb", creds).list_tables()
    expired(exc, "ExpiredTokenException", 400)
    with pytest.raises(ClientError) as exc:
        client("stepfunctions", creds).list_state_machines()
    expired(exc, "ExpiredTokenException", 400)
    with pytest.raises(ClientError) as exc:
        client("s3", creds).list_buckets()
    assert exc.value.response["Error"] == {
        "Code": "ExpiredToken",
        "Message": "The provided token has expired.",
    }
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_expiry_only_affects_the_expired_session() -> None:
    arn = create_role("deployer", trust("*"))
    short = session_kwargs(assume(arn, DurationSeconds=900)["Credentials"])
    long = session_kwargs(assume(arn, DurationSeconds=3600)["Credentials"])
    CLOCK.advance(1000)

    with pytest.raises(ClientError):
        client("sts", short).get_caller_identity()
    assert client("sts", long).get_caller_identity()["Account"] == TARGET
    assert client("sts").get_caller_identity()["Arn"] == DEFAULT_CALLER


def test_default_duration_is_one_hour() -> None:
    arn = create_role("deployer", trust("*"))
    credentials = assume(arn)["Credentials"]

    assert 3595 < credentials["Expiration"].timestamp() - CLOCK.time() <= 3600
    CLOCK.advance(3601)
    with pytest.raises(ClientError) as exc:
        client("sts", session_kwargs(credentials)).get_caller_identity()
    expired(exc)


def test_expiration_follows_the_clock_so_new_sessions_are_valid_after_advancing() -> None:
    arn = create_role("deployer", trust("*"))
    CLOCK.advance(24 * 3600)

    credentials = assume(arn, DurationSeconds=900)["Credentials"]

    assert 895 < credentials["Expiration"].timestamp() - CLOCK.time() <= 900
    assert client("sts", session_kwargs(credentials)).get_caller_identity()["Account"] == TARGET


def test_expired_credentials_cannot_assume_another_role() -> None:
    first = create_role("first", trust("*"), account=OTHER)
    second = create_role("second", trust("*"))
    creds = session_kwargs(assume(first, DurationSeconds=900)["Credentials"])
    CLOCK.advance(901)

    with pytest.raises(ClientError) as exc:
        assume(second, creds)
    expired(exc)


def test_expiry_is_enforced_through_a_threaded_moto_server() -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        arn = create_role("deployer", trust("*"))
        credentials = client("sts", endpoint_url=endpoint).assume_role(
            RoleArn=arn, RoleSessionName="deploy", DurationSeconds=900
        )["Credentials"]
        CLOCK.advance(901)

        with pytest.raises(ClientError) as exc:
            client("sts", session_kwargs(credentials), endpoint_url=endpoint).get_caller_identity()
        expired(exc)
        with pytest.raises(ClientError) as exc:
            client("dynamodb", session_kwargs(credentials), endpoint_url=endpoint).list_tables()
        expired(exc, "ExpiredTokenException", 400)
    finally:
        server.stop()


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
