"""The rollout routes: start a fleet rollout, watch it, cancel, resume or apply it.

Each handler validates, makes one ``RolloutService`` call and dumps the result; parsing, auth,
idempotency and the error mapping live in ``chalicelib/api/http.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice.app import Blueprint, Response

from chalicelib.api.errors import json_response
from chalicelib.api.http import ALL_CONTENT_TYPES, Http
from chalicelib.api.rollout_schemas import RolloutCreate, RolloutItemsQuery
from chalicelib.composition import Container, Services
from chalicelib.domain.rollouts import RolloutMode, RolloutView, Strategy, item_cursor
from chalicelib.service.notifications import NotificationRequest
from chalicelib.service.rollouts import NewRollout, TargetChoice


def rollout_blueprint(container: Container) -> Blueprint:
    bp = Blueprint(__name__)
    http = Http(bp, container)
    bearer, body, path_id, query, run = http.bearer, http.body, http.path_id, http.query, http.run
    tenant_and_services, idempotent = http.tenant_and_services, http.idempotent

    @bp.route("/rollouts", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def create_rollout() -> Response:
        def handle() -> Response:
            auth = bearer()
            new = body(RolloutCreate)
            tenant, services = tenant_and_services(auth)
            order = new.strategy.region_order
            notify = new.notifications
            spec = NewRollout(
                stack_name=new.stack_name,
                template_body=new.template_body,
                parameters=dict(new.parameters),
                tags=dict(new.tags),
                targets=tuple(
                    TargetChoice(t.target_id, tuple(t.regions) if t.regions is not None else None)
                    for t in new.targets
                ),
                strategy=Strategy(
                    canary=new.strategy.canary,
                    max_concurrent=new.strategy.max_concurrent,
                    failure_tolerance=new.strategy.failure_tolerance,
                    region_order=None if isinstance(order, str) else tuple(order),
                ),
                mode=RolloutMode(new.mode),
                notify=NotificationRequest(notify.sns_topic_arn, notify.webhook_url, notify.webhook_secret)
                if notify
                else None,
            )
            return idempotent(
                tenant,
                services,
                new.model_dump(),
                lambda: json_response(202, services.rollouts.create(tenant, spec).public()),
            )

        return run(handle)

    @bp.route("/rollouts/{rollout_id}", methods=["GET"])
    def get_rollout(rollout_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            rid = path_id("rol", rollout_id)
            q = query(RolloutItemsQuery)
            after = item_cursor(rid, q.next_token)  # a bad token is refused before any AWS call
            tenant, services = tenant_and_services(auth)
            view = services.rollouts.get(tenant, rid, limit=q.limit, after=after, status=q.status)
            return json_response(200, view.public())

        return run(handle)

    def action(rollout_id: str, act: Callable[[Services, str, str], RolloutView]) -> Response:
        def handle() -> Response:
            auth = bearer()
            rid = path_id("rol", rollout_id)
            tenant, services = tenant_and_services(auth)
            return json_response(202, act(services, tenant, rid).public())

        return run(handle)

    @bp.route("/rollouts/{rollout_id}/cancel", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def cancel_rollout(rollout_id: str) -> Response:
        return action(rollout_id, lambda s, tenant, rid: s.rollouts.cancel(tenant, rid))

    @bp.route("/rollouts/{rollout_id}/resume", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def resume_rollout(rollout_id: str) -> Response:
        return action(rollout_id, lambda s, tenant, rid: s.rollouts.resume(tenant, rid))

    @bp.route("/rollouts/{rollout_id}/apply", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def apply_rollout(rollout_id: str) -> Response:
        return action(rollout_id, lambda s, tenant, rid: s.rollouts.apply(tenant, rid))

    return bp
