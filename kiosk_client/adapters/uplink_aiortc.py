"""The shared uplink estimate (core/uplink_control.py) applied to an aiortc call.

What feeds the controller, as it comes: the round trip and loss of every RTCP receiver report on our
senders (now − LSR − DLSR, computed here: aiortc keeps only an 85 %-weighted average, which lagged a
drained queue by seconds), every SACK's round trip on the data channels' SCTP transport
(adapters/sctp_tuning.py), and the browser's REMB. Ten times a second its allocation goes back to the
video encoders' targets, to the camera track's picture size and frame rate, and to the documents:
their token bucket (DocumentPace, what the transfer hands to SCTP) and SCTP's own pace and window (so
a 16 KB message leaves chunk by chunk at the documents' share, not as one burst into the queue).

aiortc 1.16 specifics, each checked by tests/test_uplink_aiortc.py:
- a sender's encoder is private (`RTCRtpSender._RTCRtpSender__encoder`, made at the first frame);
- the VP8 encoder clamps its target to `aiortc.codecs.vpx.MIN_BITRATE` (250 kbit/s) at every set, so
  that constant is lowered to the camera's floor here: on an 800 kbit/s uplink shared with the form
  view and the documents, 250 kbit/s for the citizen's face alone was the queue that froze the call;
- the VP8 encoder starts a new codec, with a keyframe, for any change of its target over 10 %: aiortc
  set every REMB as the target (the browser sends several a second), and the targets here move only
  by more than that and upwards at most once a second;
- a REMB is therefore kept from aiortc's sender (its RTCP handler is wrapped) and handed to the
  controller, which keeps it as a ceiling on the pictures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc.codecs import vpx
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket, unpack_remb_fci

from ..core.uplink_control import CAMERA_FLOOR_BPS, FORM_FLOOR_BPS, Allocation, UplinkController

log = logging.getLogger(__name__)

ENCODER_ATTRIBUTE = "_RTCRtpSender__encoder"
UPDATE_INTERVAL_S = 0.1  # the estimate follows the round trips of each SACK: a few rounds per RTT
OWN_WINDOW_FROM_RTT_S = 0.25
STATS_EVERY = 3  # rounds between two readings of what was sent (aiortc's getStats)
SENT_WINDOW_S = 1.0
TARGET_DEADBAND = 0.12  # aiortc's encoder ignores changes of 10 % or less; a little more here
TARGET_UP_INTERVAL_S = 1.0
TARGET_UP_STEP = 1.3


def allow_low_video_bitrates(floor_bps: int = CAMERA_FLOOR_BPS) -> None:
    """Lets VP8 go below aiortc's 250 kbit/s floor (the setter reads the module's constant)."""
    vpx.MIN_BITRATE = min(vpx.MIN_BITRATE, floor_bps)


def encoder_of(sender: Any) -> Any | None:
    return getattr(sender, ENCODER_ATTRIBUTE, None)


class DocumentPace:
    """A token bucket for the documents channel, so a paper takes its share of the uplink and not the
    whole of it (SCTP alone would fill the queue the video sits in). What is held back counts as
    waiting to be sent: the transfer's own high-water mark then waits for it, as for SCTP's buffer."""

    def __init__(self, rate_bps: float = 0.0) -> None:
        self.rate_bps = rate_bps  # 0: no limit (until the call's uplink control sets it)
        self.bytes_total = 0
        self._tokens = 0.0
        self._last = time.monotonic()
        self.last_send = -1e9

    def _refill(self) -> None:
        now = time.monotonic()
        if self.rate_bps > 0:
            # At most a quarter of a second of credit: a burst is a queue.
            self._tokens = min(self._tokens + (now - self._last) * self.rate_bps / 8, self.rate_bps / 32)
        else:
            self._tokens = 0.0
        self._last = now

    def consume(self, nbytes: int) -> None:
        self._refill()
        self.last_send = time.monotonic()
        self.bytes_total += nbytes
        if self.rate_bps > 0:
            self._tokens -= nbytes

    def owed(self) -> int:
        self._refill()
        return int(max(0.0, -self._tokens))

    async def paid(self, low: int) -> None:
        while (owed := self.owed()) > low and self.rate_bps > 0:  # noqa: ASYNC110 (sleeps what is owed)
            await asyncio.sleep(min(1.0, (owed - low) * 8 / self.rate_bps))

    def waiting(self, within_s: float = 2.0) -> bool:
        return time.monotonic() - self.last_send < within_s


RTCP_HOOK = "_kiosk_rtcp_listener"


def install() -> None:
    """Every RTCP receiver report's own round trip (now − LSR − DLSR) and loss, told to the sender's
    listener when one is set: aiortc keeps only an 85 %-weighted average of the round trips, which
    lagged a drained queue by seconds. Idempotent."""
    original = RTCRtpSender._handle_rtcp_packet
    if getattr(original, "_kiosk_hooked", False):
        return

    @functools.wraps(original)  # aiortc's own stays reachable (inspect.unwrap), for the tests
    async def handle(self: RTCRtpSender, packet: Any) -> None:
        listener = getattr(self, RTCP_HOOK, None)
        if listener is not None and isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            lsr = getattr(self, "_RTCRtpSender__lsr", None)
            lsr_time = getattr(self, "_RTCRtpSender__lsr_time", None)
            for report in packet.reports:
                if report.ssrc != self._ssrc:
                    continue
                rtt = None
                if lsr_time is not None and lsr == report.lsr and report.dlsr:
                    rtt = time.time() - lsr_time - report.dlsr / 65536
                listener.on_receiver_report(rtt, report.ssrc, report.highest_sequence, report.packets_lost)
        elif listener is not None and isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            # A REMB: aiortc would set it as this encoder's target at once (and the same whole
            # estimate on each video sender); with the uplink control on, it is one input of the
            # control's, which sets the targets.
            with contextlib.suppress(ValueError):
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
                if self._ssrc in ssrcs:
                    listener.on_remb(bitrate)
            return
        await original(self, packet)

    handle._kiosk_hooked = True  # type: ignore[attr-defined]
    RTCRtpSender._handle_rtcp_packet = handle  # type: ignore[method-assign]


LOSS_MIN_PACKETS = 100  # a loss fraction is told to the control over at least this many packets
MIN_FLIGHT_BYTES = 3 * 1200  # SCTP's chunks: a receiver that SACKs every second packet never stalls


class UplinkGovernor:
    def __init__(
        self,
        controller: UplinkController,
        camera_sender: Any,
        form_sender: Any | None,
        camera_track: Any,
        form_track: Any | None,
        documents: DocumentPace,
        senders: list[Any],
        sctp: Callable[[], Any] = lambda: None,
    ) -> None:
        self.controller = controller
        self._camera_sender = camera_sender
        self._form_sender = form_sender
        self._camera_track = camera_track
        self._form_track = form_track
        self._documents = documents
        self._senders = senders
        self._sctp = sctp
        self._hooked_sctp: Any = None
        self._set: dict[int, int] = {}  # sender id → the target set here
        self._task: asyncio.Task[None] | None = None
        # (when, bytes sent in all, of which the camera's) over SENT_WINDOW_S
        self._sent: deque[tuple[float, int, int]] = deque()
        self._rounds = 0
        self.last: Allocation | None = None
        allow_low_video_bitrates()
        self._changed: dict[int, float] = {}  # sender id → when its target last changed
        self._counters: dict[int, tuple[int, int]] = {}  # ssrc → (highest sequence, lost) last reported
        self._expected = self._lost = 0  # packets, over all streams, since the loss was last told
        for sender in senders:
            setattr(sender, RTCP_HOOK, self)

    def on_remb(self, bps: int) -> None:
        self.controller.on_remb(time.monotonic(), bps)

    def on_receiver_report(self, rtt: float | None, ssrc: int, highest: int, lost: int) -> None:
        """One report block on one of our streams: its round trip, and its counters (the extended
        highest sequence number received and the cumulative number lost)."""
        now = time.monotonic()
        previous = self._counters.get(ssrc)
        self._counters[ssrc] = (highest, lost)
        if previous is not None and highest > previous[0]:
            self._expected += highest - previous[0]
            self._lost += max(0, lost - previous[1])
        if rtt is not None:
            self.controller.on_rtt(now, rtt)

    def _report_loss(self, now: float) -> None:
        # The loss of all our streams together, over enough packets to mean something: each
        # report's own fraction is of one stream since its last report, and the form view's or a
        # still camera's few packets made 2 % of random loss a 20 % one now and then, which the
        # control cut for (valley 4G: 25 cuts in 90 s, the documents at a third of the link).
        if self._expected >= LOSS_MIN_PACKETS:
            self.controller.on_loss(now, min(1.0, self._lost / self._expected))
            self._expected = self._lost = 0

    def _on_sack_rtt(self, rtt: float) -> None:
        self.controller.on_rtt(time.monotonic(), rtt)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """The rounds stop; the reports still reach the controller (the senders and the SCTP
        transport end with the call)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(UPDATE_INTERVAL_S)
            try:
                await self.tick()
            except Exception:
                # Never the call's end: the senders keep their last targets.
                log.exception("uplink control failed this round")

    async def tick(self) -> Allocation:
        now = time.monotonic()
        self._hook_sctp()
        if self._rounds % STATS_EVERY == 0:
            await self._measure_sent(now)
        self._rounds += 1
        self._report_loss(now)
        self.controller.update(now)
        self.controller.form_active = self._form_active()
        sctp = self._hooked_sctp
        # Waiting in SCTP counts: the transfer hands over up to a megabyte ahead, which waits in the
        # data channels' queue, then SCTP's, then in flight.
        self.controller.documents_waiting = self._documents.waiting() or bool(
            sctp is not None
            and (sctp._data_channel_queue or sctp._outbound_queue or sctp._flight_size > MIN_FLIGHT_BYTES)
        )
        allocation = self.controller.allocation()
        self._apply(allocation)
        self.last = allocation
        if self._rounds % 10 == 0 and log.isEnabledFor(logging.DEBUG):
            c = self.controller
            log.debug(
                "uplink: estimate %d sent %d queue %s least %s | camera %d documents %d (waiting %s,"
                " in flight %d, sctp cwnd %s, cap %s) | cuts %s",
                c.estimate,
                c.sent_bps,
                None if c.queue_s is None else round(c.queue_s * 1000, 1),
                None if c.least_rtt() is None else round((c.least_rtt() or 0) * 1000, 1),
                allocation.camera_bps,
                allocation.documents_bps,
                c.documents_waiting,
                sctp._flight_size if sctp is not None else 0,
                getattr(sctp, "_bounded_cwnd", None),
                getattr(sctp, "flight_cap", None),
                c.decreases,
            )
        return allocation

    def _hook_sctp(self) -> None:
        sctp = self._sctp()
        if sctp is not None and sctp is not self._hooked_sctp and hasattr(sctp, "rtt_listener"):
            sctp.rtt_listener = self._on_sack_rtt
            self._hooked_sctp = sctp

    async def _measure_sent(self, now: float) -> None:
        # The documents as SCTP puts them on the wire: what the pace lets into SCTP's buffer may
        # wait there for the window.
        sctp = self._hooked_sctp
        total = int(sctp.wire_bytes) if sctp is not None else self._documents.bytes_total
        camera = 0
        for sender in self._senders:
            stats = await sender.getStats()
            sent = sum(
                int(getattr(s, "bytesSent", 0) or 0) for s in stats.values() if s.type == "outbound-rtp"
            )
            total += sent
            if sender is self._camera_sender:
                camera = sent
        self._sent.append((now, total, camera))
        while len(self._sent) > 2 and self._sent[0][0] < now - SENT_WINDOW_S:
            self._sent.popleft()
        (first, first_bytes, first_camera), (last, last_bytes, last_camera) = self._sent[0], self._sent[-1]
        if last > first:
            self.controller.on_sent(max(0, last_bytes - first_bytes) * 8 / (last - first))
            self.controller.camera_sent_bps = max(0, last_camera - first_camera) * 8 / (last - first)

    def _form_active(self) -> bool:
        # The form view sends new pictures while someone works on the page; a still page costs a
        # keepalive frame a second and needs no share of its own.
        track = self._form_track
        return track is not None and time.monotonic() - getattr(track, "last_change", -1e9) < 3.0

    def _apply(self, allocation: Allocation) -> None:
        self._target(self._camera_sender, allocation.camera_bps)
        if self._form_sender is not None:
            # A still page costs a keepalive picture whatever its target; the floor is what a page
            # that starts changing gets until the next round.
            self._target(self._form_sender, allocation.form_bps or FORM_FLOOR_BPS)
        step = getattr(self._camera_track, "step", None)
        if callable(step):
            step(allocation.camera.scale, allocation.camera.fps)
        # Always a pace, never "unlimited": a transfer that starts between two rounds starts paced.
        share = allocation.documents_bps or self.controller.documents_share()
        self._documents.rate_bps = share
        if self._hooked_sctp is not None:
            # The documents' share for one round trip and the queue the control aims at: SCTP then
            # sends as SACKs return, never a burst that fills the uplink's queue.
            # Paced at the share, chunk by chunk; the window (twice the share for a round trip and
            # the queue aimed at) only bounds what a late SACK leaves in flight.
            window = self.controller.least_rtt() or 0.1
            self._hooked_sctp.set_pace(share)
            # On a long path (a satellite's 600 ms) the control sees a queue a second after making
            # it, and with only its own window a batch filled the uplink's 400 ms queue (the clerk's
            # picture froze 16-19 times a minute): SCTP's slower window growth bounds it there too.
            self._hooked_sctp.own_window = window > OWN_WINDOW_FROM_RTT_S
            self._hooked_sctp.flight_cap = max(
                MIN_FLIGHT_BYTES, int(2 * share * (window + self.controller.target_queue()) / 8)
            )

    def _target(self, sender: Any, bps: int) -> None:
        """aiortc's VP8 encoder starts a new codec (and with it a keyframe) for any change of its
        target over 10 %: ten rounds a second of small changes made a keyframe every 100 ms. So a
        target moves only when it changes by more than that, downwards at once (the queue), upwards
        at most once every TARGET_UP_INTERVAL_S."""
        encoder = encoder_of(sender)
        if encoder is None or not hasattr(encoder, "target_bitrate"):
            return
        now = time.monotonic()
        current = int(encoder.target_bitrate)
        if abs(bps - current) <= TARGET_DEADBAND * current:
            return
        if bps > current and now - self._changed.get(id(sender), -1e9) < TARGET_UP_INTERVAL_S:
            return
        if bps > current:
            # Up by steps: VP8's rate control fills a new target at once, and a camera sent from
            # 430 to 790 kbit/s in one step filled an ADSL queue before a report could show it.
            bps = min(bps, int(current * TARGET_UP_STEP))
        encoder.target_bitrate = bps
        self._changed[id(sender)] = now
        self._set[id(sender)] = int(encoder.target_bitrate)
