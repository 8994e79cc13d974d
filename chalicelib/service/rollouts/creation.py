"""POST /rollouts: what a new rollout is, the checks it passes before any write, and its items, waves
and records, written once the whole request is valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.errors import UnprocessableRequest
from chalicelib.domain.model import new_id, utc_now
from chalicelib.domain.noecho import ParameterSplit, split_parameters
from chalicelib.domain.parameters import check_values
from chalicelib.domain.rollouts import (
    MAX_ROLLOUT_ITEMS,
    ItemPlan,
    Rollout,
    RolloutItem,
    RolloutMode,
    RolloutSpec,
    RolloutStatus,
    RolloutView,
    Strategy,
    plan_waves,
)
from chalicelib.domain.templates import NO_ECHO_MASK, parse_template
from chalicelib.service.deployments import check_keeps_secrets, secrets_kept
from chalicelib.service.notifications import NotificationRequest
from chalicelib.service.rollouts.waves import RolloutWaves

TARGET_PAGE = 100


@dataclass(frozen=True)
class TargetChoice:
    target_id: str
    regions: tuple[str, ...] | None  # None: every region the target enables


@dataclass(frozen=True)
class NewRollout:
    stack_name: str
    template_body: str
    parameters: dict[str, str]
    tags: dict[str, str]
    targets: tuple[TargetChoice, ...]
    strategy: Strategy
    mode: RolloutMode
    notify: NotificationRequest | None = None  # as the caller sent it; the secret is stored by create


@dataclass(frozen=True)
class _KnownTarget:
    target_id: str
    account_id: str
    regions: tuple[str, ...]


def _check_items(new: NewRollout, count: int, regions: set[str]) -> None:
    """A rollout of ``count`` (target, region) items in ``regions``: within the item limit, and its
    ``region_order`` (if any) lists exactly those regions."""
    if count > MAX_ROLLOUT_ITEMS:
        raise UnprocessableRequest(
            f"The rollout has {count} (target, region) items; the limit is {MAX_ROLLOUT_ITEMS}.",
            code="TOO_MANY_ITEMS",
            hint="Split the fleet into several rollouts.",
            details={"field": "targets", "items": count, "limit": MAX_ROLLOUT_ITEMS},
        )
    order = new.strategy.region_order
    if order is not None:
        missing, extra = sorted(regions - set(order)), sorted(set(order) - regions)
        if missing or extra:
            raise UnprocessableRequest(
                "strategy.region_order must list exactly the regions the rollout deploys to.",
                code="REGION_ORDER_MISMATCH",
                hint='List every region once, or send "parallel".',
                details={"field": "strategy.region_order", "missing": missing, "extra": extra},
            )


class RolloutCreation(RolloutWaves):
    def check_new(self, new: NewRollout) -> ParameterSplit:
        """What ``create`` refuses with no AWS call (its notification request, template, parameters, a
        NoEcho value with no secret store to keep it, and, when every target names its regions, the item
        count and region_order); the parameters' split."""
        notifier = self._notifier(new.notify)
        if notifier is not None and new.notify is not None:
            notifier.check(new.notify)
        summary = parse_template(new.template_body)
        # NoEcho values go to the secret store under the rollout's id until its items have started;
        # a value left out is each item's business: an update keeps the stack's, a create needs one.
        split = split_parameters(summary, new.parameters, (), strict=False)
        summary.check_parameters({**split.public, **dict.fromkeys(summary.no_echo, NO_ECHO_MASK)})
        check_values(new.template_body, new.parameters)
        check_keeps_secrets(self._secrets, split)  # NoEcho values need the secret store
        if all(choice.regions is not None for choice in new.targets):  # the body says it all
            explicit = [region for choice in new.targets for region in choice.regions or ()]
            _check_items(new, len(explicit), set(explicit))
        return split

    def create(self, tenant_id: str, new: NewRollout) -> RolloutView:
        split = self.check_new(new)  # before any I/O: a malformed request costs no AWS call
        plans = self._item_plans(tenant_id, new)
        ordered, waves = plan_waves(plans, new.strategy)
        notifier = self._notifier(new.notify)
        notifications = None
        if notifier is not None and new.notify is not None:  # last: stores the webhook secret
            accounts = {p.account_id for p in plans}
            notifications = notifier.configure_fleet(tenant_id, accounts, new.notify)
        now = utc_now()
        rollout = Rollout(
            tenant_id=tenant_id,
            rollout_id=new_id("rol"),
            stack_name=new.stack_name,
            mode=new.mode,
            strategy=new.strategy,
            status=RolloutStatus.PENDING,
            waves=tuple(waves),
            item_count=len(ordered),
            created_at=now,
            updated_at=now,
            notifications=notifications,
        )
        wave_of = {index: w.index for w in waves for index in w.item_ids()}
        items = [
            RolloutItem(
                rollout.rollout_id, n, p.target_id, p.account_id, p.region, wave_of[n], updated_at=now
            )
            for n, p in enumerate(ordered)
        ]
        spec = RolloutSpec(new.stack_name, new.template_body, split.public, dict(new.tags))
        try:
            with secrets_kept(self._secrets, rollout.rollout_id, split):
                self._store.create_rollout(rollout, items, spec)
        except BaseException:
            if self._notifications is not None:  # no record refers to the webhook secret stored above
                self._notifications.discard(notifications)
            raise
        self._start(rollout)
        return RolloutView(rollout, items)

    def _item_plans(self, tenant_id: str, new: NewRollout) -> list[ItemPlan]:
        known = self._all_targets(tenant_id)
        unknown = [c.target_id for c in new.targets if c.target_id not in known]
        if unknown:
            raise UnprocessableRequest(
                f"{len(unknown)} target(s) do not exist: {', '.join(unknown[:10])}.",
                code="TARGET_NOT_FOUND",
                hint="Register the targets first (POST /targets), or leave them out.",
                details={"field": "targets", "unknown": unknown},
            )
        plans: list[ItemPlan] = []
        disabled: list[dict[str, str]] = []
        for choice in new.targets:
            target = known[choice.target_id]
            for region in choice.regions if choice.regions is not None else target.regions:
                if region not in target.regions:
                    disabled.append({"target_id": target.target_id, "region": region})
                plans.append(ItemPlan(target.target_id, target.account_id, region))
        if disabled:
            raise UnprocessableRequest(
                f"{len(disabled)} region(s) are not enabled on their target.",
                code="REGION_NOT_ENABLED",
                hint="Use only regions the target was registered with, or register it with them.",
                details={"field": "targets", "not_enabled": disabled},
            )
        _check_items(new, len(plans), {p.region for p in plans})
        return plans

    def _all_targets(self, tenant_id: str) -> dict[str, _KnownTarget]:
        found: dict[str, _KnownTarget] = {}
        token: str | None = None
        while True:
            page = self._targets.list(tenant_id, TARGET_PAGE, token)
            for t in page.items:
                found[str(t["target_id"])] = _KnownTarget(
                    str(t["target_id"]), str(t["account_id"]), tuple(str(r) for r in t["regions"])
                )
            token = page.next_token
            if token is None:
                return found
