"""Redeploy claims in DynamoDB (``AutomationDynamoStore``), on a moto table with a clock of the test's:
a claim held comes back with its time once it is older than its lease, and is taken over only by the
first put that names that time, whether the claim was written to the millisecond or, by the code
before, in whole seconds."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest

from chalicelib.adapters.automation_store import AutomationDynamoStore
from chalicelib.adapters.dynamodb import TTL_ATTRIBUTE
from chalicelib.service.event_ports import RevisionClaim
from tests.support.dynamodb import pk_sk_table

LEASE = 45
TTL = 7 * 24 * 3600


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table() -> Iterator[Any]:
    with pk_sk_table("claims"):
        yield boto3.resource("dynamodb", region_name="us-east-1").Table("claims")


def test_a_claim_is_a_duplicate_within_its_lease_and_stale_after_it(table: Any) -> None:
    clock = Clock(1_000.0)
    store = AutomationDynamoStore(table, clock)
    assert store.claim_revision("dep-1", "rev", TTL, "test", LEASE) == RevisionClaim(True)
    clock.now = 1_044.9
    assert store.claim_revision("dep-1", "rev", TTL, "test", LEASE) == RevisionClaim(False, None)
    clock.now = 1_045.0
    assert store.claim_revision("dep-1", "rev", TTL, "test", LEASE) == RevisionClaim(False, 1_000.0)
    assert store.claim_revision("dep-2", "rev", TTL, "test", LEASE) == RevisionClaim(True)  # its own


def test_only_the_first_take_over_of_a_stale_claim_wins(table: Any) -> None:
    clock = Clock(2_000.7849)
    store = AutomationDynamoStore(table, clock)
    assert store.claim_revision("dep-1", "rev", TTL, "test", LEASE).taken
    clock.now = 2_100.0
    stale = store.claim_revision("dep-1", "rev", TTL, "test", LEASE).stale_since
    assert stale == 2_000.784  # to the millisecond below
    assert store.take_over_revision("dep-1", "rev", stale, TTL, "retry")
    assert not store.take_over_revision("dep-1", "rev", stale, TTL, "another retry")
    held = table.get_item(Key={"pk": "REDEPLOY#dep-1", "sk": "REV#rev"})["Item"]
    assert (held["claimed_at"], held["origin"]) == (Decimal("2100"), "retry")
    # The new claim is live again: within its lease, a duplicate.
    assert store.claim_revision("dep-1", "rev", TTL, "test", LEASE) == RevisionClaim(False, None)


def test_a_claim_written_in_whole_seconds_by_the_code_before_can_be_taken_over(table: Any) -> None:
    table.put_item(
        Item={
            "pk": "REDEPLOY#dep-1",
            "sk": "REV#rev",
            "kind": "redeploy-claim",
            "origin": "old",
            "claimed_at": 3_000,
            TTL_ATTRIBUTE: 3_000 + TTL,
        }
    )
    store = AutomationDynamoStore(table, Clock(3_100.0))
    claim = store.claim_revision("dep-1", "rev", TTL, "test", LEASE)
    assert claim == RevisionClaim(False, 3_000.0)
    assert claim.stale_since is not None
    assert store.take_over_revision("dep-1", "rev", claim.stale_since, TTL, "retry")
