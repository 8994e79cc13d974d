"""Describing a template before it is deployed: what ``POST /templates/describe`` and the console's
parameter forms need (``chalicelib/domain/parameters.py``). No CloudFormation call: the text is read
here; a ``template_url`` is read from S3 as ``POST /deployments`` reads it (bucket owned by the target's
account), and a deployment's own template comes from its stored operation.
"""

from __future__ import annotations

from chalicelib.domain.automation import parse_s3_url
from chalicelib.domain.errors import UnprocessableRequest
from chalicelib.domain.parameters import TemplateDescription, describe_template
from chalicelib.service.deployments import DeploymentService
from chalicelib.service.sources import DeploymentSources
from chalicelib.service.targets import TargetService


class TemplateService:
    def __init__(
        self, deployments: DeploymentService, targets: TargetService, sources: DeploymentSources | None
    ) -> None:
        self._deployments = deployments
        self._targets = targets
        self._sources = sources

    def describe(
        self, tenant_id: str, template_body: str | None, template_url: str | None, target_id: str | None
    ) -> TemplateDescription:
        if template_body is not None:
            return describe_template(template_body)
        if template_url is None or target_id is None or self._sources is None:
            raise UnprocessableRequest(
                "Send template_body, or template_url with target_id.",
                code="TEMPLATE_REQUIRED",
                hint="A template in S3 is read from a bucket of the target's account: name the target.",
            )
        parse_s3_url(template_url)  # its shape before any AWS call
        target = self._targets.get(tenant_id, target_id)
        return describe_template(self._sources.read(template_url, target.account_id, None).body)

    def describe_deployment(self, tenant_id: str, deployment_id: str) -> TemplateDescription:
        return describe_template(self._deployments.template(tenant_id, deployment_id))
