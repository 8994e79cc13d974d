"""S3 bucket policies decided with their conditions, as S3 decides them.

Why this exists: moto 5.2.5 checks an object request against the bucket's policy
(``FakeBucket.get_permission``) with ``moto.iam.access_control.IAMPolicy``, which ignores ``Condition``.
The service's template gives its quick-create bucket the usual "TLS only" statement (Deny ``s3:*`` when
``aws:SecureTransport`` is false), which moto therefore applies to every request: the API's
``PutObject`` of a bootstrap template was refused with a bare 403. ``install()`` makes the bucket policy
go through the project's one evaluator (:mod:`localaws.policy`), conditions included, with
``aws:SecureTransport`` true: every SDK reaches S3 over HTTPS on AWS, and only this local endpoint is
plain HTTP. Principals are not matched (as before): the policy's Deny still wins and its Allow still
makes an object readable without an ACL; who may write stays the identity policies' decision
(``localaws/authorization.py``).
"""

from __future__ import annotations

from typing import Any

from localaws.patching import Patcher, params

__all__ = ["CONTEXT", "check_moto_internals", "install"]

_PATCHER = Patcher("localaws.s3")
# The request context S3 evaluates a bucket policy's conditions with, for an SDK call on AWS.
CONTEXT = {"aws:SecureTransport": "true"}


def _get_permission(original: Any) -> Any:
    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import PermissionResult

        from localaws.policy import PolicySource, evaluate

        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = self.policy.decode() if isinstance(self.policy, bytes) else self.policy
        decision = evaluate(
            [PolicySource(self.name, "none", policy)], action, resource, CONTEXT, any_resource=False
        ).decision
        if decision == "explicitDeny":
            return PermissionResult.DENIED
        return PermissionResult.PERMITTED if decision == "allowed" else PermissionResult.NEUTRAL

    return get_permission


def check_moto_internals() -> None:
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    original = getattr(FakeBucket.get_permission, "__wrapped__", FakeBucket.get_permission)
    _PATCHER.expect(
        params(original) == ["self", "action", "resource"],
        "FakeBucket.get_permission(self, action, resource)",
    )
    _PATCHER.expect(
        {"PERMITTED", "DENIED", "NEUTRAL"} <= set(PermissionResult.__members__),
        "PermissionResult.PERMITTED/DENIED/NEUTRAL",
    )


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        from moto.s3.models import FakeBucket

        _PATCHER.wrap(FakeBucket, "get_permission", _get_permission)
