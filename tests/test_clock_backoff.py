from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from kiosk_client.core.backoff import Backoff
from kiosk_client.core.clock import CentralClock


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value

    def monotonic(self) -> float:
        return 0.0


def test_offset_from_the_date_header() -> None:
    local = FixedClock(datetime(2026, 11, 23, 14, 0, 0, tzinfo=UTC))
    clock = CentralClock(local)
    server = datetime(2026, 11, 23, 14, 5, 0, tzinfo=UTC)  # the kiosk is 5 minutes slow
    clock.observe(format_datetime(server, usegmt=True), local.value, local.value)
    assert abs(clock.offset - timedelta(minutes=5, milliseconds=500)) < timedelta(milliseconds=1)
    assert clock.now() - local.value == clock.offset


def test_sub_second_offsets_and_junk_are_ignored() -> None:
    local = FixedClock(datetime(2026, 11, 23, 14, 0, 0, 300_000, tzinfo=UTC))
    clock = CentralClock(local)
    clock.observe(format_datetime(local.value.replace(microsecond=0), usegmt=True), local.value, local.value)
    assert clock.offset == timedelta(0)
    for junk in ("", "not a date", None):
        clock.observe(junk, local.value, local.value)
    assert clock.offset == timedelta(0)


def test_backoff_grows_with_jitter_and_caps() -> None:
    backoff = Backoff(base_s=1, cap_s=30, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(12)]
    assert all(0.5 <= d <= 30 for d in delays)
    assert max(delays[6:]) > max(delays[:2])  # grows
    assert len(set(delays)) > 6  # jittered, so kiosks don't retry in lockstep
    backoff.reset()
    assert backoff.next_delay() <= 1
