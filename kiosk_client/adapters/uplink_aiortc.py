"""The shared uplink estimate (core/uplink_control.py) applied to an aiortc call.

Once a second: the receiver reports the clerk's browser sent about each of our streams (aiortc keeps
the last one in each sender's stats: fraction lost, round trip) go to the controller; its allocation
goes back to the video encoders' targets, to the camera track's picture size and frame rate, and to
the documents' pace.

aiortc 1.16 specifics, each checked by tests/test_uplink_aiortc.py:
- a sender's encoder is private (`RTCRtpSender._RTCRtpSender__encoder`, made at the first frame);
- the VP8 encoder clamps its target to `aiortc.codecs.vpx.MIN_BITRATE` (250 kbit/s) at every set, so
  that constant is lowered to the camera's floor here: on an 800 kbit/s uplink shared with the form
  view and the documents, 250 kbit/s for the citizen's face alone was the queue that froze the call;
- a REMB from the browser sets the encoder's target directly; a target found different from the one
  set here came from a REMB, and is handed to the controller as such (a ceiling) before being
  overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiortc.codecs import vpx

from ..core.uplink_control import CAMERA_FLOOR_BPS, Allocation, UplinkController

log = logging.getLogger(__name__)

ENCODER_ATTRIBUTE = "_RTCRtpSender__encoder"
REPORT_INTERVAL_S = 1.0


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
    ) -> None:
        self.controller = controller
        self._camera_sender = camera_sender
        self._form_sender = form_sender
        self._camera_track = camera_track
        self._form_track = form_track
        self._documents = documents
        self._senders = senders
        self._seen: dict[int, Any] = {}  # sender id → timestamp of the last report used
        self._set: dict[int, int] = {}  # sender id → the target set here
        self._task: asyncio.Task[None] | None = None
        self._sent_at: float | None = None
        self._sent_bytes = 0
        self.last: Allocation | None = None
        allow_low_video_bitrates()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(REPORT_INTERVAL_S)
            try:
                await self.tick()
            except Exception:
                # Never the call's end: the senders keep their last targets.
                log.exception("uplink control failed this round")

    async def tick(self) -> Allocation:
        now = time.monotonic()
        sent_bytes = self._documents.bytes_total
        reports = []
        for sender in self._senders:
            stats = await sender.getStats()
            sent_bytes += sum(
                int(getattr(s, "bytesSent", 0) or 0) for s in stats.values() if s.type == "outbound-rtp"
            )
            report = self._newest_report(sender, stats)
            if report is not None:
                reports.append(report)
        if self._sent_at is not None and now > self._sent_at:
            self.controller.on_sent(max(0, sent_bytes - self._sent_bytes) * 8 / (now - self._sent_at))
        self._sent_at, self._sent_bytes = now, sent_bytes
        for report in reports:
            self.controller.on_report(now, report[0], report[1])
        for sender in (self._camera_sender, self._form_sender):
            encoder = encoder_of(sender) if sender is not None else None
            set_here = self._set.get(id(sender))
            if encoder is not None and set_here is not None and encoder.target_bitrate != set_here:
                self.controller.on_remb(now, int(encoder.target_bitrate))
        self.controller.form_active = self._form_active()
        self.controller.documents_waiting = self._documents.waiting()
        allocation = self.controller.allocation()
        self._apply(allocation)
        self.last = allocation
        return allocation

    def _form_active(self) -> bool:
        # The form view sends new pictures while someone works on the page; a still page costs a
        # keepalive frame a second and needs no share of its own.
        track = self._form_track
        return track is not None and time.monotonic() - getattr(track, "last_change", -1e9) < 3.0

    def _newest_report(self, sender: Any, stats: Any) -> tuple[float, float | None] | None:
        for stat in stats.values():
            if getattr(stat, "type", "") != "remote-inbound-rtp":
                continue
            if self._seen.get(id(sender)) == stat.timestamp:
                return None  # no new report since the last round
            self._seen[id(sender)] = stat.timestamp
            # aiortc keeps RTCP's 8-bit fixed point: 256ths.
            return (stat.fractionLost / 256, stat.roundTripTime)
        return None

    def _apply(self, allocation: Allocation) -> None:
        self._target(self._camera_sender, allocation.camera_bps)
        if self._form_sender is not None and allocation.form_bps:
            self._target(self._form_sender, allocation.form_bps)
        step = getattr(self._camera_track, "step", None)
        if callable(step):
            step(allocation.camera.scale, allocation.camera.fps)
        # Always a pace, never "unlimited": a transfer that starts between two rounds starts paced.
        self._documents.rate_bps = allocation.documents_bps or self.controller.documents_share()

    def _target(self, sender: Any, bps: int) -> None:
        encoder = encoder_of(sender)
        if encoder is None or not hasattr(encoder, "target_bitrate"):
            return
        encoder.target_bitrate = bps
        self._set[id(sender)] = int(encoder.target_bitrate)
