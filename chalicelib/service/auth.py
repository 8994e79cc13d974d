"""Bearer tokens to tenants. Only a token's SHA-256 is ever stored, never the token."""

from __future__ import annotations

import hashlib
import secrets

from chalicelib.domain.errors import Unauthenticated
from chalicelib.service.ports import TokenStore


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "nxs_" + secrets.token_urlsafe(32)


class AuthService:
    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens

    def tenant_for(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthenticated("The request has no Authorization header.", code="MISSING_TOKEN")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("The Authorization header is not 'Bearer <token>'.", code="INVALID_TOKEN")
        tenant = self._tokens.tenant_for_token_hash(token_hash(token))
        if tenant is None:
            raise Unauthenticated("The token is not valid.", code="INVALID_TOKEN")
        return tenant

    def issue(self, tenant_id: str, label: str, token: str | None = None) -> str:
        """Create a token for a tenant (operators, local mode). Returns the token: show it once."""
        token = token or new_token()
        self._tokens.put_token(token_hash(token), tenant_id, label)
        return token
