"""Request bodies of the onboarding routes: credentials a user typed into the console.

Secrets are ``SecretStr`` (their ``repr`` is ``**********``), and a validation error never echoes an
input (``chalicelib/api/errors.py``), so a malformed key cannot reach a log or an answer either.
Everything AWS would check is checked first (AWS's own patterns), before any AWS or ADFS call.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AfterValidator, SecretStr, StringConstraints, field_validator, model_validator

from chalicelib.api.schemas import ROLE_ARN_PATTERN, TARGET_ID, Strict
from chalicelib.domain.text import url_text
from chalicelib.service.onboarding_ports import AccessKeys, AdfsLogin

ACCESS_KEY_ID = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{16,128}$", strict=True)]
MFA_SERIAL = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_+=/:,.@-]{9,256}$", strict=True)]
ADFS_URL = Annotated[
    str, StringConstraints(min_length=9, max_length=2048, strict=True), AfterValidator(url_text)
]
USERNAME = Annotated[str, StringConstraints(min_length=1, max_length=256, strict=True)]


class AccessKeysIn(Strict):
    access_key_id: ACCESS_KEY_ID
    secret_access_key: SecretStr
    session_token: SecretStr | None = None
    mfa_serial: MFA_SERIAL | None = None
    mfa_code: SecretStr | None = None

    @model_validator(mode="after")
    def _shapes(self) -> Self:
        secret = self.secret_access_key.get_secret_value()
        if not 16 <= len(secret) <= 128:
            raise ValueError("secret_access_key must be 16 to 128 characters")
        if self.session_token is not None and not 16 <= len(self.session_token.get_secret_value()) <= 8192:
            raise ValueError("session_token must be 16 to 8192 characters")
        if (self.mfa_serial is None) != (self.mfa_code is None):
            raise ValueError("mfa_serial and mfa_code go together")
        if self.mfa_code is not None and not self.mfa_code.get_secret_value().isdigit():
            raise ValueError("mfa_code must be the 6 digits the MFA device shows")
        if self.mfa_code is not None and len(self.mfa_code.get_secret_value()) != 6:
            raise ValueError("mfa_code must be the 6 digits the MFA device shows")
        return self

    def keys(self) -> AccessKeys:
        return AccessKeys(
            self.access_key_id,
            self.secret_access_key.get_secret_value(),
            self.session_token.get_secret_value() if self.session_token else None,
            self.mfa_serial,
            self.mfa_code.get_secret_value() if self.mfa_code else None,
        )


class AdfsSignIn(Strict):
    adfs_url: ADFS_URL
    username: USERNAME
    password: SecretStr

    @field_validator("adfs_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.lower().startswith("https://"):
            raise ValueError("adfs_url must start with https://")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        if not 1 <= len(value.get_secret_value()) <= 1024:
            raise ValueError("password must be 1 to 1024 characters")
        return value

    def login(self, role_arn: str | None = None) -> AdfsLogin:
        return AdfsLogin(self.adfs_url, self.username, self.password.get_secret_value(), role_arn)


class AdfsRoleSignIn(AdfsSignIn):
    role_arn: Annotated[str, StringConstraints(max_length=2048, strict=True)]

    @field_validator("role_arn")
    @classmethod
    def _role(cls, value: str) -> str:
        if not ROLE_ARN_PATTERN.match(value):
            raise ValueError("role_arn must look like arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME")
        return value


class SignInBody(Strict):
    """Exactly one sign-in: access keys, or an ADFS sign-in with the role picked from Fetch Roles."""

    access_keys: AccessKeysIn | None = None
    adfs: AdfsRoleSignIn | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.access_keys is None) == (self.adfs is None):
            raise ValueError("send exactly one of access_keys and adfs")
        return self

    def credentials(self) -> AccessKeys | AdfsLogin:
        if self.access_keys is not None:
            return self.access_keys.keys()
        assert self.adfs is not None
        return self.adfs.login(self.adfs.role_arn)


class CredentialsTest(SignInBody):
    target_id: TARGET_ID | None = None  # the account the credentials must act in
