"""Every STS and IAM error code named in the AWS rules maps to one of the guide's cases or a clear class."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_call
from chalicelib.domain.aws_errors import (
    HINT_ACCESS_DENIED,
    HINT_ASSUME_DENIED,
    HINT_INVALID_ROLE_ARN,
    HINT_MFA_CODE,
    HINT_MFA_DEVICE,
    HINT_MFA_REQUIRED,
    HINT_SESSION_EXPIRED,
    HINT_SIMULATE_DENIED,
    translate,
)
from chalicelib.domain.errors import DeployerError, ErrorKind, TransientAwsError

DENIED = "User: arn:aws:sts::1:assumed-role/S/s is not authorized to perform: sts:AssumeRole on resource: r"


@pytest.mark.parametrize(
    ("code", "message", "operation", "expected_code", "hint"),
    [
        # STS (aws-rules.md)
        ("AccessDenied", DENIED, "AssumeRole", "ACCESS_DENIED", HINT_ASSUME_DENIED),
        ("AccessDenied", "MultiFactorAuthentication failed", "AssumeRole", "MFA_REQUIRED", HINT_MFA_REQUIRED),
        # STS refuses the code itself (wrong, or used before: the same words): the hint says a code works once.
        ("AccessDenied", "MultiFactorAuthentication failed with invalid MFA one time pass code.",
         "GetSessionToken", "MFA_REQUIRED", HINT_MFA_CODE),
        # ...or found no enabled device of the caller's by that serial.
        ("AccessDenied", "MultiFactorAuthentication failed, unable to validate MFA code.", "AssumeRole",
         "MFA_REQUIRED", HINT_MFA_DEVICE),
        ("AccessDenied", "Access denied: MFA is required for this action", "GetSessionToken", "MFA_REQUIRED",
         HINT_MFA_REQUIRED),
        # A principal or role whose name holds "mfa" is refused for its own reasons: not an MFA refusal.
        ("AccessDenied", "User: arn:aws:iam::1:user/mfa-admin is not authorized to perform: "
         "sts:AssumeRole on resource: arn:aws:iam::2:role/NexusMfaRole", "AssumeRole", "ACCESS_DENIED",
         HINT_ASSUME_DENIED),
        ("AccessDenied", "User: arn:aws:iam::1:user/ops,mfa is not authorized to perform: sts:AssumeRole on "
         "resource: arn:aws:iam::2:role/R.", "AssumeRole", "ACCESS_DENIED", HINT_ASSUME_DENIED),
        ("AccessDenied", "Denied (arn:aws:iam::1:user/ops): MFA is required.", "GetSessionToken",
         "MFA_REQUIRED", HINT_MFA_REQUIRED),
        ("ExpiredToken", "The security token included in the request is expired", "GetCallerIdentity",
         "SESSION_EXPIRED", HINT_SESSION_EXPIRED),
        ("ExpiredTokenException", "expired", "AssumeRoleWithSAML", "SESSION_EXPIRED", HINT_SESSION_EXPIRED),
        ("RegionDisabledException", "STS is not activated", "AssumeRole", "REGION_DISABLED", None),
        ("MalformedPolicyDocument", "bad", "AssumeRole", "INTERNAL_ERROR", None),
        ("PackedPolicyTooLarge", "big", "AssumeRole", "INTERNAL_ERROR", None),
        ("ValidationError", "Request ARN is invalid", "AssumeRole", "INVALID_ROLE_ARN", HINT_INVALID_ROLE_ARN),
        ("IDPRejectedClaim", "rejected", "AssumeRoleWithSAML", "ACCESS_DENIED", HINT_ASSUME_DENIED),
        ("InvalidIdentityToken", "bad token", "AssumeRoleWithSAML", "ACCESS_DENIED", HINT_ASSUME_DENIED),
        ("InvalidClientTokenId", "The security token included in the request is invalid", "GetCallerIdentity",
         "ACCESS_DENIED", HINT_ACCESS_DENIED),
        # IAM, as validate calls it
        ("AccessDenied", "not authorized to perform: iam:SimulatePrincipalPolicy", "SimulatePrincipalPolicy",
         "ACCESS_DENIED", HINT_SIMULATE_DENIED),
        ("NoSuchEntity", "Role R not found", "SimulatePrincipalPolicy", "INVALID_ROLE_ARN", HINT_INVALID_ROLE_ARN),
        ("InvalidInput", "Invalid Entity Arn", "SimulatePrincipalPolicy", "INTERNAL_ERROR", None),
        ("PolicyEvaluation", "could not evaluate", "SimulatePrincipalPolicy", "INTERNAL_ERROR", None),
        ("InvalidAuthenticationCode", "Authentication code for device is not valid.", "EnableMFADevice",
         "MFA_REQUIRED", HINT_MFA_REQUIRED),
        ("LimitExceeded", "too many", "SimulatePrincipalPolicy", "AWS_REQUEST_FAILED", None),
    ],
)  # fmt: skip
def test_sts_and_iam_codes(code, message, operation, expected_code, hint):
    error = translate(code, message, operation=operation)
    assert error.code == expected_code
    if hint is not None:
        assert error.hint == hint
    assert error.message == f"{operation} failed: {code}: {message}"  # AWS's words are kept


@pytest.mark.parametrize(
    "code",
    ["Throttling", "IDPCommunicationError", "ServiceFailure", "ConcurrentModification", "ServiceUnavailable"],
)
def test_transient_codes_are_retried(code):
    error = translate(code, "slow down", operation="SimulatePrincipalPolicy")
    assert isinstance(error, TransientAwsError)
    assert error.kind is ErrorKind.TRANSIENT


def test_every_code_botocore_counts_as_throttling_is_transient_but_its_quota_codes():
    """botocore's standard retry counts these as throttling; the service must too, once botocore gave up
    (LimitExceededException and BandwidthLimitExceeded are quotas on some services, never retried)."""
    from botocore.retries.standard import ThrottledRetryableChecker

    # botocore's own list (of the pinned botocore): a canary, so that a code it adds is decided here too.
    botocore_codes = set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)  # type: ignore[attr-defined]
    quotas = {"LimitExceededException", "BandwidthLimitExceeded"}
    assert quotas < botocore_codes
    for code in botocore_codes - quotas:
        assert isinstance(translate(code, "slow down", operation="PutItem"), TransientAwsError), code
    assert not isinstance(translate("LimitExceededException", "", operation="CreateStack"), TransientAwsError)


@pytest.mark.parametrize("code", ["Throttling", "KMSThrottling", "Throttled"])
def test_a_throttled_sns_publish_is_transient(code):
    """A throttled Publish answers AWS's common Throttling (botocore retries it first); to a topic that KMS
    encrypts, KMSThrottling, modeled on Publish and not retryable in botocore's eyes; SNS's SMS calls
    answer Throttled (429). Each is worth sending again: the announcement's step retries it."""
    with pytest.raises(TransientAwsError), aws_call("Publish"):
        raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, "Publish")


def test_assume_hint_carries_the_guides_steps():
    for step in ("trust policy", "sts:ExternalId", "exists", "arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME", "SCP"):
        assert step in HINT_ASSUME_DENIED
    for step in ("policy is attached", "resource permissions", "explicit Deny"):
        assert step in HINT_ACCESS_DENIED


def _cancelled(*reasons: str) -> ClientError:
    """A TransactWriteItems refusal as botocore parses DynamoDB's answer: one reason per item."""
    listed = ", ".join(reasons)
    return ClientError(
        {
            "Error": {
                "Code": "TransactionCanceledException",
                "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{listed}]",
            },
            "CancellationReasons": [
                {"Code": r} if r == "None" else {"Code": r, "Message": r} for r in reasons
            ],
        },
        "TransactWriteItems",
    )


@pytest.mark.parametrize(
    ("reasons", "transient"),
    [
        (("None", "ThrottlingError"), True),  # on-demand table over its rate
        (("ProvisionedThroughputExceeded", "None", "None"), True),
        (("TransactionConflict", "None"), True),  # another transaction held an item
        (("ConditionalCheckFailed", "None"), False),  # the caller's own conditions: never retried
        (("ConditionalCheckFailed", "ThrottlingError"), False),
        (("ValidationError", "None"), False),
        ((), False),
    ],
)
def test_a_transaction_cancelled_only_in_passing_is_transient(reasons, transient):
    """DynamoDB answers a throttled or conflicting transaction with TransactionCanceledException, which
    botocore does not retry; the service then retries it like any throttle (the step's Retry, a 503)
    instead of recording the operation FAILED."""
    with pytest.raises(DeployerError) as raised, aws_call("TransactWriteItems"):
        raise _cancelled(*reasons)
    assert isinstance(raised.value, TransientAwsError) is transient, raised.value
    assert (raised.value.code == "AWS_THROTTLED") is transient
