"""What onboarding a target account needs from the outside world (``chalicelib/service/onboarding.py``).

Credentials a user typed (access keys, or an ADFS sign-in) become an ``AccountSession`` inside the
adapter; the service sees identities, simulation decisions and stack states, never the keys. The
dataclasses that carry what the user typed hide their secrets from ``repr`` and know them (``secrets``)
so that the service can scrub any text it answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.domain.adfs import SamlRole
from chalicelib.service.ports import ActionDecision, CallerIdentity, StackEventInfo, StackInfo


@dataclass(frozen=True)
class AccessKeys:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    mfa_serial: str | None = None
    mfa_code: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        return [
            s for s in (self.access_key_id, self.secret_access_key, self.session_token, self.mfa_code) if s
        ]


@dataclass(frozen=True)
class AdfsLogin:
    adfs_url: str
    username: str
    password: str = field(repr=False)
    role_arn: str | None = None  # the role picked from Fetch Roles (bootstrap, credential test)

    def secrets(self) -> list[str]:
        return [self.password]


Credentials = AccessKeys | AdfsLogin


class BootstrapStacks(Protocol):
    """CloudFormation in one account and region, as the signed-in user."""

    def find(self, stack_name: str) -> StackInfo | None:
        """The live stack of that name (not DELETE_COMPLETE), if any."""

    def create(self, stack_name: str, template_body: str, parameters: dict[str, str]) -> None: ...
    def update(self, stack_name: str, template_body: str, parameters: dict[str, str]) -> bool:
        """False when CloudFormation says there is nothing to update."""

    def describe(self, stack_name: str) -> StackInfo: ...
    def events(self, stack_name: str) -> list[StackEventInfo]:
        """The stack's events, oldest first."""


class AccountSession(Protocol):
    """A signed-in identity in one AWS account; its credentials never leave the adapter."""

    def caller_identity(self) -> CallerIdentity: ...
    def simulate(
        self, principal_arn: str, actions: list[str], *, assume_mfa: bool = False
    ) -> list[ActionDecision]:
        """IAM's decision on each action for the principal (as if MFA were present, with ``assume_mfa``)."""

    def mfa_devices(self, user_name: str) -> list[str]:
        """The serials of the IAM user's MFA devices (ListMFADevices); none when it may not list them."""

    def stacks(self, region: str) -> BootstrapStacks: ...


class AccountSignIn(Protocol):
    def with_keys(self, keys: AccessKeys) -> AccountSession:
        """The keys' session (GetSessionToken first when an MFA serial and code are given)."""

    def with_saml(self, assertion: str, role: SamlRole) -> AccountSession:
        """AssumeRoleWithSAML with the assertion, as the chosen role."""


class AdfsClient(Protocol):
    def check_url(self, url: str) -> None:
        """ADFS_URL_REFUSED for a URL refused without the network (not https, a host off the
        allow-list), before anything else is read: ``assertion`` checks it again, then where it leads."""

    def assertion(self, url: str, username: str, password: str) -> str:
        """Sign in at the ADFS URL (SSRF-guarded) and return the base64 SAMLResponse."""
