"""Domain rules without AWS: statuses, regions, templates, error translation, settings."""

from __future__ import annotations

import json

import botocore.session
import pytest

from chalicelib.domain.aws_errors import translate
from chalicelib.domain.errors import ErrorKind, TransientAwsError, UnprocessableRequest
from chalicelib.domain.fingerprint import config_hash
from chalicelib.domain.model import ExecutionEnd, new_external_id, trust_policy_for
from chalicelib.domain.regions import REGIONS_BY_PARTITION
from chalicelib.domain.stack_status import (
    STACK_PHASES,
    STACK_REMEDIES,
    Remedy,
    StackPhase,
    phase_of,
    remedy_of,
)
from chalicelib.domain.templates import parse_template
from chalicelib.service.workflow import error_from_state
from chalicelib.settings import Settings, SettingsError


def test_every_stack_status_in_botocore_has_a_phase():
    model = botocore.session.get_session().get_service_model("cloudformation")
    statuses = set(model.shape_for("StackStatus").enum)  # type: ignore[attr-defined]
    assert len(statuses) == 23
    assert statuses == set(STACK_PHASES)


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("CREATE_COMPLETE", StackPhase.SUCCEEDED),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", StackPhase.IN_PROGRESS),
        ("ROLLBACK_COMPLETE", StackPhase.FAILED),
        ("UPDATE_ROLLBACK_COMPLETE", StackPhase.FAILED),
        ("UPDATE_ROLLBACK_FAILED", StackPhase.STUCK),
        ("DELETE_FAILED", StackPhase.STUCK),
        ("DELETE_COMPLETE", StackPhase.GONE),
        ("SOMETHING_NEW", StackPhase.STUCK),
    ],
)
def test_stack_phases(status, phase):
    assert phase_of(status) is phase


def test_every_stack_status_in_botocore_has_a_remedy():
    model = botocore.session.get_session().get_service_model("cloudformation")
    statuses = set(model.shape_for("StackStatus").enum)  # type: ignore[attr-defined]
    assert statuses == set(STACK_REMEDIES)
    assert remedy_of("SOMETHING_NEW") is Remedy.OPERATOR  # never guessed


@pytest.mark.parametrize(
    ("status", "remedy"),
    [
        ("ROLLBACK_COMPLETE", Remedy.RECREATE),
        ("UPDATE_ROLLBACK_FAILED", Remedy.CONTINUE_ROLLBACK),
        ("DELETE_FAILED", Remedy.DELETE_RETAINING),
        ("REVIEW_IN_PROGRESS", Remedy.EXECUTE_REVIEW),
        ("UPDATE_ROLLBACK_COMPLETE", Remedy.UPDATE),
        ("UPDATE_IN_PROGRESS", Remedy.WAIT),
        ("DELETE_COMPLETE", Remedy.CREATE),
        (None, Remedy.CREATE),
    ],
)
def test_stack_remedies(status, remedy):
    assert remedy_of(status) is remedy


def test_config_hash_ignores_json_formatting_and_sees_every_input():
    base = config_hash('{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}', {"A": "1"}, {"t": "x"}, "arn:r")
    pretty = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}, indent=4)
    assert config_hash(pretty, {"A": "1"}, {"t": "x"}, "arn:r") == base
    assert len(base) == 64
    others = {
        config_hash(pretty, {"A": "2"}, {"t": "x"}, "arn:r"),
        config_hash(pretty, {"A": "1"}, {"t": "y"}, "arn:r"),
        config_hash(pretty, {"A": "1"}, {"t": "x"}, "arn:other"),
        config_hash("Resources: {}", {"A": "1"}, {"t": "x"}, "arn:r"),
    }
    assert base not in others
    assert len(others) == 4


def test_regions_match_botocore_partitions():
    endpoints = botocore.session.get_session().get_data("endpoints")
    for partition in endpoints["partitions"]:
        if partition["partition"] in REGIONS_BY_PARTITION:
            assert set(partition["regions"]) == REGIONS_BY_PARTITION[partition["partition"]], partition[
                "partition"
            ]


def test_external_ids_are_long_random_and_valid_for_sts():
    ids = {new_external_id() for _ in range(1000)}
    assert len(ids) == 1000
    import re

    assert all(len(i) >= 32 and re.fullmatch(r"[\w+=,.@:/-]{2,1224}", i) for i in ids)


def test_trust_policy_names_the_principal_and_requires_the_external_id():
    policy = trust_policy_for("arn:aws:iam::123456789012:role/Svc", "nx-abc")
    statement = policy["Statement"][0]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/Svc"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "nx-abc"}}


def test_yaml_short_tags_and_parameters():
    summary = parse_template(
        "Parameters:\n  Env:\n    Type: String\n  Size:\n    Type: Number\n    Default: 1\n"
        "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Sub '${Env}-b'\n"
        "Outputs:\n  A:\n    Value: !GetAtt [B, Arn]\n"
    )
    assert summary.resource_count == 1
    assert summary.parameters == {"Env": False, "Size": True}
    summary.check_parameters({"Env": "dev"})
    with pytest.raises(UnprocessableRequest) as caught:
        summary.check_parameters({"Size": "2"})
    assert caught.value.details == {"undeclared": [], "missing": ["Env"]}


@pytest.mark.parametrize("body", ["", "null", "[]", "{", "Resources: [", json.dumps({"Resources": "x"})])
def test_not_a_template(body):
    with pytest.raises(UnprocessableRequest) as caught:
        parse_template(body)
    assert caught.value.code == "INVALID_TEMPLATE"


# Every STS and IAM error code named in aws-rules.md, and what the user is told.
@pytest.mark.parametrize(
    ("code", "message", "operation", "expected"),
    [
        (
            "AccessDenied",
            "User: x is not authorized to perform: sts:AssumeRole",
            "AssumeRole",
            "ACCESS_DENIED",
        ),
        ("AccessDenied", "MultiFactorAuthentication failed", "AssumeRole", "MFA_REQUIRED"),
        ("AccessDenied", "not authorized", "CreateStack", "ACCESS_DENIED"),
        (
            "ExpiredToken",
            "The security token included in the request is expired",
            "CreateStack",
            "SESSION_EXPIRED",
        ),
        ("ExpiredTokenException", "expired", "DescribeStacks", "SESSION_EXPIRED"),
        ("RegionDisabledException", "STS is not activated", "AssumeRole", "REGION_DISABLED"),
        ("MalformedPolicyDocument", "bad", "AssumeRole", "INTERNAL_ERROR"),
        ("PackedPolicyTooLarge", "big", "AssumeRole", "INTERNAL_ERROR"),
        ("Throttling", "Rate exceeded", "DescribeStacks", "AWS_THROTTLED"),
        ("IDPCommunicationError", "idp down", "AssumeRoleWithSAML", "AWS_THROTTLED"),
        ("NoSuchEntity", "role not found", "GetRole", "INVALID_ROLE_ARN"),
        ("ValidationError", "Request ARN is invalid", "AssumeRole", "INVALID_ROLE_ARN"),
        (
            "InvalidClientTokenId",
            "The security token included in the request is invalid",
            "GetCallerIdentity",
            "ACCESS_DENIED",
        ),
        ("ValidationError", "Template format error", "CreateStack", "AWS_REQUEST_FAILED"),
    ],
)
def test_aws_errors_translate_to_the_guides_cases(code, message, operation, expected):
    error = translate(code, message, operation=operation)
    assert error.code == expected
    assert error.hint
    assert code in error.message
    if expected == "AWS_THROTTLED":
        assert error.kind is ErrorKind.TRANSIENT


def test_error_from_state_reads_a_step_error_back():
    cause = json.dumps(
        {
            "errorType": "TargetAccessError",
            "errorMessage": json.dumps({"code": "ACCESS_DENIED", "message": "m", "hint": "h", "details": {}}),
        }
    )
    info = error_from_state({"Error": "TargetAccessError", "Cause": cause})
    assert (info.code, info.message, info.hint) == ("ACCESS_DENIED", "m", "h")
    unknown = error_from_state({"Error": "KeyError", "Cause": json.dumps({"errorMessage": "'x'"})})
    assert unknown.code == "INTERNAL_ERROR"
    assert "KeyError" in unknown.message
    assert error_from_state({"Error": "States.Timeout", "Cause": ""}).code == "STEP_TIMED_OUT"
    timed_out = json.dumps(
        {
            "errorType": "Sandbox.Timedout",
            "errorMessage": "RequestId: r-1 Error: Task timed out after 120.00 seconds",
        }
    )
    lambda_timeout = error_from_state({"Error": "Sandbox.Timedout", "Cause": timed_out})
    assert lambda_timeout.code == "STEP_TIMED_OUT"
    assert "Task timed out after 120.00 seconds" in lambda_timeout.message
    # Lambda refused the invocation through every Retry: throttled, and not AWS_THROTTLED, which on a
    # FAILED operation says its workflow never started (Deployment.never_started).
    refused = json.dumps({"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."})
    throttled = error_from_state({"Error": "Lambda.TooManyRequestsException", "Cause": refused})
    assert throttled.code == "STEP_THROTTLED"
    assert "Rate Exceeded." in throttled.message
    # A step whose own calls AWS throttled through every Retry (TransientAwsError, whose code is
    # AWS_THROTTLED): its workflow ran, so not AWS_THROTTLED either.
    step = TransientAwsError("UpdateItem failed: ThrottlingException: Rate exceeded")
    cause = json.dumps({"errorType": "TransientAwsError", "errorMessage": json.dumps(step.as_dict())})
    ran_out = error_from_state({"Error": "TransientAwsError", "Cause": cause})
    assert ran_out.code == "STEP_THROTTLED"
    assert "UpdateItem failed: ThrottlingException" in ran_out.message
    assert ran_out.hint == throttled.hint


def test_settings_name_what_is_missing():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"AWS_REGION": "us-east-1"})
    assert "NEXUS_TABLE_NAME" in str(caught.value)
    assert "NEXUS_SERVICE_ROLE_ARN" in str(caught.value)
    settings = Settings.from_env(
        {
            "AWS_DEFAULT_REGION": "eu-west-1",
            "NEXUS_TABLE_NAME": "t-1",
            "NEXUS_SERVICE_ROLE_ARN": "arn:aws:iam::123456789012:role/Svc",
            "NEXUS_POLL_INITIAL_SECONDS": "0",
        }
    )
    assert settings.region == "eu-west-1"
    assert settings.poll_initial_seconds == 0


@pytest.mark.parametrize(
    ("status", "error", "code", "how"),
    [
        ("ABORTED", "Operator", "EXECUTION_ABORTED", "was stopped"),
        ("TIMED_OUT", None, "EXECUTION_TIMED_OUT", "timed out"),
        ("FAILED", "States.Runtime", "EXECUTION_FAILED", "failed (States.Runtime)"),
        ("FAILED", None, "EXECUTION_FAILED", "failed (no error named)"),
    ],
)
def test_an_execution_end_names_how_it_ended_and_which_execution(
    status: str, error: str | None, code: str, how: str
) -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:nexus-deployer-prod:op-123"
    end = ExecutionEnd(arn, status, error)
    info = end.info("the operation's workflow", "Look at the stack.")
    assert end.name == "op-123"
    assert (info.code, info.hint) == (code, "Look at the stack.")
    assert (
        info.message == f"The execution of the operation's workflow {how} before it recorded the end ({arn})."
    )


@pytest.mark.parametrize(
    ("value", "accepted"), [("0", True), ("45", True), ("59", True), ("60", False), ("-1", False)]
)
def test_the_redeploy_claim_lease_stays_under_lambdas_first_retry(value: str, accepted: bool) -> None:
    """Lambda delivers a failed event again after a minute: a lease of 60 s or more would make that
    delivery a duplicate of a claim whose claimer died, and the redeploy would be lost."""
    environ = {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "NEXUS_TABLE_NAME": "t-1",
        "NEXUS_SERVICE_ROLE_ARN": "arn:aws:iam::123456789012:role/Svc",
        "NEXUS_REDEPLOY_CLAIM_LEASE_SECONDS": value,
    }
    if accepted:
        assert Settings.from_env(environ).redeploy_claim_lease_seconds == int(value)
    else:
        with pytest.raises(SettingsError, match="NEXUS_REDEPLOY_CLAIM_LEASE_SECONDS"):
            Settings.from_env(environ)
