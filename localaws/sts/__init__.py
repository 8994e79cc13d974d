"""STS that behaves like AWS, for the embedded local AWS (moto 5.2.5).

Why this exists
---------------
The deployer assumes a role in each target account with an external ID. That is the whole security model
(the external ID stops the confused deputy), so tests must be able to prove that a wrong or missing
external ID, a foreign principal or a missing role is refused. moto checks none of it: its ``AssumeRole``
hands out credentials for any ARN, ignores the trust policy and the external ID, ignores MFA codes, never
expires a session, and ``GetSessionToken`` returns the same fixed keys to everybody. ``install()`` patches
moto, process-wide, so that:

1. ``AssumeRole`` validates its input as AWS does (``RoleArn`` pattern, ``ExternalId`` length/pattern,
   ``RoleSessionName``, ``DurationSeconds`` 900..43200, MFA field shapes) -> ``ValidationError`` (400);
   then requires the role to exist in the target account and its trust policy to allow the caller
   (principal, action, ``Deny`` wins, conditions on ``sts:ExternalId``, ``aws:MultiFactorAuthPresent``,
   ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``sts:RoleSessionName``) -> otherwise ``AccessDenied``
   (403) with AWS's message ``User: <caller> is not authorized to perform: sts:AssumeRole on resource:
   <role>``; then checks ``DurationSeconds`` against the role's ``MaxSessionDuration`` and the one-hour
   limit of role chaining.
2. Credentials from STS expire: once their ``Expiration`` has passed, every call signed with them, to any
   service, answers as AWS does: ``ExpiredToken`` "The security token included in the request is expired"
   (HTTP 403) for query-protocol services (STS, IAM, CloudFormation, ...), ``ExpiredTokenException`` with the
   same message (HTTP 400) for JSON services (DynamoDB, Step Functions, Lambda, ...), and S3's own
   ``ExpiredToken`` "The provided token has expired." (HTTP 400).
3. MFA is real: ``SerialNumber``/``TokenCode`` on ``AssumeRole`` and ``GetSessionToken`` are checked against
   the seed of the caller's enabled virtual MFA device (RFC 6238 TOTP, 30 s steps, 6 digits, one step of
   clock skew accepted). As on AWS, a code works once: a code of the time step of a code the device
   already signed in with, or of an earlier step, is refused like a wrong one (RFC 6238 section 5.2;
   AWS answers the same ``AccessDenied``), so a second call with the same code must wait for the next.
   ``GetSessionToken`` returns unique credentials that act as the calling user, carry
   the MFA flag into ``aws:MultiFactorAuthPresent`` and expire.

The patches live at moto's response/model level (``TokenResponse.assume_role``/``get_session_token``,
``BaseResponse.setup_class``, ``STSBackend.get_caller_identity``, ``IAMBackend.enable_mfa_device``,
``AssumedRole``/``Token`` constructors), so they apply both to the
in-process ``moto.mock_aws()`` and to a ``moto.server.ThreadedMotoServer`` running in the same process.
``check_moto_internals()`` fails loudly if those internals change; ``install()`` calls it first.

Time: ``CLOCK``
---------------
Everything time-dependent here (session expiry, the ``Expiration`` that STS returns, TOTP validation) reads
``CLOCK``: real UTC time plus ``CLOCK.offset`` seconds. Tests move time with ``CLOCK.advance(seconds)`` and
must undo it with ``CLOCK.reset()`` (e.g. in a fixture's teardown)::

    creds = sts.assume_role(RoleArn=arn, RoleSessionName="s", DurationSeconds=900)["Credentials"]
    CLOCK.advance(901)          # the session is now expired
    ...                         # any call with creds -> ClientError "ExpiredToken"
    CLOCK.reset()

MFA
---
Register a virtual MFA device for an IAM user with ``enable_virtual_mfa(iam_client, user_name, name)``
(moto's ``CreateVirtualMFADevice`` + ``EnableMFADevice``); it returns ``(serial_number, seed)``. As on AWS,
``EnableMFADevice`` for a virtual device now requires two consecutive current codes
(``InvalidAuthenticationCode``, 403, otherwise); the helper computes them. Compute the
current code with ``totp_code(seed)`` and pass both to ``AssumeRole``/``GetSessionToken``.

Bootstrapping an account
------------------------
``account_credentials(account_id)`` mints credentials ``(access_key_id, secret_access_key)`` that act in
``account_id`` (as moto's default identity ``arn:aws:sts::<account>:user/moto``), e.g. to create the target
role there before the code under test assumes it. They never expire. They are made directly in moto's
backends, so they work in-process and with a ``ThreadedMotoServer`` in the same interpreter.

Trust policies are evaluated by :mod:`localaws.policy` (``trust_policy_allows``, re-exported here).

Not modelled: identity policies of the caller (moto's ``enable_iam_authentication`` does that), SCPs,
session policies, session tags, ``AssumeRoleWithWebIdentity``/``AssumeRoleWithSAML`` trust policies,
``GetFederationToken`` (still moto's fixed keys), and whether the codes that enabled a device count as
used (they do not here).

Modules, by concern: :mod:`.clock` (``CLOCK``), :mod:`.mfa` (TOTP codes, virtual MFA devices, the check of
an MFA code), :mod:`.errors` (AWS-shaped HTTP errors, expired credentials), :mod:`.validation` (AWS's input
constraints of ``AssumeRole``/``GetSessionToken``), :mod:`.identity` (the ``GetSessionToken`` sessions and
who is calling), :mod:`.handlers` (the wrappers of moto's STS/IAM methods), :mod:`.patches` (the moto
internals relied on, and ``install()``) and :mod:`.accounts` (``account_credentials``).
"""

from __future__ import annotations

from localaws.patching import MOTO_VERSION
from localaws.policy import Caller, trust_policy_allows
from localaws.sts.accounts import AccountCredentials, account_credentials
from localaws.sts.clock import CLOCK, Clock
from localaws.sts.errors import AwsHttpError, _protocol_of
from localaws.sts.identity import _find_role, identify_caller, session_mfa, session_of
from localaws.sts.mfa import MFA_INVALID_CODE, MFA_UNKNOWN_DEVICE, TOTP_STEP, enable_virtual_mfa, totp_code
from localaws.sts.patches import check_moto_internals, install

__all__ = [
    "CLOCK",
    "MFA_INVALID_CODE",
    "MFA_UNKNOWN_DEVICE",
    "MOTO_VERSION",
    "TOTP_STEP",
    "AccountCredentials",
    "AwsHttpError",
    "Caller",
    "Clock",
    "_find_role",
    "_protocol_of",
    "account_credentials",
    "check_moto_internals",
    "enable_virtual_mfa",
    "identify_caller",
    "install",
    "session_mfa",
    "session_of",
    "totp_code",
    "trust_policy_allows",
]
