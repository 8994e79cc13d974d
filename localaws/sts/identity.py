"""Who is calling: the GetSessionToken session registry and the caller of a moto STS request.

moto knows assumed-role sessions but not ours (``GetSessionToken`` sessions, the MFA flag of a session),
so they are stored on moto's own backend objects (a moto reset clears them) and read back here to tell
who signed a request, whether with MFA, and when its credentials expire.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from localaws.policy import ARN_RE, Caller
from localaws.sts.validation import _ROLE_ARN_RE

_MFA_ATTR = "_localaws_mfa"
_SESSIONS_ATTR = "_localaws_sessions"


@dataclass
class SessionCredentials:
    """A GetSessionToken session: acts as the user who asked for it."""

    user_id: str
    arn: str
    account: str
    expiration: datetime.datetime
    mfa: bool
    session_token: str


def _sessions(sts_backend: Any) -> dict[str, SessionCredentials]:
    """GetSessionToken sessions of one account, stored on moto's backend so a moto reset clears them."""
    sessions: dict[str, SessionCredentials] | None = getattr(sts_backend, _SESSIONS_ATTR, None)
    if sessions is None:
        sessions = {}
        setattr(sts_backend, _SESSIONS_ATTR, sessions)
    return sessions


def session_of(account: str, partition: str, access_key: str) -> SessionCredentials | None:
    """The GetSessionToken session of ``access_key`` in ``account``, if it is one."""
    from moto.sts.models import sts_backends

    return _sessions(sts_backends[account][partition]).get(access_key)


def session_mfa(assumed: Any) -> bool:
    """Whether an assumed-role session was created with MFA (``aws:MultiFactorAuthPresent``)."""
    return bool(getattr(assumed, _MFA_ATTR, False))


def _describe_arn(arn: str) -> tuple[str, str]:
    """(kind, name) of a caller ARN."""
    match = ARN_RE.fullmatch(arn)
    if not match:
        return "unknown", ""
    resource = match.group(4)
    if resource == "root":
        return "root", ""
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        return kind, rest.split("/")[0]
    if kind in ("user", "federated-user"):
        return kind, rest.rsplit("/", 1)[-1]
    return "unknown", ""


def identify_caller(response: Any) -> Caller:
    """Identify the caller of a moto STS request the way ``TokenResponse.get_caller_identity`` does."""
    backend = response.backend
    access_key = response.get_access_key()
    user_id, arn, account = backend.get_caller_identity(access_key, response.region)
    kind, name = _describe_arn(arn)
    session = _sessions(backend).get(access_key)
    assumed = backend.get_assumed_role_from_access_key(access_key)
    if assumed is not None:
        return Caller(
            user_id=user_id,
            arn=arn,
            account=account,
            kind=kind,
            name=name,
            temporary=True,
            mfa=session_mfa(assumed),
            role_arn=_canonical_role_arn(assumed.role_arn),
        )
    if session is not None:
        return Caller(user_id, arn, account, kind, name, temporary=True, mfa=session.mfa)
    return Caller(user_id, arn, account, kind, name, temporary=False, mfa=False)


def _canonical_role_arn(role_arn: str) -> str:
    """The ARN of the existing role (with its path) when moto knows it, else the ARN as given."""
    role = _find_role(role_arn)
    return str(role.arn) if role is not None else role_arn


def _find_role(role_arn: str) -> Any | None:
    """The moto IAM role that ``role_arn`` names (looked up by name in the ARN's account), or None."""
    from moto.iam.models import iam_backends

    match = _ROLE_ARN_RE.fullmatch(role_arn)
    if not match:
        return None
    partition = "aws" + (match.group(1) or "")
    account, name = match.group(2), match.group(4)
    for role in iam_backends[account][partition].get_roles():
        if role.name == name:
            return role
    return None


def _expiration_of(account: str, partition: str, access_key: str) -> datetime.datetime | None:
    from moto.sts.models import sts_backends

    backend = sts_backends[account][partition]
    assumed = backend.get_assumed_role_from_access_key(access_key)
    if assumed is not None:
        expiration: datetime.datetime = assumed.expiration
        return expiration
    session = _sessions(backend).get(access_key)
    return session.expiration if session is not None else None
