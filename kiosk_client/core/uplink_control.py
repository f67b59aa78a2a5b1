"""One estimate of the kiosk's uplink, shared by everything the call sends, and how it is shared.

aiortc leaves each video sender to obey the clerk's REMB alone (never below 250 kbit/s, the whole
estimate applied to both video senders at once), and the documents channel runs its own SCTP
congestion control beside them: on an 800 kbit/s ADSL uplink the queue filled (RTT p95 272-435 ms
against 66 ms for Chromium) and the clerk saw the citizen freeze ten times a minute
(FIELD-NETWORKS.md). Here one sender-side estimate is made from what the clerk's side reports
(RTCP receiver reports: loss and round trip; REMB when the browser sends one), and it is divided by
priority: the citizen's voice first, then the form view while the clerk is working on it, then the
camera (stepping its picture down rather than freezing), then the documents.

Loss-based like GCC's loss controller (RFC draft-ietf-rmcat-gcc): below 2 % loss the estimate grows,
above 10 % it shrinks in proportion. Delay-based in the simplest form that keeps a short queue: when
the round trip grows beyond 1.5 times the least one seen lately, the estimate shrinks at once, since
a growing round trip on a thin uplink is our own queue.

Pure: no clock, no library; the adapter feeds it reports and applies the allocation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

Stream = Literal["audio", "camera", "form"]

START_BPS = 600_000  # a cautious start: an ADSL uplink is 800 kbit/s
MIN_ESTIMATE_BPS = 80_000  # voice and a postage-stamp picture
MAX_ESTIMATE_BPS = 6_000_000
AUDIO_BPS = 48_000  # Opus at 32 kbit/s and its RTP/SRTP/UDP overhead
CAMERA_MAX_BPS = 900_000
CAMERA_FLOOR_BPS = 50_000
FORM_MAX_BPS = 600_000
FORM_FLOOR_BPS = 120_000  # the clerk reads the page: below this, text smears
DOCUMENTS_FLOOR_BPS = 16_000  # a paper never stops moving altogether
INCREASE_PER_S = 0.08
NEAR_CONGESTION_INCREASE_PER_S = 0.02  # close to where the queue grew last time: probe gently
RTT_WINDOW_S = 60.0  # long enough that a standing queue is not taken for the path's own delay
# The goal is a round trip under load at most 1.5 times the idle one: act well before it.
QUEUE_FACTOR = 1.25
QUEUE_SLACK_S = 0.010  # jitter of the path itself is not a queue
DELAY_DECREASE = 0.85
DECREASE_HOLD_S = 0.5  # after a cut, wait for the reports to show its effect before cutting again


@dataclass(frozen=True, slots=True)
class CameraStep:
    """What the camera sends for a budget: fewer pixels and frames rather than a frozen picture."""

    min_bps: int
    scale: float  # of the camera's own resolution (640×480 on most kiosks)
    fps: int


CAMERA_STEPS = (
    CameraStep(450_000, 1.0, 20),
    CameraStep(250_000, 1.0, 15),
    CameraStep(140_000, 0.5, 15),
    CameraStep(0, 0.5, 10),
)


@dataclass(frozen=True, slots=True)
class Allocation:
    estimate_bps: int
    audio_bps: int
    form_bps: int  # 0 when no one is working on the form
    camera_bps: int
    camera: CameraStep
    documents_bps: int  # 0 when nothing is waiting to be sent


class UplinkController:
    def __init__(self, start_bps: int = START_BPS) -> None:
        self.estimate = float(start_bps)
        self._rtts: deque[tuple[float, float]] = deque()  # (when, rtt)
        self._last_update: float | None = None
        self._last_decrease = -1e9
        self._remb: tuple[float, float] | None = None  # (when, bps)
        self._congested_at: float | None = None  # the estimate when the queue last grew
        self.form_active = False
        self.documents_waiting = False
        self.decreases = {"loss": 0, "delay": 0, "remb": 0}

    # ---- what the clerk's side reports

    def on_report(self, now: float, fraction_lost: float, rtt_s: float | None) -> None:
        """One RTCP receiver report (of any of our streams): the loss since the last one, the round trip."""
        elapsed = 0.0 if self._last_update is None else max(0.0, now - self._last_update)
        self._last_update = now
        loss = min(max(fraction_lost, 0.0), 1.0)
        if rtt_s is not None and rtt_s > 0:
            self._rtts.append((now, rtt_s))
            while self._rtts and self._rtts[0][0] < now - RTT_WINDOW_S:
                self._rtts.popleft()
        if self._queue_growing(rtt_s) and now - self._last_decrease >= DECREASE_HOLD_S:
            self._congested_at = self.estimate
            self.estimate *= DELAY_DECREASE
            self._last_decrease = now
            self.decreases["delay"] += 1
        elif loss > 0.10 and now - self._last_decrease >= DECREASE_HOLD_S:
            self.estimate *= 1 - 0.5 * loss
            self._last_decrease = now
            self.decreases["loss"] += 1
        elif loss < 0.02 and not self._queue_growing(rtt_s):
            near = self._congested_at is not None and self.estimate >= 0.85 * self._congested_at
            rate = NEAR_CONGESTION_INCREASE_PER_S if near else INCREASE_PER_S
            self.estimate *= (1 + rate) ** min(elapsed, 2.0)
        self._bound(now)

    def on_remb(self, now: float, bps: int) -> None:
        """The browser's own receive-side estimate: a ceiling, never a floor."""
        self._remb = (now, float(bps))
        if self.estimate > bps:
            self.decreases["remb"] += 1
        self._bound(now)

    def _queue_growing(self, rtt_s: float | None) -> bool:
        if rtt_s is None or len(self._rtts) < 3:
            return False
        least = min(rtt for _, rtt in self._rtts)
        return rtt_s > least * QUEUE_FACTOR + QUEUE_SLACK_S

    def _bound(self, now: float) -> None:
        ceiling = float(MAX_ESTIMATE_BPS)
        if self._remb is not None and now - self._remb[0] < 5.0:
            ceiling = min(ceiling, self._remb[1])
        self.estimate = min(max(self.estimate, MIN_ESTIMATE_BPS), max(ceiling, MIN_ESTIMATE_BPS))

    def least_rtt(self) -> float | None:
        return min((rtt for _, rtt in self._rtts), default=None)

    # ---- how it is shared

    def allocation(self) -> Allocation:
        left = max(0, int(self.estimate) - AUDIO_BPS)
        form = 0
        if self.form_active:
            # The clerk is typing into the page and reading it back: it comes before the citizen's
            # face, but the face never goes entirely.
            form = min(FORM_MAX_BPS, max(FORM_FLOOR_BPS, int(left * 0.45)))
            form = min(form, max(0, left - CAMERA_FLOOR_BPS))
            left -= form
        camera_cap = CAMERA_MAX_BPS
        if self.documents_waiting:
            # Before the documents in priority, but not all of it: a paper on an 800 kbit/s uplink
            # would otherwise wait for the call to end.
            camera_cap = min(camera_cap, max(CAMERA_FLOOR_BPS, int(left * 0.45)))
        camera = min(
            camera_cap, max(CAMERA_FLOOR_BPS, left - (DOCUMENTS_FLOOR_BPS if self.documents_waiting else 0))
        )
        left = max(0, left - camera)
        documents = max(DOCUMENTS_FLOOR_BPS, left) if self.documents_waiting else 0
        step = next(s for s in CAMERA_STEPS if camera >= s.min_bps)
        return Allocation(int(self.estimate), AUDIO_BPS, form, camera, step, documents)
