"""Bearer tokens to tenants. Only a token's SHA-256 is ever stored, never the token.

A token known to be valid is remembered for ``TOKEN_CACHE_SECONDS`` by the process that checked it
(its hash and tenant, in memory; a bounded number of them), so a burst of requests with one token costs
one DynamoDB read, not one each. The price: a token deleted from the table keeps working in a warm
process for up to that long. An unknown token is never remembered, so a guess costs a read every time.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from chalicelib.domain.errors import Unauthenticated
from chalicelib.service.ports import TokenStore


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "nxs_" + secrets.token_urlsafe(32)


TOKEN_CACHE_SECONDS = 60.0
TOKEN_CACHE_SIZE = 1024


class AuthService:
    def __init__(self, tokens: TokenStore, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens = tokens
        self._clock = clock
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()  # hash -> (tenant, valid until)
        self._lock = threading.Lock()

    def tenant_for(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthenticated("The request has no Authorization header.", code="MISSING_TOKEN")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("The Authorization header is not 'Bearer <token>'.", code="INVALID_TOKEN")
        digest = token_hash(token)
        tenant = self._remembered(digest)
        if tenant is None:
            tenant = self._tokens.tenant_for_token_hash(digest)
            if tenant is None:
                raise Unauthenticated("The token is not valid.", code="INVALID_TOKEN")
            self._remember(digest, tenant)
        return tenant

    def _remembered(self, digest: str) -> str | None:
        with self._lock:
            found = self._known.get(digest)
            if found is None or found[1] <= self._clock():
                return None
            return found[0]

    def _remember(self, digest: str, tenant: str) -> None:
        with self._lock:
            self._known[digest] = (tenant, self._clock() + TOKEN_CACHE_SECONDS)
            self._known.move_to_end(digest)
            while len(self._known) > TOKEN_CACHE_SIZE:
                self._known.popitem(last=False)

    def issue(self, tenant_id: str, label: str, token: str | None = None) -> str:
        """Create a token for a tenant (operators, local mode). Returns the token: show it once."""
        token = token or new_token()
        self._tokens.put_token(token_hash(token), tenant_id, label)
        return token
