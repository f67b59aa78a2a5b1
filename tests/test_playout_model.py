"""The playout delay (core/playout.py) on made-up arrivals: near nothing on a clean link, a round trip
and a margin while retransmissions keep happening, a slow way back once they stop."""

from __future__ import annotations

import itertools
import random

import pytest

from kiosk_client.core.playout import ArrivalBase, PlayoutDelay, PlayoutPolicy, PlayoutSchedule

FPS = 20
POLICY = PlayoutPolicy()


def run_video(
    schedule: PlayoutSchedule,
    seconds: float,
    start: float = 0.0,
    *,
    transit: float = 0.3,
    jitter: float = 0.0,
    held: dict[int, float] | None = None,
    seed: int = 1,
) -> list[tuple[float, float]]:
    """Frames captured every 1/FPS s from `start`, each arriving `transit` (+ uniform jitter) later, or
    held until `held[i]` (a frame stuck behind a lost packet, and the ones after it in order):
    [(arrival, due)]."""
    rng = random.Random(seed)
    out = []
    last = -1.0
    for i in range(int(seconds * FPS)):
        media = start + i / FPS
        arrival = media + transit + rng.uniform(0, jitter)
        if held is not None and i in held:
            arrival = max(arrival, held[i])
        arrival = max(arrival, last)  # decoded in order
        last = arrival
        out.append((arrival, schedule.due("video", arrival, media)))
    return out


def freezes(shown: list[float], longer_than: float = 0.2) -> int:
    return sum(1 for a, b in itertools.pairwise(shown) if b - a > longer_than)


def losses(start_frame: int, frames: int, every: int, retransmit_s: float) -> dict[int, float]:
    """Every `every`-th frame loses a packet: it and the frames captured until its retransmission
    arrives come with it, `retransmit_s` after the frame would have arrived."""
    held: dict[int, float] = {}
    for lost in range(start_frame, frames, every):
        release = (lost / FPS) + 0.3 + retransmit_s
        for i in range(lost, frames):
            if i / FPS + 0.3 >= release:
                break
            held[i] = max(held.get(i, 0.0), release)
    return held


def test_arrival_base_is_the_quickest_recent_transit_and_excess_the_rest() -> None:
    base = ArrivalBase(window_s=5.0, reset_after_s=10.0)
    assert base.observe(10.0, 0.0) == 0.0
    assert base.observe(10.15, 0.1) == pytest.approx(0.05)  # 50 ms later than the first
    assert base.observe(10.15, 0.2) == 0.0  # a quicker one: the new base
    assert base.base == pytest.approx(9.95)
    # The quickest sample leaves the window: the next least takes over.
    assert base.observe(16.0, 6.0) == 0.0
    assert base.base == pytest.approx(10.0)


def test_arrival_base_starts_again_when_the_media_clock_jumps() -> None:
    base = ArrivalBase(window_s=20.0, reset_after_s=10.0)
    base.observe(1.0, 0.0)
    assert base.observe(2.0, 1000.0) == 0.0  # a new sender clock: no 1000 s "excess" or base
    assert base.observe(2.05, 1000.0) == pytest.approx(0.05)


def test_a_clean_short_link_gets_only_the_render_margin() -> None:
    schedule = PlayoutSchedule()
    frames = run_video(schedule, 20, transit=0.001, jitter=0.004)
    delays = [due - arrival for arrival, due in frames]
    assert max(delays) < 0.02
    assert schedule.delay.target_s(frames[-1][0]) < 0.02
    assert schedule.late_frames == 0


def test_link_jitter_is_held_by_its_high_quantile() -> None:
    schedule = PlayoutSchedule()
    frames = run_video(schedule, 20, transit=0.04, jitter=0.06)
    now = frames[-1][0]
    assert 0.05 < schedule.delay.target_s(now) < 0.08
    shown = [due for _, due in frames[10 * FPS :]]  # once settled
    assert freezes(shown, 0.08) == 0
    assert max(b - a for a, b in itertools.pairwise(shown)) < 0.1


def test_frames_taken_in_bursts_by_a_busy_kiosk_raise_the_delay_only_to_the_cap() -> None:
    """Every second the frames come half a second late for a while (an event loop busy with a document
    batch): without recoveries, the delay goes no higher than the spread's cap."""
    schedule = PlayoutSchedule()
    held = {i: (i // 20) * 1.0 + 0.3 + 0.5 for i in range(20 * FPS) if i % 20 < 2}
    frames = run_video(schedule, 20, held=held)
    now = frames[-1][0]
    assert schedule.delay.spread_s() == POLICY.spread_cap_s
    assert schedule.delay.target_s(now) == pytest.approx(POLICY.render_margin_s + POLICY.spread_cap_s)


def test_recoveries_on_a_long_round_trip_hold_a_round_trip_and_a_margin() -> None:
    delay = PlayoutDelay()
    delay.recoveries(0.0, 0, 0.6)
    delay.recoveries(1.0, 1, 0.6)
    assert delay.target_s(1.0) == pytest.approx(POLICY.render_margin_s)  # one recovery: a glitch
    delay.recoveries(2.0, 2, 0.6)
    assert delay.recovering(2.0)
    assert delay.target_s(2.0) == pytest.approx(0.6 + POLICY.recovery_margin_s + POLICY.render_margin_s)
    # Still held while the memory lasts, released after it.
    assert delay.recovering(2.0 + POLICY.recovery_memory_s - 1.5)
    delay.recoveries(32.5, 2, 0.6)
    assert not delay.recovering(32.5)


@pytest.mark.parametrize(("round_trip", "margin"), [(0.001, 0.03), (0.04, 0.03), (0.08, 0.04), (0.6, 0.1)])
def test_the_margin_over_the_round_trip_is_half_of_it_within_bounds(round_trip: float, margin: float) -> None:
    """A LAN or ADSL call with the odd loss is not held 100 ms more than its retransmissions need."""
    delay = PlayoutDelay()
    delay.recoveries(0.0, 0, round_trip)
    delay.recoveries(0.1, 2, round_trip)
    assert delay.target_s(0.1) == pytest.approx(POLICY.render_margin_s + round_trip + margin)


def test_the_target_is_capped() -> None:
    delay = PlayoutDelay()
    delay.recoveries(0.0, 0, 5.0)
    delay.recoveries(0.1, 5, 5.0)
    assert delay.target_s(0.1) == POLICY.max_delay_s


def test_a_late_frame_lets_the_delay_step_to_the_target_at_once_and_no_further() -> None:
    delay = PlayoutDelay()
    delay.recoveries(0.0, 0, 0.6)
    delay.recoveries(0.1, 3, 0.6)
    assert delay.late(0.1, 0.4) == pytest.approx(POLICY.render_margin_s + 0.4)
    assert delay.late(0.2, 5.0) == pytest.approx(delay.target_s(0.2))


def test_satellite_losses_freeze_the_picture_twice_then_never() -> None:
    """600 ms round trip, a packet lost every second: without a delay every loss freezes the picture
    ≈650 ms; with it, the first two (which teach the delay) and then none."""
    frames = 60 * FPS
    held = losses(start_frame=40, frames=frames, every=FPS, retransmit_s=0.65)
    plain = [arrival for arrival, _ in run_video(PlayoutSchedule(), 60, held=held)]
    assert freezes(plain) >= 55

    schedule = PlayoutSchedule()
    rng = random.Random(5)
    recovered, shown, last = 0, [], -1.0
    for i in range(frames):
        media = i / FPS
        arrival = max(held.get(i, media + 0.3 + rng.uniform(0, 0.005)), last)
        last = arrival
        if i >= 40 and (i - 40) % FPS == 0:
            recovered += 1  # the retransmission arrives just before its frame is whole
        schedule.delay.recoveries(arrival, recovered, 0.6)
        shown.append(schedule.due("video", arrival, media))
    assert freezes(shown) <= 2
    assert freezes(shown[10 * FPS :]) == 0
    late = schedule.delay.current_s
    assert 0.6 < late <= 0.6 + POLICY.recovery_margin_s + POLICY.render_margin_s + 1e-9


def test_the_delay_falls_back_slowly_once_recoveries_stop() -> None:
    delay = PlayoutDelay()
    delay.recoveries(0.0, 0, 0.6)
    delay.recoveries(0.5, 5, 0.6)
    delay.late(0.5, 1.0)
    high = delay.current_s
    assert high > 0.7
    for t in range(1, 31):  # recoveries still remembered: held
        delay.recoveries(0.5 + t, 5, 0.6)
        assert delay.advance(0.5 + t) == pytest.approx(high)
    falls = []
    for t in range(31, 90):
        delay.recoveries(0.5 + t, 5, 0.6)
        falls.append(delay.advance(0.5 + t))
    assert all(b <= a for a, b in itertools.pairwise(falls))
    # No faster than the policy's rate (a few percent of speed-up), and back to the margin in the end.
    assert falls[0] >= high - 2 * POLICY.fall_per_s
    assert falls[-1] == pytest.approx(POLICY.render_margin_s)


def test_the_delay_rises_gently_without_late_frames() -> None:
    delay = PlayoutDelay()
    delay.advance(0.0)
    delay.recoveries(0.0, 0, 0.5)
    delay.recoveries(0.0, 2, 0.5)
    assert delay.advance(1.0) == pytest.approx(POLICY.render_margin_s + POLICY.rise_per_s)


def test_audio_follows_the_delay_the_video_sets_and_does_not_teach_it() -> None:
    schedule = PlayoutSchedule()
    schedule.delay.recoveries(0.0, 0, 0.6)
    schedule.delay.recoveries(0.0, 3, 0.6)
    schedule.due("video", 1.0, 0.0)
    schedule.due("video", 1.75, 0.05)  # held behind a lost packet: late, the delay steps
    current = schedule.delay.current_s
    assert current > 0.6
    # The voice on its own media clock: due at its own quickest transit plus the same delay.
    assert schedule.due("audio", 1.0, 500.0) == pytest.approx(1.0 + current)
    assert schedule.due("audio", 1.9, 500.02) == pytest.approx(1.9)  # late voice: at once...
    # ...and it does not step the delay (which only rose at its gentle rate meanwhile).
    assert schedule.delay.current_s <= current + 0.15 * POLICY.rise_per_s + 1e-9
    assert schedule.late_frames == 1
