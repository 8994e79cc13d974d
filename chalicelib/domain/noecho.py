"""NoEcho parameters: their values are never stored, never answered, and sent to CloudFormation once.

CloudFormation shows a NoEcho parameter as ``****`` and lets an update keep it with
``UsePreviousValue``. We do the same: a deployment's stored and answered parameters hold ``****`` for
each NoEcho parameter; a value sent with a request is kept in the secret store (Secrets Manager) only
until the stack call that uses it, then deleted. An update that leaves a NoEcho parameter out (or
sends back the ``****`` it was shown) keeps the stack's value through ``UsePreviousValue``; a new stack,
a recreated one, or a template that adds the parameter has no previous value, so the value must be
sent again, and the error says so.

``skip_unchanged`` cannot compare a value it never kept: a request that sends a NoEcho value always
deploys.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from chalicelib.domain.errors import UnprocessableRequest
from chalicelib.domain.templates import NO_ECHO_MASK, TemplateSummary

# Secrets Manager holds a SecretString of at most 65,536 bytes (botocore's model: SecretStringType).
MAX_SECRET_BYTES = 65_536


def secret_string(values: Mapping[str, str]) -> str:
    """One operation's NoEcho values as the secret store holds them: compact JSON in UTF-8."""
    return json.dumps(dict(values), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class ParameterSplit:
    """One request's parameters, split by where each value goes."""

    public: dict[str, str]  # stored and answered: NoEcho values replaced by ****
    secret: dict[str, str] = field(default_factory=dict)  # NoEcho values sent now: to the secret store
    previous: tuple[str, ...] = ()  # NoEcho parameters left out: UsePreviousValue

    @property
    def has_new_secrets(self) -> bool:
        return bool(self.secret)


def split_parameters(
    summary: TemplateSummary, given: Mapping[str, str], previous: Collection[str], *, strict: bool = True
) -> ParameterSplit:
    """Split ``given`` for ``summary``'s template. ``previous``: the parameter names the live stack
    already has (empty for a stack about to be created), i.e. those UsePreviousValue may keep.
    ``strict=False`` (a rollout, whose items each decide later) leaves a missing value to each item."""
    public = dict(given)
    secret: dict[str, str] = {}
    kept: list[str] = []
    lost: list[str] = []
    for name in sorted(summary.no_echo):
        value = given.get(name)
        if value is not None and value != NO_ECHO_MASK:
            secret[name] = value
            public[name] = NO_ECHO_MASK
        elif name in previous:
            kept.append(name)
            public[name] = NO_ECHO_MASK
        elif value == NO_ECHO_MASK or not summary.parameters.get(name, False):
            lost.append(name)
    # ``****`` is never a value: it is what was shown for a NoEcho parameter. For one the template no
    # longer marks NoEcho (an update that left ``parameters`` out copies the stored ones, masks included),
    # it keeps the stack's value when there is one, and must be sent again when there is none.
    for name in sorted(set(given) - set(summary.no_echo)):
        if given[name] != NO_ECHO_MASK:
            continue
        if name in previous:
            kept.append(name)
        else:
            lost.append(name)
    if lost and strict:
        raise UnprocessableRequest(
            f"NoEcho parameter(s) {', '.join(lost)} must be sent again: NexusAI Deployer never keeps a "
            "NoEcho value, and this stack has no previous value to keep.",
            code="NOECHO_VALUE_REQUIRED",
            hint="Send the value(s) in parameters. An update of an existing stack may leave a NoEcho "
            "parameter out to keep its value; a new stack, a recreated one, a rollout item that creates "
            "its stack, or a template that adds the parameter needs the value itself.",
            details={"parameters": lost},
        )
    size = len(secret_string(secret).encode()) if secret else 0
    if size > MAX_SECRET_BYTES:
        raise UnprocessableRequest(
            f"The NoEcho values of this request take {size} bytes; the secret store that keeps them until "
            f"the stack call holds at most {MAX_SECRET_BYTES}.",
            code="NOECHO_VALUES_TOO_LARGE",
            hint="Send fewer or shorter NoEcho values in one request: keep a large secret (a certificate, a "
            "key) in Secrets Manager or SSM and pass its name, or split the stack.",
            details={"bytes": size, "limit": MAX_SECRET_BYTES, "parameters": sorted(secret)},
        )
    return ParameterSplit(public, secret, tuple(sorted(kept)))
