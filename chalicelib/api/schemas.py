"""Request bodies and query strings, validated with pydantic before anything else happens.

Unknown fields are refused (``extra="forbid"``); every rule that AWS would enforce later (account
ids, role ARNs, regions, stack names, parameter counts) is enforced here first, because botocore
checks only minimum lengths.

Patterns use ASCII classes (``[0-9]``, never ``\\d``, which matches any Unicode digit) and match
whole values: pydantic runs ``pattern=`` with Rust's regex engine, where ``$`` is the end of the text
(Python's ``re`` would also accept a trailing newline, so Python patterns here use ``fullmatch``).
Free text (names, tags, parameter values, URLs, secrets) holds no control character and no unpaired
surrogate (``chalicelib/domain/text.py``); a parameter value may hold line breaks and tabs.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from chalicelib.domain.model import DeploymentFilter, DeploymentStatus
from chalicelib.domain.permissions import DEFAULT_PROFILE, check_profile_name
from chalicelib.domain.regions import ALL_REGIONS, partition_of
from chalicelib.domain.templates import (
    DEPLOYMENT_TAG,
    MAX_PARAMETER_VALUE_BYTES,
    MAX_PARAMETERS,
    MAX_USER_TAGS,
)
from chalicelib.domain.text import multi_line, single_line, url_text, whole_number
from chalicelib.service.deployments import DeploymentChange, NewDeployment
from chalicelib.service.notifications import NotificationRequest
from chalicelib.service.targets import NewTarget, TargetChange

# STS's RoleArn pattern, with AWS's \\d and \\w spelled in ASCII (fullmatch).
ROLE_ARN_PATTERN = re.compile(
    r"arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/([\x21-\x7E]{0,510}/)?[A-Za-z0-9_+=,.@-]{1,64}"
)
ACCOUNT_ID = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$", strict=True)]
STACK_NAME = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z][-a-zA-Z0-9]*$", max_length=128, strict=True)
]
TARGET_ID = Annotated[str, StringConstraints(pattern=r"^tgt-[0-9a-f]{24}$", strict=True)]


def _tag_key(value: str) -> str:
    if value.lower().startswith("aws:"):
        raise ValueError("tag keys starting with aws: are reserved for AWS")
    if value.lower() == DEPLOYMENT_TAG:
        raise ValueError(f"the tag key {DEPLOYMENT_TAG} is the service's: it names the stack's deployment")
    return single_line(value)


def _parameter_value(value: str) -> str:
    size = len(value.encode())
    if size > MAX_PARAMETER_VALUE_BYTES:
        raise ValueError(
            f"a parameter value holds at most {MAX_PARAMETER_VALUE_BYTES} bytes in UTF-8 (CloudFormation's "
            f"limit); this one holds {size}"
        )
    return multi_line(value)


TAG_KEY = Annotated[
    str, StringConstraints(min_length=1, max_length=128, strict=True), AfterValidator(_tag_key)
]
# CloudFormation refuses an empty tag value (botocore's model: 1 to 256 characters).
TAG_VALUE = Annotated[
    str, StringConstraints(min_length=1, max_length=256, strict=True), AfterValidator(single_line)
]
# A stack takes 50 tags; the service adds its own nexus:deployment-id to each stack it makes.
TAGS = Annotated[
    dict[TAG_KEY, TAG_VALUE],
    Field(
        max_length=MAX_USER_TAGS,
        description=f"At most {MAX_USER_TAGS}: a stack takes 50 tags and the service adds nexus:deployment-id.",
    ),
]
PARAM_KEY = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9]{1,255}$", strict=True)]
PARAM_VALUE = Annotated[
    str,
    StringConstraints(max_length=MAX_PARAMETER_VALUE_BYTES, strict=True),
    AfterValidator(_parameter_value),
]
# A query string's whole number: ASCII digits only.
QUERY_INT = Annotated[int, BeforeValidator(whole_number)]


# Any region botocore knows (the field validators check it); the document lists them.
REGION = Annotated[StrictStr, WithJsonSchema({"type": "string", "enum": sorted(ALL_REGIONS)})]


class Strict(BaseModel):
    # defer_build: a model's validator is built when a request first needs it, not when the HTTP
    # handler is imported (all of them, on every cold start of every function, for the one or two
    # models a request uses; BENCHMARKS.md section 1).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _check_region(region: str) -> str:
    if region not in ALL_REGIONS:
        raise ValueError(f"unknown region {region!r}")
    return region


def unique_regions(values: list[str]) -> list[str]:
    for region in values:
        _check_region(region)
    if len(set(values)) != len(values):
        raise ValueError("regions must not repeat")
    return values


def _single_line_before_strip(value: Any) -> Any:
    """A name's control characters are refused before its surrounding whitespace is stripped: Python's
    whitespace includes form feed, vertical tab and the separators U+001C-U+001F and U+0085, which a
    strip would otherwise remove silently (a fuzz test found ``"\x0c0"`` accepted as ``"0"``)."""
    return single_line(value) if isinstance(value, str) else value


TARGET_NAME = Annotated[
    str,
    BeforeValidator(_single_line_before_strip),
    StringConstraints(min_length=1, max_length=128, strip_whitespace=True, strict=True),
]


class TargetCreate(Strict):
    name: TARGET_NAME
    account_id: ACCOUNT_ID
    role_arn: Annotated[
        str,
        StringConstraints(max_length=2048, strict=True),
        WithJsonSchema({"type": "string", "maxLength": 2048, "pattern": f"^{ROLE_ARN_PATTERN.pattern}$"}),
    ]
    regions: Annotated[list[REGION], Field(min_length=1, max_length=40)]
    permission_profile: StrictStr = DEFAULT_PROFILE

    @field_validator("permission_profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        return check_profile_name(value)

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str) -> str:
        if not ROLE_ARN_PATTERN.fullmatch(value):
            raise ValueError("role_arn must look like arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        return unique_regions(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.role_arn.split(":")[4] != self.account_id:
            raise ValueError("role_arn belongs to another account than account_id")
        partition = self.role_arn.split(":")[1]
        foreign = [r for r in self.regions if partition_of(r) != partition]
        if foreign:
            raise ValueError(f"regions {foreign} are not in the role's partition {partition}")
        return self

    def spec(self) -> NewTarget:
        return NewTarget(
            self.name, self.account_id, self.role_arn, tuple(self.regions), self.permission_profile
        )


class TargetPatch(Strict):
    """``PATCH /targets/{id}``: the fields to change. A region can only be removed once it has no live
    deployments (409 REGION_IN_USE); a region must be in the partition of the target's role."""

    name: TARGET_NAME | None = None
    regions: Annotated[list[REGION], Field(min_length=1, max_length=40)] | None = None
    permission_profile: StrictStr | None = None

    @field_validator("permission_profile")
    @classmethod
    def _profile(cls, value: str | None) -> str | None:
        return None if value is None else check_profile_name(value)

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else unique_regions(value)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.name is None and self.regions is None and self.permission_profile is None:
            raise ValueError("send at least one of name, regions, permission_profile")
        return self

    def spec(self) -> TargetChange:
        regions = tuple(self.regions) if self.regions is not None else None
        return TargetChange(self.name, regions, self.permission_profile)


class NotificationsCreate(Strict):
    """Where outcomes go (chalicelib/service/notifications.py); the secret is stored in Secrets Manager."""

    sns_topic_arn: (
        Annotated[str, StringConstraints(max_length=1024, strict=True), AfterValidator(single_line)] | None
    ) = None
    webhook_url: (
        Annotated[
            str, StringConstraints(min_length=8, max_length=2048, strict=True), AfterValidator(url_text)
        ]
        | None
    ) = None
    webhook_secret: (
        Annotated[
            str, StringConstraints(min_length=16, max_length=512, strict=True), AfterValidator(single_line)
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.sns_topic_arn is None and self.webhook_url is None:
            raise ValueError("send sns_topic_arn, webhook_url, or both")
        return self

    def __repr__(self) -> str:  # never show the secret in a log line or a traceback
        return f"NotificationsCreate(sns_topic_arn={self.sns_topic_arn!r}, webhook_url={self.webhook_url!r})"

    def spec(self) -> NotificationRequest:
        return NotificationRequest(self.sns_topic_arn, self.webhook_url, self.webhook_secret)


class DeploymentCreate(Strict):
    target_id: TARGET_ID
    region: REGION
    stack_name: STACK_NAME
    # Exactly one of template_body and template_url (s3://bucket/key, read at create and on new versions).
    template_body: Annotated[str, StringConstraints(min_length=1, strict=True)] | None = None
    template_url: (
        Annotated[
            str,
            StringConstraints(pattern=r"^s3://[^/]+/.+$", max_length=1100, strict=True),
            AfterValidator(single_line),
        ]
        | None
    ) = None
    parameters: Annotated[dict[PARAM_KEY, PARAM_VALUE], Field(max_length=MAX_PARAMETERS)] = {}
    tags: TAGS = {}
    notifications: NotificationsCreate | None = None
    mode: Literal["deploy", "plan"] = "deploy"  # plan: compute the change set only; apply it later
    adopt: StrictBool = False  # take over an existing stack of that name that this service did not create
    skip_unchanged: StrictBool = False  # 200 + outcome SKIPPED when the stack already has this configuration

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return _check_region(value)

    @model_validator(mode="after")
    def _one_template(self) -> Self:
        if (self.template_body is None) == (self.template_url is None):
            raise ValueError("send exactly one of template_body and template_url")
        return self

    def spec(self) -> NewDeployment:
        return NewDeployment(
            self.target_id,
            self.region,
            self.stack_name,
            self.template_body or "",
            dict(self.parameters),
            dict(self.tags),
            template_url=self.template_url,
            notify=self.notifications.spec() if self.notifications else None,
            adopt=self.adopt,
        )


class DeploymentUpdate(Strict):
    template_body: Annotated[str, StringConstraints(min_length=1, strict=True)] | None = None
    parameters: Annotated[dict[PARAM_KEY, PARAM_VALUE], Field(max_length=MAX_PARAMETERS)] | None = None
    tags: TAGS | None = None
    mode: Literal["deploy", "plan"] = "deploy"
    skip_unchanged: StrictBool = False

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.template_body is None and self.parameters is None and self.tags is None:
            raise ValueError("send at least one of template_body, parameters, tags")
        return self

    def spec(self) -> DeploymentChange:
        return DeploymentChange(
            self.template_body,
            dict(self.parameters) if self.parameters is not None else None,
            dict(self.tags) if self.tags is not None else None,
        )


LOGICAL_ID = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9]{1,255}$", strict=True)]


class ApplyPlan(Strict):
    # The plan's config_hash as the reviewer saw it: apply refuses (PLAN_STALE) if it is not the plan's.
    config_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$", strict=True)] | None = None


class ContinueRollback(Strict):
    resources_to_skip: Annotated[list[LOGICAL_ID], Field(max_length=500)] = []


class DeleteQuery(Strict):
    # A query string, so bounded by a URL's length (API Gateway takes about 8 KiB): 4,096 characters
    # name about 250 logical ids of 15 characters; a stack that needs more is fixed in its account.
    retain: (
        Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9]+(,[a-zA-Z0-9]+)*$", max_length=4096)] | None
    ) = None

    @field_validator("retain")
    @classmethod
    def _retain(cls, value: str | None) -> str | None:
        if value is not None and (len(value.split(",")) > 500 or max(map(len, value.split(","))) > 255):
            raise ValueError("retain takes at most 500 logical ids of at most 255 characters")
        return value

    @property
    def retained(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.retain.split(","))) if self.retain else ()


class PageQuery(Strict):
    limit: Annotated[QUERY_INT, Field(ge=1, le=100)] = 50
    next_token: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None


class DeploymentQuery(PageQuery):
    target_id: TARGET_ID | None = None
    status: DeploymentStatus | None = None
    stack_name: STACK_NAME | None = None
    account_id: ACCOUNT_ID | None = None
    region: REGION | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else _check_region(value)

    def filters(self) -> DeploymentFilter:
        return DeploymentFilter(self.target_id, self.status, self.stack_name, self.account_id, self.region)


class BootstrapQuery(Strict):
    # account: the whole bootstrap stack (roles, policies, the forwarding rule of its own region);
    # region: the forwarding rule alone, for each further region of the target.
    part: Literal["account", "region"] = "account"


class PermissionsQuery(Strict):
    profile: StrictStr = DEFAULT_PROFILE

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        return check_profile_name(value)


class TemplateDescribe(Strict):
    """POST /templates/describe: the template text, or an s3:// URL in a bucket of the target's account."""

    template_body: Annotated[str, StringConstraints(min_length=1, strict=True)] | None = None
    template_url: (
        Annotated[str, StringConstraints(pattern=r"^s3://[^/]+/.+$", max_length=1100, strict=True)] | None
    ) = None
    target_id: TARGET_ID | None = None

    @model_validator(mode="after")
    def _one_template(self) -> Self:
        if (self.template_body is None) == (self.template_url is None):
            raise ValueError("send exactly one of template_body and template_url")
        if self.template_url is not None and self.target_id is None:
            raise ValueError("template_url needs target_id (the bucket belongs to the target's account)")
        return self
