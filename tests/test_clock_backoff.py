from __future__ import annotations

import itertools
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


class SteppedClock:
    """A local clock the test moves by hand (wall time and monotonic time together)."""

    def __init__(self) -> None:
        self.value = datetime(2026, 11, 23, 14, 0, 0, tzinfo=UTC)
        self.mono = 100.0

    def now(self) -> datetime:
        return self.value

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)
        self.mono += seconds


def central_says(
    clock: CentralClock, local: SteppedClock, ahead_s: float, round_trip_s: float = 0.05
) -> None:
    sent = local.value
    server = sent + timedelta(seconds=ahead_s + round_trip_s / 2)
    clock.observe(
        format_datetime(server.replace(microsecond=0), usegmt=True),
        sent,
        sent + timedelta(seconds=round_trip_s),
    )


def test_a_long_polls_date_is_not_taken_for_the_time() -> None:
    local = SteppedClock()
    clock = CentralClock(local)
    central_says(clock, local, 0)
    central_says(clock, local, 10, round_trip_s=20)  # a 20 s long-poll: its Date says little
    assert clock.offset == timedelta(0) and clock.now() == local.value


def test_the_time_shown_never_jumps_back_nor_by_more_than_a_second() -> None:
    local = SteppedClock()
    clock = CentralClock(local)
    central_says(clock, local, 5)  # the first offset is applied at once (nothing shown yet)
    assert abs(clock.applied_offset() - timedelta(seconds=5.5)) < timedelta(seconds=0.6)
    shown = [clock.now()]
    for second in range(200):  # then the central's clock is 10 s behind the kiosk's estimate
        local.advance(1.0)
        if second % 10 == 0:
            central_says(clock, local, -5)
        shown.append(clock.now())
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(shown)]
    assert min(steps) >= 0.85 and max(steps) <= 1.15  # smooth: never back, never a jump
    assert abs(clock.applied_offset() - clock.offset) < timedelta(seconds=0.2)  # and it got there


def test_a_clock_that_is_simply_wrong_is_corrected_at_once_and_time_never_runs_back() -> None:
    local = SteppedClock()
    clock = CentralClock(local)
    central_says(clock, local, 0)
    for _ in range(3):  # the kiosk's clock was set 2 hours wrong: the median follows, then one step
        local.advance(1.0)
        central_says(clock, local, 7200)
    assert abs(clock.now() - (local.value + timedelta(hours=2))) < timedelta(seconds=2)
    before = clock.now()
    local.value -= timedelta(minutes=1)  # the local clock steps back (NTP): time stands still
    assert clock.now() >= before
