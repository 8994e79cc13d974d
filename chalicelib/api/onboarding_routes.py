"""Connecting an account with credentials typed into the console: test them, Fetch Roles, bootstrap.

Credentials are used within the request and forgotten (``chalicelib/service/onboarding.py``). None of
these routes takes an Idempotency-Key, so no fingerprint of a secret is ever stored; each route: one
``OnboardingService`` call, dump.

Credentials that AWS or ADFS refuse are the request's fault: 400 with the guide's code (ACCESS_DENIED,
INVALID_ROLE_ARN, SESSION_EXPIRED, MFA_REQUIRED) and its troubleshooting hint.
"""

from __future__ import annotations

from chalicelib.api.onboarding_schemas import AdfsSignIn, CredentialsTest, SignInBody
from chalicelib.api.routing import Call, Reply, RouteTable

routes = RouteTable()

# An ADFS URL the SSRF guard refuses, or ADFS refusing the sign-in (chalicelib/adapters/adfs_http.py).
ADFS_REFUSED = ("ADFS_URL_REFUSED", "ACCESS_DENIED")
ADFS_UNREACHABLE = {503: ("ADFS_UNREACHABLE", "AWS_THROTTLED")}
# What signing in with typed credentials can answer (chalicelib/domain/aws_errors.translate).
SIGN_IN_REFUSED = (
    *ADFS_REFUSED,
    "ROLE_NOT_OFFERED",
    "INVALID_ROLE_ARN",
    "SESSION_EXPIRED",
    "MFA_REQUIRED",
    "REGION_DISABLED",
    "AWS_REQUEST_FAILED",
)


@routes.post(
    "/credentials/test",
    body=CredentialsTest,
    responses={200: "CredentialReport"},
    errors={404: ("TARGET_NOT_FOUND",)},
)
def test_credentials(call: Call[CredentialsTest, None]) -> Reply:
    """Test typed credentials (access keys or an ADFS role) before anything is created.

    The guide's Test Credentials: account access, STS identity, the account ID against target_id's, and
    whether the identity may create the bootstrap stack. 200 whether the checks pass or not.
    """
    b = call.body
    return Reply(
        200, call.services.onboarding.test_credentials(call.tenant, b.target_id, b.credentials()).public()
    )


@routes.post(
    "/saml/roles",
    body=AdfsSignIn,
    responses={200: "SamlRoles"},
    errors={400: ADFS_REFUSED, **ADFS_UNREACHABLE},
)
def saml_roles(call: Call[AdfsSignIn, None]) -> Reply:
    """Fetch Roles: sign in at the ADFS URL and list the AWS roles its SAML assertion offers.

    The URL must be https:// on a host of the operator's allow-list (NEXUS_ADFS_HOSTS); no redirect to
    another host is followed, and the answer is read with a short timeout and a size cap.
    """
    roles = call.services.onboarding.saml_roles(call.body.login())
    return Reply(200, {"roles": [role.public() for role in roles]})


@routes.post(
    "/targets/{target_id}/bootstrap",
    body=SignInBody,
    responses={200: "BootstrapReport", 202: "BootstrapReport"},
    errors={
        400: SIGN_IN_REFUSED,
        404: ("TARGET_NOT_FOUND",),
        409: ("ACCOUNT_MISMATCH", "EVENTS_NOT_TAKEN"),
        # CloudFormation refusing the typed credentials' calls (a failed stack is in the report instead).
        502: ("ACCESS_DENIED", "MFA_REQUIRED", "SESSION_EXPIRED", "AWS_REQUEST_FAILED"),
        **ADFS_UNREACHABLE,
    },
)
def bootstrap_target(call: Call[SignInBody, None]) -> Reply:
    """Deploy the target's bootstrap stacks with typed credentials, used once and forgotten.

    The credentials must act in the target's account (409 ACCOUNT_MISMATCH). 200 once every stack
    settled (see ok and each stack), 202 while some are still in progress: follow them with GET.
    """
    report = call.services.onboarding.bootstrap(call.tenant, call.ids["target_id"], call.body.credentials())
    return Reply(200 if report.settled else 202, report.public())


@routes.get(
    "/targets/{target_id}/bootstrap",
    responses={200: "BootstrapReport"},
    errors={404: ("TARGET_NOT_FOUND",)},
)
def bootstrap_status(call: Call[None, None]) -> Reply:
    """The target's bootstrap stacks, read through its deployment role (WAITING_FOR_ROLE until it exists)."""
    return Reply(200, call.services.onboarding.bootstrap_status(call.tenant, call.ids["target_id"]).public())
