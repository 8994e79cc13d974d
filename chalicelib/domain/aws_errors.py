"""AWS error codes into the guide's troubleshooting answers: one table for the API, workflow and CLI.

The product guide names four cases a user must be able to fix alone: ACCESS_DENIED,
INVALID_ROLE_ARN, SESSION_EXPIRED and MFA_REQUIRED. Every STS and IAM error code the service can
meet maps to one of those or to a clear transient or internal code; none reaches a user raw.
This module works on plain strings so it needs no AWS library.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from chalicelib.domain.errors import DeployerError, StackOperationError, TargetAccessError, TransientAwsError

HINT_ACCESS_DENIED = (
    "Check that the credentials are right and the deployment policy is attached to the role or user; "
    "check resource permissions; look for an explicit Deny in an SCP or permission boundary."
)
HINT_ASSUME_DENIED = (
    "The target role's trust policy must name the service's role as Principal and require this target's "
    "external ID (sts:ExternalId); compare it with the target's trust_policy and fix it in the target account "
    "(GET /targets/{id}/bootstrap-template creates a correct role). AWS answers this same AccessDenied when "
    "no role exists at role_arn: check that it exists there, spelled exactly "
    "(arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME), and that no SCP denies sts:AssumeRole. A trust policy that "
    "requires MFA (aws:MultiFactorAuthPresent) is refused the same way without it: then pass the MFA "
    "device serial and its current 6-digit code."
)
HINT_EXTERNAL_ID_NOT_ENFORCED = (
    "The role can be assumed without the external ID, so any AWS customer who learns its ARN could make "
    "a shared service act in this account (the confused deputy). Add Condition StringEquals sts:ExternalId "
    "= this target's external_id to the trust policy statement that names the service's role, exactly as "
    "in the target's trust_policy."
)
HINT_SIMULATE_DENIED = (
    "The role may not simulate its own policies: allow iam:SimulatePrincipalPolicy on the role's own ARN "
    "(the bootstrap template does); then check that the deployment policy is attached to the role and look "
    "for an explicit Deny in an SCP or permission boundary."
)
HINT_MISSING_PERMISSIONS = (
    "Attach the deployment policy (GET /permissions?profile=NAME) to the role, or add the missing actions "
    "listed in missing_actions; some actions need specific resources; look for an explicit Deny in an SCP "
    "or permission boundary."
)
HINT_ACCOUNT_MISMATCH = (
    "The role lives in another account than the target's account_id: register the target again with the "
    "account id and role ARN of the same account."
)
HINT_INVALID_ROLE_ARN = (
    "Use the format arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME; check that the role exists in that account "
    "and that its trust policy allows assumption by the service."
)
HINT_SESSION_EXPIRED = (
    "Sign in again to get fresh credentials; ADFS and assumed-role sessions last one hour by default."
)
HINT_MFA_REQUIRED = (
    "Enable MFA for the user, then pass the MFA device serial and the current 6-digit code; or use a role "
    "whose trust policy has an MFA condition you can satisfy."
)
# STS refused the code itself: wrong, too old, or used before (AWS accepts each code once, in the same words).
HINT_MFA_CODE = (
    "Enter the 6-digit code the MFA device shows now, with that device's serial or ARN. AWS accepts each "
    "code once: after a check or a bootstrap that used a code, wait for the device's next code (at most 30 s)."
)
HINT_MFA_DEVICE = (
    "Check the MFA device serial or ARN: it must be an MFA device enabled for the user whose keys these are "
    "(IAM console: the user's Security credentials tab lists it)."
)

# What AWS answers when it throttles, or is briefly unable to serve: every code botocore's standard retry
# counts as throttling (botocore.retries.standard.ThrottledRetryableChecker), but LimitExceededException and
# BandwidthLimitExceeded, which are quotas on some services (CloudFormation's stack count); plus what
# botocore's list lacks and the models do not mark retryable, so that botocore never retries it: SNS's
# KMSThrottling (a Publish to a topic encrypted with KMS) and Throttled (429, SNS's SMS calls).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "Throttled",
        "KMSThrottling",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "IDPCommunicationError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ConcurrentModification",
        "EntityTemporarilyUnmodifiable",
        "InternalFailure",
        "InternalError",
        "ServiceFailure",
    }
)
# Why DynamoDB cancelled a transaction (TransactionCanceledException, one reason per item), when an item
# was throttled (a transaction cancelled for one and sent again is counted in ThrottlesRetried)...
THROTTLE_CANCELLATION_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})
# ... and when it is a passing state: an item throttled, or held by another transaction (no throttle).
# botocore retries neither (the exception is not a throttling code): chalicelib/adapters/errors.py
# transact_write_items does, then the step's or the caller's retry.
TRANSIENT_CANCELLATION_REASONS = THROTTLE_CANCELLATION_REASONS | {"TransactionConflict"}
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId",
     "SignatureDoesNotMatch", "UnrecognizedClientException", "AuthFailure", "OptInRequired",
     "IDPRejectedClaim", "InvalidIdentityToken", "IncompleteSignature", "MissingAuthenticationToken"}
)  # fmt: skip
MFA_CODES = frozenset({"InvalidAuthenticationCode"})
NOT_FOUND_ROLE_CODES = frozenset({"NoSuchEntity", "NoSuchEntityException"})
# Our own bad request: a policy, session name or simulation input the service built wrongly.
INTERNAL_CODES = frozenset(
    {"MalformedPolicyDocument", "MalformedPolicyDocumentException", "PackedPolicyTooLarge",
     "PackedPolicyTooLargeException", "InvalidInput", "PolicyEvaluation",
     "PolicyEvaluationException"}
)  # fmt: skip
IAM_OPERATIONS = ("SimulatePrincipalPolicy", "SimulateCustomPolicy", "GetRole", "ListRoles")


# An ARN in the message names a principal or a resource, whose name says nothing about the refusal's
# cause: a user "mfa-admin" or a role "NexusMfaRole" refused for any reason is not an MFA refusal.
_ARN = re.compile(r"arn:[^\s\"']*[^\s\"'.,;:)]", re.IGNORECASE)  # IAM names may hold commas
_MFA_WORDS = re.compile(r"(?<![a-z0-9])mfa(?![a-z0-9])|multi-?factor", re.IGNORECASE)


_MFA_CODE_REFUSED = re.compile(r"one time pass ?code", re.IGNORECASE)
# STS found no enabled MFA device of the caller's by that serial ("unable to validate MFA code").
_MFA_DEVICE_UNKNOWN = re.compile(r"unable to validate MFA code", re.IGNORECASE)


def cancelled_in_passing(code: str, reasons: Sequence[str]) -> bool:
    """A transaction cancelled only because an item was throttled or in another transaction (the other
    items' reason is "None"); never one whose condition failed or whose input was invalid."""
    if code != "TransactionCanceledException":
        return False
    causes = {reason for reason in reasons if reason not in ("None", "")}
    return bool(causes) and causes <= TRANSIENT_CANCELLATION_REASONS


def _mentions_mfa(message: str) -> bool:
    return _MFA_WORDS.search(_ARN.sub(" ", message)) is not None


def translate(
    code: str, message: str, *, operation: str, cancellation_reasons: Sequence[str] = ()
) -> DeployerError:
    """Translate one AWS error (code and message from the response) for ``operation``;
    ``cancellation_reasons``: a cancelled DynamoDB transaction's reason codes, item by item."""
    text = f"{operation} failed: {code}: {message}"
    if code in THROTTLING_CODES or cancelled_in_passing(code, cancellation_reasons):
        return TransientAwsError(text)
    if code in EXPIRED_CODES:
        return TargetAccessError(text, code="SESSION_EXPIRED", hint=HINT_SESSION_EXPIRED)
    if code in MFA_CODES:
        return TargetAccessError(text, code="MFA_REQUIRED", hint=HINT_MFA_REQUIRED)
    if code in DENIED_CODES:
        if _mentions_mfa(message):
            if _MFA_CODE_REFUSED.search(message):
                hint = HINT_MFA_CODE
            elif _MFA_DEVICE_UNKNOWN.search(message):
                hint = HINT_MFA_DEVICE
            else:
                hint = HINT_MFA_REQUIRED
            return TargetAccessError(text, code="MFA_REQUIRED", hint=hint)
        if operation.startswith("AssumeRole"):
            hint = HINT_ASSUME_DENIED
        elif operation.startswith("Simulate"):
            hint = HINT_SIMULATE_DENIED
        else:
            hint = HINT_ACCESS_DENIED
        return TargetAccessError(text, code="ACCESS_DENIED", hint=hint)
    if code in NOT_FOUND_ROLE_CODES:
        return TargetAccessError(text, code="INVALID_ROLE_ARN", hint=HINT_INVALID_ROLE_ARN)
    if code == "ValidationError" and operation.startswith("AssumeRole") and "arn" in message.lower():
        return TargetAccessError(text, code="INVALID_ROLE_ARN", hint=HINT_INVALID_ROLE_ARN)
    if code == "RegionDisabledException":
        return TargetAccessError(
            text,
            code="REGION_DISABLED",
            hint="Activate STS for this region in the target account (IAM > Account settings), "
            "or deploy to another region.",
        )
    if code in INTERNAL_CODES:
        return DeployerError(text, code="INTERNAL_ERROR")
    if operation.startswith(("AssumeRole", "GetCallerIdentity", "GetSessionToken")):
        return TargetAccessError(text, code="ACCESS_DENIED", hint=HINT_ACCESS_DENIED)
    if operation.startswith(IAM_OPERATIONS):
        return TargetAccessError(
            text,
            code="AWS_REQUEST_FAILED",
            hint="IAM refused the request; fix what the message names in the target account, then retry.",
        )
    return StackOperationError(
        text,
        code="AWS_REQUEST_FAILED",
        hint="CloudFormation refused the request; fix what the message names, then retry.",
    )
