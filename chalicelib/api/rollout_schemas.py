"""Request bodies of the rollout routes, validated with pydantic before anything else happens.

Shapes only (no I/O): whether the targets exist, belong to the caller and enable the regions is
checked next by ``RolloutService.create``, still before anything is written; so are the
notification settings' rules (``NotificationService.check``), before any AWS call of the service.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chalicelib.api.schemas import (
    PARAM_KEY,
    PARAM_VALUE,
    QUERY_INT,
    REGION,
    STACK_NAME,
    TAGS,
    TARGET_ID,
    NotificationsCreate,
    PageQuery,
    Strict,
    unique_regions,
)
from chalicelib.domain.rollouts import (
    MAX_ROLLOUT_ITEMS,
    ItemStatus,
    RolloutFilter,
    RolloutMode,
    RolloutStatus,
    Strategy,
    item_cursor,
)
from chalicelib.domain.templates import MAX_PARAMETERS
from chalicelib.service.rollouts import NewRollout, TargetChoice

CONCURRENCY_PERCENT = Annotated[str, StringConstraints(pattern=r"^(100|[1-9][0-9]?)%$", strict=True)]
TOLERANCE_PERCENT = Annotated[str, StringConstraints(pattern=r"^(100|[1-9]?[0-9])%$", strict=True)]


class RolloutTarget(Strict):
    target_id: TARGET_ID
    regions: Annotated[list[REGION], Field(min_length=1, max_length=40)] | None = None

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else unique_regions(value)


class RolloutStrategy(Strict):
    canary: Annotated[StrictInt, Field(ge=0, le=100)] = 0
    max_concurrent: Annotated[StrictInt, Field(ge=1, le=MAX_ROLLOUT_ITEMS)] | CONCURRENCY_PERCENT = 10
    failure_tolerance: Annotated[StrictInt, Field(ge=0, le=MAX_ROLLOUT_ITEMS)] | TOLERANCE_PERCENT = 0
    region_order: Annotated[list[REGION], Field(min_length=1, max_length=40)] | Literal["parallel"] = (
        "parallel"
    )

    @field_validator("region_order")
    @classmethod
    def _order(cls, value: list[str] | str) -> list[str] | str:
        return value if isinstance(value, str) else unique_regions(value)

    def spec(self) -> Strategy:
        order = self.region_order
        return Strategy(
            canary=self.canary,
            max_concurrent=self.max_concurrent,
            failure_tolerance=self.failure_tolerance,
            region_order=None if isinstance(order, str) else tuple(order),
        )


def _strategy_default(schema: dict[str, Any]) -> None:
    """The document shows the strategy a rollout gets when it names none (a factory default has none
    in JSON Schema; a model instance as the default would build the validators at import)."""
    schema["default"] = RolloutStrategy().model_dump()


class RolloutCreate(Strict):
    stack_name: STACK_NAME
    template_body: Annotated[str, StringConstraints(min_length=1, strict=True)]
    parameters: Annotated[dict[PARAM_KEY, PARAM_VALUE], Field(max_length=MAX_PARAMETERS)] = {}
    tags: TAGS = {}
    targets: Annotated[list[RolloutTarget], Field(min_length=1, max_length=MAX_ROLLOUT_ITEMS)]
    strategy: RolloutStrategy = Field(default_factory=RolloutStrategy, json_schema_extra=_strategy_default)
    mode: Literal["apply", "plan"] = "apply"
    # Exactly POST /deployments' field: an SNS topic (in one of the rollout's target accounts) and/or a
    # signed webhook, told when the rollout ends, pauses or is planned
    # (chalicelib/service/rollouts/notices.py).
    notifications: NotificationsCreate | None = None

    @model_validator(mode="after")
    def _distinct_targets(self) -> Self:
        ids = [t.target_id for t in self.targets]
        if len(set(ids)) != len(ids):
            raise ValueError("each target may appear once in targets; list its regions instead")
        return self

    def spec(self) -> NewRollout:
        return NewRollout(
            stack_name=self.stack_name,
            template_body=self.template_body,
            parameters=dict(self.parameters),
            tags=dict(self.tags),
            targets=tuple(
                TargetChoice(t.target_id, tuple(t.regions) if t.regions is not None else None)
                for t in self.targets
            ),
            strategy=self.strategy.spec(),
            mode=RolloutMode(self.mode),
            notify=self.notifications.spec() if self.notifications else None,
        )


class RolloutItemsQuery(PageQuery):
    """``GET /rollouts/{id}``: which of its items to list. Counts and summary always cover them all."""

    limit: Annotated[QUERY_INT, Field(ge=1, le=1000)] = 100
    status: ItemStatus | None = None

    @model_validator(mode="after")
    def _token_of_this_rollout(self, info: ValidationInfo) -> Self:
        # A bad token is refused with the query, before the token's tenant is even looked up.
        ids = (info.context or {}).get("ids", {})
        if "rollout_id" in ids:
            self.cursor(ids["rollout_id"])
        return self

    def cursor(self, rollout_id: str) -> int:
        """The index of the last item the token's page showed (-1: from the start)."""
        return item_cursor(rollout_id, self.next_token)


class RolloutQuery(PageQuery):
    """``GET /rollouts``: which of the tenant's rollouts to list."""

    status: RolloutStatus | None = None
    stack_name: STACK_NAME | None = None
    target_id: TARGET_ID | None = None

    def filters(self) -> RolloutFilter:
        return RolloutFilter(self.status, self.stack_name, self.target_id)
