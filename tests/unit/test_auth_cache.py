"""AuthService remembers a valid token for a while, never an unknown one (no I/O: an in-memory store)."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Unauthenticated
from chalicelib.service.auth import TOKEN_CACHE_SECONDS, TOKEN_CACHE_SIZE, AuthService


class CountingTokens:
    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.reads = 0

    def tenant_for_token_hash(self, token_sha256: str) -> str | None:
        self.reads += 1
        return self.items.get(token_sha256)

    def put_token(self, token_sha256: str, tenant_id: str, label: str) -> None:
        self.items[token_sha256] = tenant_id


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_valid_token_costs_one_read_until_it_expires_from_memory() -> None:
    store, clock = CountingTokens(), Clock()
    auth = AuthService(store, clock)
    token = auth.issue("tenant-a", "test")
    for _ in range(5):
        assert auth.tenant_for(f"Bearer {token}") == "tenant-a"
    assert store.reads == 1
    store.items.clear()  # revoked in the table: still good in this warm process...
    clock.now += TOKEN_CACHE_SECONDS - 1
    assert auth.tenant_for(f"Bearer {token}") == "tenant-a"
    clock.now += 2  # ...until its entry expires
    with pytest.raises(Unauthenticated):
        auth.tenant_for(f"Bearer {token}")
    assert store.reads == 2


def test_an_unknown_token_is_read_every_time_and_the_memory_is_bounded() -> None:
    store, clock = CountingTokens(), Clock()
    auth = AuthService(store, clock)
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            auth.tenant_for("Bearer nxs_guess")
    assert store.reads == 3
    tokens = [auth.issue(f"t{n}", "test") for n in range(TOKEN_CACHE_SIZE + 1)]
    for token in tokens:
        auth.tenant_for(f"Bearer {token}")
    reads = store.reads
    auth.tenant_for(f"Bearer {tokens[0]}")  # the oldest was dropped to stay within the bound
    auth.tenant_for(f"Bearer {tokens[-1]}")
    assert store.reads == reads + 1
