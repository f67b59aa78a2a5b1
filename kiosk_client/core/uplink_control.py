"""One estimate of the kiosk's uplink, shared by everything the call sends, and how it is shared.

aiortc leaves each video sender to obey the clerk's REMB alone (never below 250 kbit/s, the whole
estimate applied to both video senders at once), and the documents channel runs its own SCTP
congestion control beside them: on an 800 kbit/s ADSL uplink the queue filled (RTT p95 272-435 ms
against 66 ms for Chromium) and the clerk saw the citizen freeze ten times a minute
(FIELD-NETWORKS.md). Here one sender-side estimate is made from what the clerk's side reports
(RTCP receiver reports: loss and round trip; SCTP's SACKs: round trips; REMB when the browser sends
one: a ceiling on the pictures, except while documents go), and it is divided by
priority: the citizen's voice first, then the form view while the clerk is working on it, then the
camera (stepping its picture down rather than freezing), then the documents.

Delay-based, from raw round trips: one per SCTP SACK while documents go (many a second), one per
RTCP receiver report otherwise (about one a second per stream). The queue delay is the median of the
last 300 ms of round trips (at least 9 of them) over the path's own round trip: the 10th percentile,
over the last minute, of the medians of a second of round trips. A 4G link's delay wanders by tens of
milliseconds without any queue: measured from the least single sample, or the least of the medians,
that wander was a queue to cut, round after round (valley-4g: the documents at their floor). Above the target (a quarter of the
path's round trip and 10 ms: the issue's goal is a round trip under load at most 1.5 times the idle
one) the estimate is cut to 85 % of what went through, once: then it waits for round trips taken
after the cut, and cuts again only if the queue is not draining. Under half the target it grows:
30 %/s while documents wait (they are paced, and each SACK shows an overshoot within a round trip),
8 %/s for the pictures alone (a report a second is slow to see their queue), never beyond 1.5 (1.25)
times what was really sent. Loss-based like GCC's loss controller only above 10 % loss, holding from
5 % (random loss of a rural line is not congestion).

Pure: no clock, no library; the adapter feeds it reports and applies the allocation.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import Literal

Stream = Literal["audio", "camera", "form"]

START_BPS = 600_000  # a cautious start: an ADSL uplink is 800 kbit/s
MIN_ESTIMATE_BPS = 80_000  # voice and a postage-stamp picture
MAX_ESTIMATE_BPS = 50_000_000  # a kiosk on fibre sends its documents at SCTP's own pace
AUDIO_BPS = 48_000  # Opus at 32 kbit/s and its RTP/SRTP/UDP overhead
CAMERA_MAX_BPS = 900_000
CAMERA_FLOOR_BPS = 50_000
CAMERA_SHARE_WITH_DOCUMENTS = 0.3  # of what the voice and the form view leave, while documents go
# A long transfer (a batch of colour pages on ADSL: a minute) is one the clerk is waiting for: after
# this long the picture gives the papers more of the link (a letter is through long before).
LONG_TRANSFER_S = 8.0
CAMERA_SHARE_LONG_TRANSFER = 0.2
FORM_MAX_BPS = 600_000
FORM_FLOOR_BPS = 120_000  # the clerk reads the page: below this, text smears
# Loss (of all the streams together): above LOSS_DECREASE it is congestion (GCC's 10 %); between
# LOSS_HOLD and it, hold; below, the delay decides. GCC holds from 2 %, but a valley's 4G loses 2 %
# at random all day (FIELD-NETWORKS.md), and holding there kept the documents below the link.
LOSS_DECREASE = 0.10
LOSS_HOLD = 0.05
DOCUMENTS_FLOOR_BPS = 16_000  # a paper never stops moving altogether
INCREASE_PER_S = 0.08
DOCUMENTS_INCREASE_PER_S = 0.3  # with documents waiting and no queue, at REFERENCE_RTT_S
REFERENCE_RTT_S = 0.040
FAST_PATH_FACTOR_MAX = 10.0
NEAR_CONGESTION_INCREASE_PER_S = 0.03
RTT_WINDOW_S = 60.0  # long enough that a standing queue is not taken for the path's own delay
# The goal is a round trip under load at most 1.5 times the idle one: act well before it.
QUEUE_FACTOR = 1.25
QUEUE_SLACK_S = 0.010  # jitter of the path itself is not a queue
DELAY_DECREASE = 0.85
DEEPEST_CUT = 0.7
DECREASE_HOLD_S = 0.1  # after a cut: its round trip (the queue's and the path's), and this
PATH_PERCENTILE = 0.1
PATH_MIN_MEDIANS = 50  # before five seconds of them, the least of the medians (_least_now)
PATH_MEDIAN_S = 1.0  # the path's own round trip is a least of medians over this long (see _least_now)
NOW_SAMPLES = 9  # "now" is at least this many round trips (within STALE_S)
RECENT_S = 0.3  # the round trips that make "now": several SACKs while a document goes
STALE_S = 2.0  # older than this, a round trip says nothing of the queue now
TREND_S = 0.3  # a queue lower than this long ago is draining: no further cut
DENSE_SAMPLES = 5  # round trips in the last second: SACKs are flowing
SPARSE_FACTOR = 2.0
HOLD_BAND = 0.75  # between this share of the target and the target: neither grow nor cut
EMPTY_BAND = 0.5  # under half the target the queue is empty (a video frame's own): grow quickly
CAMERA_SLACK = 1.15
REMB_VALID_S = 5.0
STEP_UP_MARGIN = 1.3
STEP_UP_ROUNDS = 3
APP_LIMITED_FACTOR = 1.5
MEDIA_LIMITED_FACTOR = 1.25
RTT_NOISE_S = 0.002  # after a cut, wait for the reports to show its effect before cutting again


@dataclass(frozen=True, slots=True)
class CameraStep:
    """What the camera sends for a budget: fewer pixels and frames rather than a frozen picture."""

    min_bps: int
    scale: float  # of the camera's own resolution (640×480 on most kiosks)
    fps: int


CAMERA_STEPS = (
    CameraStep(200_000, 1.0, 30),  # the camera's own size and rate (the track never goes above it)
    CameraStep(120_000, 0.5, 20),
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
        self._recent: deque[tuple[float, float]] = deque()  # (when, rtt) of the last samples
        # The least round trip of the last RTT_WINDOW_S: a deque of increasing round trips, so the
        # minimum is its first item whatever the rate of samples (one per SCTP SACK).
        self._least: deque[tuple[float, float]] = deque()
        # The least over RTT_WINDOW_S of the medians of "now" (RECENT_S of round trips) at each
        # round trip, kept like _least: the path's own round trip. Not the least single round trip: a 4G
        # link's delay wanders by tens of milliseconds with no queue at all, its least sample is the
        # bottom of that wander, and the median of any moment then stood a whole wander above it: a
        # queue to cut, round after round, down to the floor (valley 4G, ±30 ms: 80 kbit/s).
        self._least_now: deque[tuple[float, float]] = deque()
        self._queues: deque[tuple[float, float]] = deque()  # (when, queue delay) at each update
        self._medians: deque[tuple[float, float]] = deque()  # (when, a second's median) at each update
        self._path: float | None = None  # PATH_PERCENTILE of those: least_rtt()
        self._last_update: float | None = None
        self._last_decrease = -1e9
        self._hold_until = -1e9
        self._remb: tuple[float, float] | None = None  # (when, bps)
        self._now = 0.0
        self._loss = 0.0
        self.sent_bps = 0.0
        self.camera_sent_bps = 0.0  # what the camera's encoder really sends (0: not known)
        self.queue_s: float | None = None  # the queue delay seen at the last update
        self._step = 0  # index in CAMERA_STEPS
        self._up_rounds = 0
        self.form_active = False
        self.documents_waiting = False
        self._documents_since: float | None = None  # when the documents began waiting
        self.decreases = {"loss": 0, "delay": 0, "remb": 0}

    # ---- what the kiosk sends, and what the clerk's side reports

    def on_sent(self, bps: float) -> None:
        """What the call really sent lately (RTP and documents). A sender that uses little of its
        estimate learns nothing about the link: the estimate never grows beyond twice what was sent
        (as GCC), so the first document does not meet an estimate of megabits that only a camera
        card's trickle ever tested."""
        self.sent_bps = bps

    def on_rtt(self, now: float, rtt_s: float) -> None:
        """One raw round trip: of an RTCP receiver report (now − LSR − DLSR) or of an SCTP SACK. Raw,
        not aiortc's 85 %-weighted average, which lagged a drained queue by seconds and kept the
        estimate falling after the queue had gone."""
        if rtt_s <= 0:
            return
        self._recent.append((now, rtt_s))
        while len(self._recent) > 3 and self._recent[0][0] < now - max(RECENT_S, PATH_MEDIAN_S):
            self._recent.popleft()
        while self._least and self._least[-1][1] >= rtt_s:
            self._least.pop()
        self._least.append((now, rtt_s))
        while self._least[0][0] < now - RTT_WINDOW_S:
            self._least.popleft()
        self._remember_now(now)

    def on_loss(self, now: float, fraction_lost: float) -> None:
        """The loss one RTCP receiver report gives for one of our streams since its last one."""
        self._loss = max(self._loss, min(max(fraction_lost, 0.0), 1.0))

    def on_report(self, now: float, fraction_lost: float, rtt_s: float | None) -> None:
        """A receiver report alone (loss and its round trip), then an update: for callers without a
        stream of round trips of their own."""
        self.on_loss(now, fraction_lost)
        if rtt_s is not None:
            self.on_rtt(now, rtt_s)
        self.update(now)

    def queue_delay(self, now: float, since: float = -1e9) -> float | None:
        """How long our packets wait in the uplink's queue now: the median of the last round trips
        over the path's own round trip (the least such median of the last minute). The median, not
        the least: the queue of a call is bursty (a video frame, a window of SCTP), and the least of
        300 ms of samples found the one moment it had drained while half the packets waited 50 ms
        or more; and not the mean: a SACK the far end delayed (up to 200 ms) is an outlier, not a
        queue."""
        current = self._current_rtt(now, since)
        path = self.least_rtt()
        if current is None or path is None:
            return None
        return max(0.0, current - path)

    def _current_rtt(self, now: float, since: float = -1e9) -> float | None:
        fresh = [rtt for when, rtt in self._recent if when >= max(now - RECENT_S, since)]
        if len(fresh) < NOW_SAMPLES:
            # A median of a few round trips is the path's jitter as much as our queue (a 4G link's
            # scatter of ±30 ms): the last NOW_SAMPLES, if they are not stale.
            last = list(self._recent)[-NOW_SAMPLES:]
            fresh = [rtt for when, rtt in last if when >= max(now - STALE_S, since)]
            if len(fresh) < 3:
                fresh = [rtt for when, rtt in last[-3:] if when >= max(now - STALE_S, since)]
        return statistics.median(fresh) if fresh else None

    def _remember_path(self, now: float) -> None:
        # A low percentile, not the least, of the seconds' medians of the last minute: the least of
        # six hundred medians is their scatter's extreme (on a 4G link, 20 ms under the path's
        # typical round trip: a queue that was not there, cut round after round).
        fresh = [rtt for when, rtt in self._recent if when >= now - PATH_MEDIAN_S]
        if len(fresh) >= 3:
            self._medians.append((now, statistics.median(fresh)))
        while self._medians and self._medians[0][0] < now - RTT_WINDOW_S:
            self._medians.popleft()
        if len(self._medians) >= PATH_MIN_MEDIANS:
            ordered = sorted(m for _, m in self._medians)
            self._path = ordered[int(len(ordered) * PATH_PERCENTILE)]
        else:
            self._path = None

    def _remember_now(self, now: float) -> None:
        fresh = [rtt for when, rtt in self._recent if when >= now - PATH_MEDIAN_S]
        current = statistics.median(fresh) if len(fresh) >= 3 else self._current_rtt(now)
        if current is None:
            return
        while self._least_now and self._least_now[-1][1] >= current:
            self._least_now.pop()
        self._least_now.append((now, current))
        while self._least_now[0][0] < now - RTT_WINDOW_S:
            self._least_now.popleft()

    def update(self, now: float) -> None:
        """The estimate from the queue now and its trend, a few times a second.

        A queue above the target means we send more than the link carries: cut below what was
        really sent, once; then wait a round trip for the cut to show, and cut again only if the
        queue is not draining (it drains at the rate of the cut: a queue of 100 ms takes ~0.7 s
        after a 15 % cut, and cutting on every sample of it took an ADSL call to its floor). In
        the band under the target: hold. Well under it: grow."""
        elapsed = 0.0 if self._last_update is None else min(max(0.0, now - self._last_update), 2.0)
        self._last_update = now
        loss, self._loss = self._loss, 0.0
        self._remember_path(now)
        queue = self.queue_delay(now)
        self.queue_s = queue
        if queue is not None:
            self._queues.append((now, queue))
            while self._queues and self._queues[0][0] < now - TREND_S - 0.5:
                self._queues.popleft()
        least = self.least_rtt() or 0.0
        target = self.target_queue()
        # Without a SACK's round trip every few packets (no document going), the round trips are the
        # RTCP reports', a few a second, each one late behind a video frame by up to 30 ms on ADSL:
        # a cut needs a queue twice the target there, or the pictures alone were cut, report after
        # report, to a postage stamp, and the next document started from that.
        sparse = sum(1 for when, _ in self._recent if when >= now - 1.0) < DENSE_SAMPLES
        cut_above = target * (SPARSE_FACTOR if sparse else 1.0)
        if queue is not None and queue > cut_above:
            # The trend from queues measured after the last cut could show (none yet: wait).
            after_cut = self._last_decrease + least
            earlier = [q for when, q in self._queues if after_cut <= when <= now - TREND_S]
            draining = self.decreases["delay"] > 0 and (not earlier or queue < earlier[-1] - RTT_NOISE_S)
            # Only round trips measured since the last cut could show it: on the sparse reports of
            # a call without documents (one a second or less), the same three old samples cut the
            # estimate again at every round, down to its floor.
            since_cut = self.queue_delay(now, since=self._last_decrease + least)
            fresh_since_cut = sum(1 for when, _ in self._recent if when >= self._last_decrease + least)
            if (
                now >= self._hold_until
                and not draining
                and fresh_since_cut >= 2
                and since_cut is not None
                and since_cut > cut_above
            ):
                # Below what actually went through: a queue means we sent more than the link carries.
                # Not below DEEPEST_CUT of the estimate, though: what was sent over the last second
                # may be low only because a document ended in it, while its queue is still there.
                sent = self.sent_bps if self.sent_bps > 0 else self.estimate
                self.estimate = max(DELAY_DECREASE * min(self.estimate, sent), DEEPEST_CUT * self.estimate)
                self._last_decrease = now
                self._hold_until = now + least + queue + DECREASE_HOLD_S
                self.decreases["delay"] += 1
        elif loss > LOSS_DECREASE and now >= self._hold_until:
            self.estimate *= 1 - 0.5 * loss
            self._last_decrease = now
            self._hold_until = now + least + DECREASE_HOLD_S
            self.decreases["loss"] += 1
        elif loss < LOSS_HOLD and self.sent_bps > 0 and (queue is None or queue <= target * HOLD_BAND):
            # (Nothing known of what was sent yet: no growth, or the start-up estimate grew past the
            # link before the first measure could hold it.)
            factor = APP_LIMITED_FACTOR
            if queue is not None and queue > target * EMPTY_BAND:
                rate = NEAR_CONGESTION_INCREASE_PER_S  # a queue is forming: probe gently
            elif self.documents_waiting:
                # An empty queue and a document to send: find the room quickly. The documents are
                # paced and every SACK is a round trip: an overshoot shows within one. (Growing
                # gently near the last cut's level was tried: a cut while only the camera sent, at
                # its level, then held a whole batch of documents below half the link.)
                # As much per round trip as on ADSL's 40 ms: on a LAN or a fibre line (a round trip
                # of a few ms) 30 %/s held a 3.5 MB batch to seconds that SCTP alone sends in one.
                rate = DOCUMENTS_INCREASE_PER_S * min(
                    FAST_PATH_FACTOR_MAX, max(1.0, REFERENCE_RTT_S / max(least, 1e-3))
                )
            else:
                # Only the pictures, and a report a second to see their queue by: a camera target
                # raised faster filled the 400 ms queue before the second report came.
                rate = INCREASE_PER_S
                factor = MEDIA_LIMITED_FACTOR
            grown = self.estimate * (1 + rate) ** elapsed
            if self.sent_bps > 0:
                grown = min(grown, max(self.estimate, factor * self.sent_bps))
            self.estimate = grown
        self._bound(now)

    def on_remb(self, now: float, bps: int) -> None:
        """The browser's own receive-side estimate for our video: a ceiling on the pictures (not on
        the voice or the documents), never a floor."""
        self._remb = (now, float(bps))
        self._now = now
        self.decreases["remb"] += 1

    def _bound(self, now: float) -> None:
        self._now = now
        self.estimate = min(max(self.estimate, MIN_ESTIMATE_BPS), MAX_ESTIMATE_BPS)

    def video_ceiling(self) -> int | None:
        if self._remb is None or self._now - self._remb[0] >= REMB_VALID_S:
            return None
        return int(self._remb[1])

    def target_queue(self) -> float:
        """The queue delay the control aims under (the issue's goal: a round trip under load at
        most 1.5 times the idle one; acted on at 1.25 times, and some for the path's jitter)."""
        least = self.least_rtt() or 0.0
        return least * (QUEUE_FACTOR - 1) + QUEUE_SLACK_S

    def least_rtt(self) -> float | None:
        """The path's own round trip (see _least_now), or the least sample before any update."""
        if self._path is not None:
            return self._path
        if self._least_now:
            return self._least_now[0][1]
        return self._least[0][1] if self._least else None

    # ---- how it is shared

    def allocation(self) -> Allocation:
        if not self.documents_waiting:
            self._documents_since = None
        elif self._documents_since is None:
            self._documents_since = self._now
        form, camera, documents = self._shares(self.documents_waiting)
        return Allocation(int(self.estimate), AUDIO_BPS, form, camera, self._camera_step(camera), documents)

    def documents_share(self) -> int:
        """What a document would get now: the pace a transfer starts at, before the next round has
        seen it waiting (starting unpaced, a whole letter went into SCTP's buffer at once)."""
        return self._shares(True)[2]

    def _shares(self, documents_waiting: bool) -> tuple[int, int, int]:
        left = max(0, int(self.estimate) - AUDIO_BPS)
        form = 0
        if self.form_active:
            # The clerk is typing into the page and reading it back: it comes before the citizen's
            # face, but the face never goes entirely.
            form = min(FORM_MAX_BPS, max(FORM_FLOOR_BPS, int(left * 0.45)))
            form = min(form, max(0, left - CAMERA_FLOOR_BPS))
            left -= form
        camera_cap = CAMERA_MAX_BPS
        if documents_waiting:
            # Before the documents in priority, but not all of it: a paper on an 800 kbit/s uplink
            # would otherwise wait for the call to end. While one goes, the face steps down (the
            # clerk is reading the paper) and the paper gets most of the link, as a browser's data
            # channel takes it from its video (ADSL: at 45 % the batch took 1.8 times Chromium's; at
            # 20 % the camera stepped its picture down and stalled while a letter went).
            since = self._documents_since
            long_transfer = since is not None and self._now - since >= LONG_TRANSFER_S
            share = CAMERA_SHARE_LONG_TRANSFER if long_transfer else CAMERA_SHARE_WITH_DOCUMENTS
            camera_cap = min(camera_cap, max(CAMERA_FLOOR_BPS, int(left * share)))
        camera = min(
            camera_cap, max(CAMERA_FLOOR_BPS, left - (DOCUMENTS_FLOOR_BPS if documents_waiting else 0))
        )
        ceiling = self.video_ceiling()
        # What the clerk's browser says it can take of our pictures, a ceiling on them; but not while
        # documents go: its estimator sees the queue the documents make (which this control holds to
        # its target by their own round trips) and cut the camera to a postage stamp for them,
        # against the priorities.
        if ceiling is not None and not documents_waiting:
            if form:
                form = max(FORM_FLOOR_BPS, min(form, ceiling // 2))
            camera = max(CAMERA_FLOOR_BPS, min(camera, ceiling - form))
        # What the camera's encoder leaves of its share (it lags a new target, and a still scene
        # costs less) goes to the documents rather than to nothing.
        used = camera if self.camera_sent_bps <= 0 else min(camera, int(CAMERA_SLACK * self.camera_sent_bps))
        left = max(0, int(self.estimate) - AUDIO_BPS - form - used)
        documents = max(DOCUMENTS_FLOOR_BPS, left) if documents_waiting else 0
        return form, camera, documents

    def _camera_step(self, camera_bps: int) -> CameraStep:
        """Down at once; up only after a few rounds with room to spare: each change of picture size
        costs a keyframe, and a size that flaps every second is worse than either size."""
        wanted = next(i for i, s in enumerate(CAMERA_STEPS) if camera_bps >= s.min_bps)
        if wanted > self._step:
            self._step, self._up_rounds = wanted, 0
        elif wanted < self._step:
            roomy = camera_bps >= CAMERA_STEPS[self._step - 1].min_bps * STEP_UP_MARGIN
            self._up_rounds = self._up_rounds + 1 if roomy else 0
            if self._up_rounds >= STEP_UP_ROUNDS:
                self._step, self._up_rounds = self._step - 1, 0
        else:
            self._up_rounds = 0
        return CAMERA_STEPS[self._step]
