"""Template objects in S3, read with the service's identity and the bucket owner pinned.

``ExpectedBucketOwner`` makes S3 refuse the read (403) when the bucket belongs to any other account
than the deployment's target account, which is what keeps one tenant from naming another tenant's
template (see ``chalicelib/service/sources.py``). The size is checked before the body is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_call, error_code
from chalicelib.domain.automation import S3Location
from chalicelib.domain.errors import NotFound, PayloadTooLarge, UnprocessableRequest
from chalicelib.domain.templates import sent_by_url
from chalicelib.service.event_ports import TemplateObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MISSING = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404"})
REFUSED = frozenset({"AccessDenied", "403"})


class S3TemplatePublisher:
    """Bootstrap templates in the service's own bucket, for CloudFormation's quick-create link.

    The cloud template's bucket policy lets anyone (or, with StackEventsOrganizationId, only the
    organization's accounts) GetObject under ``bootstrap/``, because CloudFormation reads a template
    with the permissions of whoever opens the link in the target account; keys are content hashes,
    never listed, so an object is found only through its link.
    """

    def __init__(self, client: S3Client, bucket: str, region: str) -> None:
        self._s3 = client
        self._bucket = bucket
        self._region = region

    def url(self, key: str) -> str:
        return f"https://{self._bucket}.s3.{self._region}.amazonaws.com/{quote(key)}"

    def publish(self, key: str, body: str) -> None:
        with aws_call("PutObject"):
            self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json"
            )


class S3TemplateObjects:
    def __init__(self, client: S3Client, reader_arn: str = "") -> None:
        self._s3 = client
        # The role that reads (the API's, output TemplateReaderRoleArn): what the bucket must grant.
        self._reader = (
            f"{reader_arn} (the stack's TemplateReaderRoleArn output)" if reader_arn else "the service's role"
        )

    def read(
        self, location: S3Location, *, version_id: str | None, expected_owner: str, max_bytes: int
    ) -> TemplateObject:
        kwargs: dict[str, Any] = {
            "Bucket": location.bucket,
            "Key": location.key,
            "ExpectedBucketOwner": expected_owner,
        }
        if version_id:
            kwargs["VersionId"] = version_id
        with aws_call("GetObject"):
            try:
                response = self._s3.get_object(**kwargs)
            except ClientError as error:
                if error_code(error) in MISSING:
                    raise NotFound(
                        f"{location.url} (version {version_id or 'latest'}) does not exist.",
                        code="TEMPLATE_OBJECT_NOT_FOUND",
                        hint="Upload the template first, or fix template_url.",
                        details={"field": "template_url"},
                    ) from None
                if error_code(error) in REFUSED:
                    raise UnprocessableRequest(
                        f"{location.url} cannot be read by the service for account {expected_owner}.",
                        code="TEMPLATE_OBJECT_REFUSED",
                        hint="The bucket must belong to the target's account, and its policy must grant "
                        f"{self._reader} s3:GetObject and s3:GetObjectVersion on the object.",
                        details={"field": "template_url"},
                    ) from None
                raise
            size = int(response.get("ContentLength", 0))
            if size > max_bytes:
                response["Body"].close()
                raise PayloadTooLarge(
                    f"{location.url} is {size} bytes; the limit is {max_bytes}.",
                    code="TEMPLATE_TOO_LARGE",
                    details={"field": "template_url", "limit": max_bytes},
                )
            raw = response["Body"].read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise PayloadTooLarge(
                f"{location.url} is larger than {max_bytes} bytes.",
                code="TEMPLATE_TOO_LARGE",
                details={"field": "template_url", "limit": max_bytes},
            )
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnprocessableRequest(
                f"{location.url} is not UTF-8 text.",
                code="INVALID_TEMPLATE",
                details={"field": "template_url"},
            ) from None
        # Over TemplateBody's limit, CloudFormation reads the object itself, through its bucket's region.
        region = self._bucket_region(location.bucket, expected_owner) if sent_by_url(raw) else None
        return TemplateObject(body, response.get("VersionId"), region)

    def _bucket_region(self, bucket: str, expected_owner: str) -> str | None:
        """The bucket's region, where CloudFormation's TemplateURL must point. S3 tells it in
        ``x-amz-bucket-region`` on HeadBucket's answer, a refusal included (the reader needs no
        s3:ListBucket), as botocore's region redirector relies on."""
        headers: Any
        with aws_call("HeadBucket"):
            try:
                answer = self._s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=expected_owner)
                headers = answer["ResponseMetadata"]["HTTPHeaders"]
            except ClientError as error:
                refusal: dict[str, Any] = dict(error.response.get("ResponseMetadata") or {})
                headers = refusal.get("HTTPHeaders") or {}
                if not headers.get("x-amz-bucket-region"):
                    raise  # throttled, or S3 did not say: aws_call explains it
        region = headers.get("x-amz-bucket-region")
        return str(region) if region else None
