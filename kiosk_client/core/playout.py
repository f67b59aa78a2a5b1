"""When to show each frame of the clerk's picture and voice: a playout delay that adapts as a browser's
jitter buffer does.

aiortc hands a video frame to the decoder as soon as it is whole and shows it at once. One lost packet
holds every later frame until its retransmission comes back, a round trip after the NACK: on a
satellite link (600 ms) that is a freeze each time, 24-36 a minute where Chromium showed ≈1.5. A
browser instead shows each frame at its estimated capture time plus a target delay (libwebrtc's
`VCMTiming`, `JitterEstimator::GetJitterEstimate`): the spread of frame transit times, 10 ms for the
machine, and — once frames needed retransmissions — the round trip. Retransmissions then arrive
before their frame is due, and the picture moves on evenly, a little later.

The same here, in three parts:
- `ArrivalBase`, one per stream: maps a frame's media time (its RTP timestamp) to the local clock by
  the quickest transit seen lately; a frame's *excess* is how much later than that it came.
- `PlayoutDelay`, shared by the clerk's picture and voice so lips stay in sync: the target is
  a render margin + the larger of the video's recent transit spread (a high quantile of excess) and,
  while loss recoveries keep happening, the round trip + a margin (half the round trip, 30-100 ms). The applied delay
  follows the target gently (a picture that slows or speeds up a few percent looks the same), except
  that a frame which comes late anyway lets the delay jump by its lateness: the freeze the viewer
  sees then is the one that would have happened without the buffer, and after it the next ones are
  absorbed. It falls back slowly once no recovery was needed for a while (`recovery_memory_s`;
  libwebrtc forgets its NACK count after 60 s without one).
- `PlayoutSchedule`: the due time (local clock) of each frame of each stream.

Why max() and not libwebrtc's sum: libwebrtc leaves frames delayed by a retransmission out of its
jitter estimate, which needs per-frame knowledge this side does not have; here they are in the spread,
and a sum would count the round trip twice.

On a short clean link (loopback, a LAN) the spread is a few milliseconds and there are no recoveries:
the delay stays at a few tens of ms at most.

Pure: times are given by the caller (seconds, one monotonic clock).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Stream = Literal["video", "audio"]


@dataclass(frozen=True)
class PlayoutPolicy:
    render_margin_s: float = 0.010  # libwebrtc's kOperatingSystemJitter
    spread_quantile: float = 0.95
    spread_window_s: float = 10.0
    # A kiosk whose CPU is saturated (a document batch in pure-Python SCTP) takes frames in bursts: that
    # "spread" reached 0.45-0.5 s on the ADSL and 4G benches, and holding the clerk's voice that much
    # longer buys little. Retransmissions are covered by the round-trip term, not this one.
    spread_cap_s: float = 0.25
    # Beyond the round trip, for a retransmission: the gap is seen only when the next packet comes (a
    # frame later if the frame's last one was lost), the far end turns the NACK round, the round trip
    # varies. Half the round trip, within these bounds: a LAN or ADSL call is not held 100 ms more.
    recovery_margin_s: float = 0.10
    recovery_margin_min_s: float = 0.03
    recoveries_to_hold: int = 2  # one recovery in a while costs one glitch; a habit of them, a delay
    recovery_memory_s: float = 30.0
    max_delay_s: float = 2.0
    rise_per_s: float = 0.10  # libwebrtc's kDelayMaxChangeMsPerS, when no late frame shows the way
    fall_per_s: float = 0.02  # slowly: the voice sheds the delay by skipping quiet frames
    base_window_s: float = 20.0  # the quickest transit over this long: clock drift and route changes
    reset_after_s: float = 10.0  # a media clock this far off the last one: the sender started again


DEFAULT_POLICY = PlayoutPolicy()


class ArrivalBase:
    """One stream's map from media time to the local clock: arrival = media time + base, where the base
    is the least transit (arrival - media time) over the window. Includes the sender's clock offset,
    which is fine: only differences matter."""

    def __init__(self, window_s: float, reset_after_s: float) -> None:
        self._window_s = window_s
        self._reset_after_s = reset_after_s
        # Increasing transits: the head is the window's least, later ones take over when it expires.
        self._minima: deque[tuple[float, float]] = deque()
        self._last_transit: float | None = None

    @property
    def base(self) -> float | None:
        return self._minima[0][1] if self._minima else None

    def observe(self, arrival: float, media_s: float) -> float:
        """Records a frame; its excess (≥ 0) over the quickest recent transit."""
        transit = arrival - media_s
        if self._last_transit is not None and abs(transit - self._last_transit) > self._reset_after_s:
            self._minima.clear()
        self._last_transit = transit
        while self._minima and self._minima[-1][1] >= transit:
            self._minima.pop()
        self._minima.append((arrival, transit))
        while self._minima[0][0] < arrival - self._window_s:
            self._minima.popleft()
        return transit - self._minima[0][1]


@dataclass
class PlayoutDelay:
    """The delay target and the delay applied, shared by the streams of one call."""

    policy: PlayoutPolicy = DEFAULT_POLICY
    current_s: float = field(init=False)
    round_trip_s: float | None = None
    _excess: deque[tuple[float, float]] = field(default_factory=deque, init=False)
    _recoveries: deque[float] = field(default_factory=deque, init=False)
    _recovered_total: int | None = field(default=None, init=False)
    _updated_at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.current_s = self.policy.render_margin_s

    def frame(self, now: float, excess_s: float) -> None:
        """A video frame arrived `excess_s` later than the quickest transit."""
        self._excess.append((now, excess_s))
        while self._excess and self._excess[0][0] < now - self.policy.spread_window_s:
            self._excess.popleft()

    def recoveries(self, now: float, recovered_total: int, round_trip_s: float) -> None:
        """The receiver's running count of packets recovered (by NACK) and the round trip now."""
        self.round_trip_s = round_trip_s
        if self._recovered_total is not None and recovered_total > self._recovered_total:
            self._recoveries.extend([now] * min(recovered_total - self._recovered_total, 100))
        self._recovered_total = recovered_total
        while self._recoveries and self._recoveries[0] < now - self.policy.recovery_memory_s:
            self._recoveries.popleft()

    def spread_s(self) -> float:
        if not self._excess:
            return 0.0
        ordered = sorted(excess for _, excess in self._excess)
        index = min(len(ordered) - 1, math.ceil(self.policy.spread_quantile * len(ordered)) - 1)
        return min(ordered[max(0, index)], self.policy.spread_cap_s)

    def recovering(self, now: float) -> bool:
        recent = [at for at in self._recoveries if at >= now - self.policy.recovery_memory_s]
        return len(recent) >= self.policy.recoveries_to_hold

    def target_s(self, now: float) -> float:
        p = self.policy
        hold = self.spread_s()
        if self.recovering(now) and self.round_trip_s is not None:
            margin = min(p.recovery_margin_s, max(p.recovery_margin_min_s, self.round_trip_s / 2))
            hold = max(hold, self.round_trip_s + margin)
        return min(p.render_margin_s + hold, p.max_delay_s)

    def advance(self, now: float) -> float:
        """The delay to apply now, moved towards the target at the policy's rates since last time."""
        elapsed = 0.0 if self._updated_at is None else max(0.0, now - self._updated_at)
        self._updated_at = now
        target = self.target_s(now)
        if target > self.current_s:
            self.current_s = min(target, self.current_s + self.policy.rise_per_s * elapsed)
        else:
            self.current_s = max(target, self.current_s - self.policy.fall_per_s * elapsed)
        return self.current_s

    def late(self, now: float, lateness_s: float) -> float:
        """A frame came `lateness_s` after it was due: it is shown now, a freeze the viewer sees anyway.
        Up to the target, the delay takes that step at once, so the frames after it are not late too."""
        target = self.target_s(now)
        if target > self.current_s:
            self.current_s = min(target, self.current_s + lateness_s)
        return self.current_s


class PlayoutSchedule:
    """Due times of the frames of one call's received streams (local clock, seconds)."""

    def __init__(self, policy: PlayoutPolicy = DEFAULT_POLICY) -> None:
        self.delay = PlayoutDelay(policy)
        self._bases = {
            stream: ArrivalBase(policy.base_window_s, policy.reset_after_s) for stream in ("video", "audio")
        }
        self.late_frames = 0  # video frames that came after they were due (shown at once)
        self.last_excess_s = 0.0  # of the latest frame (diagnostics)

    def due(self, stream: Stream, arrival: float, media_s: float) -> float:
        """When to show a frame of `stream` that arrived (was decoded) at `arrival`, captured at
        `media_s` on the sender's media clock. Video frames teach the delay; audio follows it."""
        excess = self.last_excess_s = self._bases[stream].observe(arrival, media_s)
        if stream == "video":
            self.delay.frame(arrival, excess)
        delay = self.delay.advance(arrival)
        due = arrival - excess + delay
        if due < arrival and stream == "video":
            self.late_frames += 1
            delay = self.delay.late(arrival, arrival - due)
            due = arrival - excess + delay
        return max(due, arrival)
