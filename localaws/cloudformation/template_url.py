"""``TemplateURL`` read as CloudFormation reads it.

moto 5.2.5 (``moto.cloudformation.utils.get_stack_from_s3_url``) takes the bucket and key from any URL
and returns the key's latest version: it ignores ``?versionId=``, the URL's region and percent-encoding.
So a service that pins a stale version, or points a stack in one region at a bucket through another
region's endpoint, passed here and failed on AWS, where S3 answers such a request with a redirect that
CloudFormation does not follow. Here, as on AWS:

- the URL is an S3 HTTPS URL, path style (``s3.<region>.amazonaws.com/<bucket>/<key>``, or the global
  ``s3.amazonaws.com``, which serves only us-east-1's buckets) or virtual-hosted
  (``<bucket>.s3.<region>.amazonaws.com/<key>``, or ``<bucket>.s3.amazonaws.com``, which DNS routes to the
  bucket's region; a bucket name with dots fails S3's TLS certificate this way); ``.amazonaws.com.cn`` in
  China; ``s3-fips``, ``dualstack`` and the legacy ``s3-<region>`` and ``s3-external-1`` hosts too;
- a regional endpoint must be the bucket's region;
- the key is percent-decoded, and ``versionId`` picks that version;
- anything else is CloudFormation's ``ValidationError`` "TemplateURL must reference a valid S3 object to
  which you have access.".

- CloudFormation reads the object with the caller's permissions: the identity policies of the principal
  that called CreateStack (or CreateChangeSet, UpdateStack) must allow ``s3:GetObject`` on it, or
  ``s3:GetObjectVersion`` for a ``versionId``, as S3 authorizes a versioned read.

Not modelled: the bucket's own policy in that read (a template bucket of another account). A local
server's URL (host ``localhost``) is read as moto reads it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import ParseResult, parse_qs, unquote, urlparse

from localaws.cloudformation.state import _validation_error

INVALID_TEMPLATE_URL = "TemplateURL must reference a valid S3 object to which you have access."
GLOBAL_REGION = "us-east-1"  # the region of the global endpoint's path-style requests
# s3., s3-fips., s3.dualstack., then the region after a dot or (legacy) a dash; none: the global endpoint.
_ENDPOINT = r"s3(?:-fips)?(?:\.dualstack)?(?:[.-](?P<region>[a-z0-9-]+))?\.amazonaws\.com(?:\.cn)?"
_PATH_STYLE = re.compile(_ENDPOINT)
_LEGACY_REGIONS = {"external-1": "us-east-1"}  # s3-external-1.amazonaws.com
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})
_VIRTUAL_HOSTED = re.compile(r"(?P<bucket>[a-z0-9][a-z0-9.-]*[a-z0-9])\." + _ENDPOINT)


def _where(parts: ParseResult) -> tuple[str, str, str | None, str | None, bool]:
    """(bucket, key, the endpoint's region or None for the global one, versionId, path style)."""
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host:
        raise _validation_error(INVALID_TEMPLATE_URL)
    versions = parse_qs(parts.query).get("versionId")
    version = versions[0] if versions else None
    path = parts.path.lstrip("/")
    path_style = _PATH_STYLE.fullmatch(host)
    if path_style is not None:
        bucket, _, key = path.partition("/")
        region = path_style["region"]
    else:
        hosted = _VIRTUAL_HOSTED.fullmatch(host)
        if hosted is None:
            raise _validation_error(INVALID_TEMPLATE_URL)
        bucket, key, region = hosted["bucket"], path, hosted["region"]
        if "." in bucket:  # S3's certificate covers *.s3...amazonaws.com: one label, no dots (TLS fails)
            raise _validation_error(INVALID_TEMPLATE_URL)
    if not bucket or not key:
        raise _validation_error(INVALID_TEMPLATE_URL)
    return bucket, unquote(key), _LEGACY_REGIONS.get(region or "", region), version, path_style is not None


def fetch(template_url: str, account_id: str, partition: str, original: Any) -> str:
    """The template at ``template_url``, read as CloudFormation reads it (``original``: moto's reader,
    for the URLs of a local server)."""
    parts = urlparse(template_url)
    if (parts.hostname or "") in _LOCAL_HOSTS:  # a local server's URL: read as moto does
        return str(original(template_url, account_id=account_id, partition=partition))
    from localaws.s3 import find_bucket

    bucket_name, key_name, region, version, path_style = _where(parts)
    found = find_bucket(bucket_name)
    if found is None:
        raise _validation_error(INVALID_TEMPLATE_URL)
    backend, bucket = found.backend, found.bucket
    # A regional endpoint serves its region's buckets only; the global one, path style, us-east-1's.
    if (region or (GLOBAL_REGION if path_style else bucket.region_name)) != bucket.region_name:
        raise _validation_error(INVALID_TEMPLATE_URL)
    try:
        key = backend.get_object(bucket_name, key_name, version_id=version)
    except Exception:  # noqa: BLE001 - moto's NoSuchKey/NoSuchVersion/InvalidVersion: all one answer here
        key = None
    if key is None or getattr(key, "is_delete_marker", False):
        raise _validation_error(INVALID_TEMPLATE_URL)
    _check_caller_may_read(partition, bucket_name, key_name, version)
    return bytes(key.value).decode("utf-8")


def _check_caller_may_read(partition: str, bucket: str, key: str, version: str | None) -> None:
    """CloudFormation reads the template as its caller (the principal of the request being served)."""
    from localaws.authorization import AccessDenied, check, current_principal

    principal = current_principal()
    if principal is None:  # unsigned, or a principal the local AWS does not police (moto's own)
        return
    action = "s3:GetObjectVersion" if version else "s3:GetObject"
    try:
        check(principal, action, f"arn:{partition}:s3:::{bucket}/{key}")
    except AccessDenied:
        raise _validation_error(INVALID_TEMPLATE_URL) from None
