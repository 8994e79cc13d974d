"""The virtual clock (``CLOCK``) that every time-dependent part of the local STS reads.

Session expiry, the ``Expiration`` that STS returns and TOTP validation all read this one process-wide
object, so a test moves time for all of them with ``CLOCK.advance(seconds)`` and undoes it with
``CLOCK.reset()``.
"""

from __future__ import annotations

import datetime
import time


class Clock:
    """Real UTC time plus an adjustable offset in seconds (``advance``/``reset``), shared process-wide."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        """Seconds since the epoch, shifted by ``offset``."""
        return time.time() + self.offset

    def now(self) -> datetime.datetime:
        """Naive UTC datetime (moto's convention), shifted by ``offset``."""
        return datetime.datetime.fromtimestamp(self.time(), datetime.UTC).replace(tzinfo=None)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0


CLOCK = Clock()
