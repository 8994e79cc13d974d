"""Page tokens: one opaque format for every listing the API pages, read from DynamoDB or from memory.

A token is the key (``pk``, ``sk``) of the last item a page returned, as base64url JSON. A listing
accepts only a token whose ``pk`` is its own, so a token from one listing (or tenant) cannot page
another; a client treats it as opaque. It lives in the domain, not in the DynamoDB adapter, because a
rollout's items are paged in memory (their counts need every item anyway) with the same tokens.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from chalicelib.domain.errors import InvalidRequest

__all__ = ["decode_token", "encode_token"]


def encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def decode_token(token: str, pk: str, sk_prefix: str = "") -> dict[str, Any]:
    """The key in ``token``; a 400 ``INVALID_NEXT_TOKEN`` if it is not one, or not of ``pk`` and of a
    sort key starting with ``sk_prefix`` (the listing's items)."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, RecursionError) as error:  # RecursionError: absurd nesting
        raise InvalidRequest(
            "next_token is not a token this API issued.", code="INVALID_NEXT_TOKEN"
        ) from error
    if (
        not isinstance(key, dict)
        or key.get("pk") != pk
        or not isinstance(key.get("sk"), str)
        or not key["sk"].startswith(sk_prefix)
    ):
        raise InvalidRequest("next_token does not belong to this listing.", code="INVALID_NEXT_TOKEN")
    return {"pk": key["pk"], "sk": key["sk"]}
