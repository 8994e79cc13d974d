"""The scheduled drift check: each ACTIVE stack's drift status, recorded on its deployment.

Per run: start DetectStackDrift on every ACTIVE deployment's stack (through the target role, with the
target's external ID, like the workflow), then poll DescribeStackDriftDetectionStatus for all of
them together until each has finished or the run's budget is spent. A stack that could not be
checked (role refused, stack gone, detection failed or still running at the deadline) is recorded
as UNKNOWN with the reason, never left silently stale. Only the ``drift`` attribute is written, so a
check never races the workflow's own writes to the deployment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.domain.automation import DriftInfo, DriftStatus
from chalicelib.domain.errors import DeployerError, NotFound, TransientAwsError
from chalicelib.domain.model import Deployment, utc_now
from chalicelib.service.event_ports import AutomationStore, DriftAccess, DriftGateway, DriftResult
from chalicelib.service.targets import TargetService

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftSettings:
    poll_seconds: float = 5.0
    budget_seconds: float = 600.0  # the DriftCheck function's timeout is 900 s
    max_stacks_per_run: int = 500


@dataclass
class DriftReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, status: DriftStatus) -> None:
        self.counts[status.value] = self.counts.get(status.value, 0) + 1


@dataclass
class _Pending:
    deployment: Deployment
    gateway: DriftGateway
    detection_id: str


class DriftService:
    def __init__(
        self,
        store: AutomationStore,
        targets: TargetService,
        access: DriftAccess,
        settings: DriftSettings,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._targets = targets
        self._access = access
        self._settings = settings
        self._sleep = sleep
        self._clock = clock

    def check_all(self) -> DriftReport:
        report = DriftReport()
        deadline = self._clock() + self._settings.budget_seconds
        pending: list[_Pending] = []
        for number, deployment in enumerate(self._store.active_deployments()):
            if number >= self._settings.max_stacks_per_run:
                break
            try:
                pending.append(self._start(deployment))
            except DeployerError as error:
                self._record(report, deployment, DriftStatus.UNKNOWN, None, f"{error.code}: {error.message}")
        while pending:
            still: list[_Pending] = []
            for item in pending:
                try:
                    result = item.gateway.result(item.detection_id)
                except TransientAwsError:
                    # A throttled read says nothing of the detection, which runs on: read it again on
                    # the next round (the budget still bounds the wait).
                    still.append(item)
                    continue
                except DeployerError as error:
                    self._record(
                        report, item.deployment, DriftStatus.UNKNOWN, None, f"{error.code}: {error.message}"
                    )
                    continue
                if result.done:
                    self._finish(report, item.deployment, result)
                else:
                    still.append(item)
            pending = still
            if pending and self._clock() >= deadline:
                for item in pending:
                    self._record(
                        report,
                        item.deployment,
                        DriftStatus.UNKNOWN,
                        None,
                        f"drift detection {item.detection_id} did not finish within "
                        f"{self._settings.budget_seconds:g} s",
                    )
                break
            if pending:
                self._sleep(self._settings.poll_seconds)
        return report

    def _start(self, deployment: Deployment) -> _Pending:
        target = self._targets.get(deployment.tenant_id, deployment.target_id)
        gateway = self._access.drift(
            role_arn=target.role_arn,
            external_id=target.external_id,
            session_name=f"nexus-drift-{deployment.deployment_id[-12:]}",
            region=deployment.region,
        )
        detection_id = gateway.start(deployment.stack_id or deployment.stack_name)
        return _Pending(deployment, gateway, detection_id)

    def _finish(self, report: DriftReport, deployment: Deployment, result: DriftResult) -> None:
        if result.stack_drift_status == "DRIFTED":
            self._record(report, deployment, DriftStatus.DRIFTED, result.drifted_resources, None)
        elif result.stack_drift_status == "IN_SYNC":
            self._record(report, deployment, DriftStatus.IN_SYNC, result.drifted_resources or 0, None)
        else:
            reason = result.reason or f"CloudFormation reported {result.stack_drift_status or 'no status'}"
            self._record(report, deployment, DriftStatus.UNKNOWN, result.drifted_resources, reason)

    def _record(
        self,
        report: DriftReport,
        deployment: Deployment,
        status: DriftStatus,
        count: int | None,
        reason: str | None,
    ) -> None:
        info = DriftInfo(status, utc_now(), count, reason[:500] if reason else None)
        try:
            self._store.record_drift(deployment.tenant_id, deployment.deployment_id, info)
        except NotFound:
            return  # deleted meanwhile; the next run sees the fleet as it is then
        except DeployerError as error:  # AWS still throttling, say: this one is checked again next run
            logger.warning(
                "drift not recorded",
                extra={
                    "deployment_id": deployment.deployment_id,
                    "drift": status.value,
                    "error_code": error.code,
                },
            )
            return
        report.add(status)
