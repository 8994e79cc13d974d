"""Request bodies and query strings, validated with pydantic before anything else happens.

Unknown fields are refused (``extra="forbid"``); every rule that AWS would enforce later (account
ids, role ARNs, regions, stack names, parameter counts) is enforced here first, because botocore
checks only minimum lengths.
"""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from chalicelib.domain.model import DeploymentStatus
from chalicelib.domain.regions import ALL_REGIONS, partition_of
from chalicelib.domain.templates import MAX_PARAMETERS

ROLE_ARN_PATTERN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/([\x21-\x7E]{0,510}/)?[\w+=,.@-]{1,64}$"
)
ACCOUNT_ID = Annotated[str, StringConstraints(pattern=r"^\d{12}$", strict=True)]
STACK_NAME = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z][-a-zA-Z0-9]*$", max_length=128, strict=True)
]
TARGET_ID = Annotated[str, StringConstraints(pattern=r"^tgt-[0-9a-f]{24}$", strict=True)]
TAG_KEY = Annotated[str, StringConstraints(min_length=1, max_length=128, strict=True)]
TAG_VALUE = Annotated[str, StringConstraints(max_length=256, strict=True)]
PARAM_KEY = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9]{1,255}$", strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_region(region: str) -> str:
    if region not in ALL_REGIONS:
        raise ValueError(f"unknown region {region!r}")
    return region


class TargetCreate(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, strict=True)]
    account_id: ACCOUNT_ID
    role_arn: Annotated[str, StringConstraints(max_length=2048, strict=True)]
    regions: Annotated[list[StrictStr], Field(min_length=1, max_length=40)]

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str) -> str:
        if not ROLE_ARN_PATTERN.match(value):
            raise ValueError("role_arn must look like arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        for region in value:
            _check_region(region)
        if len(set(value)) != len(value):
            raise ValueError("regions must not repeat")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.role_arn.split(":")[4] != self.account_id:
            raise ValueError("role_arn belongs to another account than account_id")
        partition = self.role_arn.split(":")[1]
        foreign = [r for r in self.regions if partition_of(r) != partition]
        if foreign:
            raise ValueError(f"regions {foreign} are not in the role's partition {partition}")
        return self


class DeploymentCreate(_Strict):
    target_id: TARGET_ID
    region: StrictStr
    stack_name: STACK_NAME
    template_body: Annotated[str, StringConstraints(min_length=1, strict=True)]
    parameters: Annotated[dict[PARAM_KEY, StrictStr], Field(max_length=MAX_PARAMETERS)] = {}
    tags: Annotated[dict[TAG_KEY, TAG_VALUE], Field(max_length=50)] = {}

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return _check_region(value)


class DeploymentUpdate(_Strict):
    template_body: Annotated[str, StringConstraints(min_length=1, strict=True)] | None = None
    parameters: Annotated[dict[PARAM_KEY, StrictStr], Field(max_length=MAX_PARAMETERS)] | None = None
    tags: Annotated[dict[TAG_KEY, TAG_VALUE], Field(max_length=50)] | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.template_body is None and self.parameters is None and self.tags is None:
            raise ValueError("send at least one of template_body, parameters, tags")
        return self


class PageQuery(_Strict):
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    next_token: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None


class DeploymentQuery(PageQuery):
    target_id: TARGET_ID | None = None
    status: DeploymentStatus | None = None
