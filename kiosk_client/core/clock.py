"""Time as the central sees it: the kiosk's clock may drift, the appointments are in central time."""

from __future__ import annotations

import time
from collections import deque
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

    Only quick answers count: `Date` is stamped when the central answers, so a long-poll's (or a slow
    link's) says little about when the request was sent; the kiosk's clock once jumped by up to 10 s
    from the 20 s call long-poll. The offset is the median of the last samples; `Date` has a one-second
    resolution, so offsets under SIGNIFICANT are noise and are not applied. The first offset, and any
    error over STEP_ABOVE (the kiosk's clock is simply wrong), are applied at once; smaller corrections
    are slewed at SLEW seconds per second, so that the time shown and every countdown move smoothly and
    `now()` never goes backwards.
    """

    SIGNIFICANT = timedelta(seconds=1.5)
    MAX_ROUND_TRIP = timedelta(seconds=2)
    STEP_ABOVE = timedelta(seconds=60)
    SLEW = 0.1
    SAMPLES = 5

    def __init__(self, local: Clock) -> None:
        self._local = local
        self.offset = timedelta(0)  # the target: what the central's clock says, smoothed
        self._samples: deque[timedelta] = deque(maxlen=self.SAMPLES)
        self._applied = timedelta(0)  # what now() adds, moving towards the target
        self._applied_at = local.monotonic()
        self._last: datetime | None = None

    def observe(self, date_header: str | None, sent_at: datetime, received_at: datetime) -> None:
        if not date_header or received_at - sent_at > self.MAX_ROUND_TRIP:
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
        self._samples.append(server - midpoint)
        target = sorted(self._samples)[len(self._samples) // 2]
        self.offset = target if abs(target) >= self.SIGNIFICANT else timedelta(0)
        self._slew()
        if len(self._samples) == 1 or abs(self.offset - self._applied) > self.STEP_ABOVE:
            self._applied = self.offset

    def _slew(self) -> None:
        now = self._local.monotonic()
        step = timedelta(seconds=max(0.0, now - self._applied_at) * self.SLEW)
        self._applied_at = now
        gap = self.offset - self._applied
        self._applied = (
            self.offset if abs(gap) <= step else self._applied + (step if gap > timedelta(0) else -step)
        )

    def applied_offset(self) -> timedelta:
        """What now() adds to the local clock at this moment (the offset, or on its way to it)."""
        self._slew()
        return self._applied

    def now(self) -> datetime:
        current = self._local.now() + self.applied_offset()
        if self._last is not None and current < self._last:
            current = self._last  # the local clock stepped back: time stands still instead
        self._last = current
        return current

    def local_now(self) -> datetime:
        return self._local.now()

    def monotonic(self) -> float:
        return self._local.monotonic()
