"""How an operation keeps its template beside its record: inline, or as its S3 object when the text
is beyond TemplateBody's limit. Pure values, shared by every operation that writes a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.domain.model import OperationRequest
from chalicelib.domain.templates import sent_by_url


@dataclass(frozen=True)
class Template:
    """A template as an operation keeps it: the text up to TemplateBody's limit, else its S3 object."""

    body: str
    location: str | None = None
    version: str | None = None
    region: str | None = None  # the bucket's

    def request_fields(self) -> dict[str, Any]:
        if self.location is not None and sent_by_url(self.body):
            return {
                "template_body": None,
                "template_location": self.location,
                "template_version": self.version,
                "template_region": self.region,
            }
        return {"template_body": self.body}


def carried(request: OperationRequest | None) -> dict[str, Any]:
    """An earlier operation's template, carried over as it was kept."""
    if request is None:
        return {}
    return {
        "template_body": request.template_body,
        "template_location": request.template_location,
        "template_version": request.template_version,
        "template_region": request.template_region,
    }
