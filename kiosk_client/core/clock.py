"""Time as the central sees it: the kiosk's clock may drift, the appointments are in central time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class CentralClock:
    """The local clock corrected by the offset observed in the central's `Date` headers.

    `Date` has a one-second resolution, so offsets under a second are noise and are not applied.
    """

    SIGNIFICANT = timedelta(seconds=1.5)

    def __init__(self, local: Clock) -> None:
        self._local = local
        self.offset = timedelta(0)

    def observe(self, date_header: str | None, sent_at: datetime, received_at: datetime) -> None:
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            return
        if server.tzinfo is None:
            return
        # The header truncates to the second: the server's real time was on average half a second later.
        server += timedelta(milliseconds=500)
        midpoint = sent_at + (received_at - sent_at) / 2
        offset = server - midpoint
        self.offset = offset if abs(offset) >= self.SIGNIFICANT else timedelta(0)

    def now(self) -> datetime:
        return self._local.now() + self.offset

    def local_now(self) -> datetime:
        return self._local.now()

    def monotonic(self) -> float:
        return self._local.monotonic()
