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

``ExpectedBucketOwner`` (the ``x-amz-expected-bucket-owner`` header) is checked as S3 checks it: a request
for a bucket another account owns is 403 ``AccessDenied``, whatever the policies say (moto 5.2.5 ignores
the header). It is what ties a user's ``template_url`` bucket to the target's account.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from localaws.patching import Patcher, params

__all__ = ["CONTEXT", "Found", "bucket_region", "check_moto_internals", "find_bucket", "install"]

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


EXPECTED_OWNER_HEADER = "x-amz-expected-bucket-owner"


class Found(NamedTuple):
    account_id: str
    backend: Any  # moto's S3Backend of the owner
    bucket: Any  # moto's FakeBucket


def find_bucket(name: str) -> Found | None:
    """An existing bucket, whoever owns it (bucket names are global; moto keeps each in its owner's backend)."""
    from moto.s3.models import s3_backends

    owner = s3_backends.bucket_accounts.get(name)
    if owner is None:
        return None
    partition, account_id = owner
    backend = s3_backends[account_id][partition]
    bucket = backend.buckets.get(name)
    return Found(str(account_id), backend, bucket) if bucket is not None else None


def bucket_region(name: str) -> str | None:
    """The region of an existing bucket: S3 tells anyone (``x-amz-bucket-region``)."""
    found = find_bucket(name)
    return str(found.bucket.region_name) if found is not None else None


def _owner_checked(original: Any) -> Any:
    def response(self: Any, request: Any, full_url: str) -> Any:
        from moto.s3.exceptions import S3AccessDeniedError

        expected = request.headers.get(EXPECTED_OWNER_HEADER)
        bucket_name = self.parse_bucket_name_from_url(request, full_url)
        found = find_bucket(bucket_name) if expected and bucket_name else None
        if found is not None and found.account_id != expected:
            raise S3AccessDeniedError()
        return original(self, request, full_url)

    return response


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
    from moto.s3.models import s3_backends
    from moto.s3.responses import S3Response

    for name in ("_bucket_response", "_key_response"):
        method = getattr(S3Response, name)
        method = getattr(method, "__wrapped__", method)
        _PATCHER.expect(
            params(method) == ["self", "request", "full_url"], f"S3Response.{name}(self, request, full_url)"
        )
    _PATCHER.expect(
        isinstance(getattr(s3_backends, "bucket_accounts", None), dict), "s3_backends.bucket_accounts"
    )


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        from moto.s3.models import FakeBucket
        from moto.s3.responses import S3Response

        _PATCHER.wrap(FakeBucket, "get_permission", _get_permission)
        # Both dispatchers raise S3ClientError inside their callers' try (``bucket_response``/``key_response``).
        _PATCHER.wrap(S3Response, "_bucket_response", _owner_checked)
        _PATCHER.wrap(S3Response, "_key_response", _owner_checked)
