"""How aiortc's SCTP (the data channels' transport) is tuned for the kiosk.

Installed once, when the aiortc adapter is imported, for every peer connection of the process.
Both settings were found with `kiosk-client bench documents`; see the README's benchmarks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import rtcpeerconnection, rtcsctptransport
from aiortc.rtcsctptransport import WEBRTC_STRING, RTCSctpTransport, SackChunk
from aiortc.utils import uint32_gt, uint32_gte

log = logging.getLogger(__name__)

# aiortc keeps RFC 4960's 1 s floor for the retransmission timer, so one lost packet at the end of a
# burst froze a document transfer for a full second. A call is unusable long before its round trip
# nears 250 ms, so this floor still leaves the timer well above any RTT the kiosk can work with.
SCTP_RTO_MIN_S = 0.25

# aiortc's congestion window has no ceiling: in slow start it grows towards the receiver's advertised
# window (1 MB from aiortc, more from Chromium), and that much in flight overflows the receiving
# host's UDP buffer (Linux's default is 208 KB, and each 1.2 KB datagram costs it about twice that)
# whenever the receiver is busy decoding video. On loopback, 15-30 % of a document's packets were
# lost and resent, in bursts of stalls. 128 KB in flight still carries 10 Mbit/s at a 100 ms round
# trip, above a rural uplink, and keeps the documents channel from taking the whole uplink from the
# call's video.
SCTP_MAX_FLIGHT_BYTES = 128 * 1024

SCTP_MIN_WINDOW_BYTES = 1200  # aiortc's window after a retransmission timeout (one MTU)
PACE_CHUNK_BYTES = 1200 + 16  # aiortc's USERDATA_MAX_LENGTH and a DATA chunk's header
PACE_BURST_BYTES = 2 * PACE_CHUNK_BYTES  # credit never beyond two chunks: a burst is a queue


class BoundedFlightSctpTransport(RTCSctpTransport):
    """aiortc's SCTP transport with a ceiling on its congestion window (`_cwnd`, which every path of
    aiortc's congestion control assigns), so at most SCTP_MAX_FLIGHT_BYTES are ever in flight; and a
    receive path that no message from the peer can break."""

    _bounded_cwnd: int
    # Set by the call's uplink control (adapters/uplink_aiortc.py): told every raw round trip SCTP
    # measures (one per SACK, aiortc's RFC 4960 sample), and the documents' window on the uplink.
    rtt_listener: Callable[[float], None] | None = None
    flight_cap = SCTP_MAX_FLIGHT_BYTES
    own_window = False  # SCTP's congestion window bounds the documents too, under the control's
    wire_bytes = 0  # DATA chunks put on the wire, retransmissions included (the uplink's share)
    # Messages from the peer whose handling raised, for the whole process (the audit counts its own).
    contained_errors = 0

    async def _data_channel_receive(self, stream_id: int, pp_id: int, data: bytes) -> None:
        # aiortc runs this inside its receive loop: an exception here (its strict UTF-8 decode of a
        # text message, its assertion on a second DCEP open for a stream, or a message handler that
        # raised, which pyee re-raises) ends the loop and with it the call. Text that is not UTF-8 is
        # handed on with its bad bytes as lone surrogates, which every protocol parser of the kiosk
        # refuses with an error the clerk sees; anything else that raises is logged and dropped.
        try:
            if pp_id == WEBRTC_STRING and stream_id in self._data_channels:
                self._data_channels[stream_id].emit("message", data.decode("utf-8", "surrogateescape"))
                return
            await super()._data_channel_receive(stream_id, pp_id, data)
        except Exception:
            type(self).contained_errors += 1
            log.exception("a data-channel message from the peer could not be handled; dropped")

    async def _receive_sack_chunk(self, chunk: SackChunk) -> None:
        # The round trip of the newest chunk this SACK acknowledges, sent once (Karn): a receiver
        # SACKs when a second packet arrives or its delayed-ack timer fires (up to 200 ms), so
        # aiortc's own sample (of the oldest chunk acknowledged) carries that delay, 20-60 ms at an
        # ADSL documents' pace, and the control took it for a queue.
        # Not a SACK that acknowledges a single chunk with nothing sent after it: the far end's
        # delayed-ack timer sent that one (documents trickling at their floor, slower than a packet
        # per timer), and its round trip is the timer's; a batch stuck at 80 kbit/s took that for a
        # standing queue. (A single chunk with more in flight: a receiver that acknowledges every
        # packet, as aiortc's does.)
        listener = self.rtt_listener
        if listener is not None and not uint32_gt(self._last_sacked_tsn, chunk.cumulative_tsn):
            newest = None
            acknowledged = 0
            for sent in self._sent_queue:
                if not uint32_gte(chunk.cumulative_tsn, sent.tsn):
                    break
                acknowledged += 1
                if sent._sent_count == 1 and sent._sent_time is not None:
                    newest = sent._sent_time
            if newest is not None and (acknowledged >= 2 or len(self._sent_queue) > acknowledged):
                listener(time.time() - newest)
        await super()._receive_sack_chunk(chunk)

    def _flight_size_increase(self, chunk: Any) -> None:
        self.wire_bytes += chunk._book_size
        if self._pacing:
            self._pace_tokens -= chunk._book_size
        super()._flight_size_increase(chunk)

    # ---- pacing: chunks spaced at the documents' share instead of a window's burst

    pace_bps = 0.0  # 0: no pacing (SCTP's window alone)
    _pace_tokens = 0.0
    _pace_last = 0.0
    _pacing = False  # only while _transmit runs: the pace is a limit on sending, not SCTP's cwnd
    _pace_timer: asyncio.TimerHandle | None = None
    _pace_task: asyncio.Future[None] | None = None

    def set_pace(self, bps: float) -> None:
        self._refill()
        self.pace_bps = bps

    def _refill(self) -> None:
        now = time.monotonic()
        if self.pace_bps > 0:
            self._pace_tokens = min(
                self._pace_tokens + (now - self._pace_last) * self.pace_bps / 8, PACE_BURST_BYTES
            )
        self._pace_last = now

    async def _transmit(self) -> None:
        if self.pace_bps <= 0:
            await super()._transmit()
            return
        self._refill()
        self._pacing = True
        try:
            await super()._transmit()
        finally:
            self._pacing = False
        if self._outbound_queue and self._pace_timer is None and self._pace_tokens < PACE_CHUNK_BYTES:
            # Come back when the pace allows the next chunk (no SACK may come to call us).
            wait = (PACE_CHUNK_BYTES - self._pace_tokens) * 8 / self.pace_bps
            loop = asyncio.get_running_loop()
            self._pace_timer = loop.call_later(max(wait, 0.002), self._paced_again)

    def _paced_again(self) -> None:
        self._pace_timer = None
        if self._association_state == self.State.ESTABLISHED:
            self._pace_task = asyncio.ensure_future(self._transmit())

    @property
    def _cwnd(self) -> int:
        # The uplink control's window comes on top of SCTP's own, and its pace while _transmit
        # sends: SCTP alone sends a 16 KB message as one burst (160 ms of an ADSL uplink's queue).
        if self.pace_bps > 0 and not self.own_window and self._bounded_cwnd > SCTP_MIN_WINDOW_BYTES:
            # The call's uplink control paces the documents and answers their queue (and loss
            # beyond a few per cent): SCTP's own window halves at every random loss and regrows by
            # one packet a round trip, which on a lossy 4G link held a batch to a third of its
            # share. Its window still rules while it is at its floor (a timeout: the link may be
            # gone), and on long paths (own_window, set by the control).
            window = self.flight_cap
        else:
            window = min(self._bounded_cwnd, self.flight_cap)
        if self._pacing:
            window = min(window, self._flight_size + max(0, int(self._pace_tokens)))
        return window

    @_cwnd.setter
    def _cwnd(self, value: int) -> None:
        self._bounded_cwnd = min(value, SCTP_MAX_FLIGHT_BYTES)


def install() -> None:
    """Idempotent: the timer floor is a module constant, and RTCPeerConnection builds its SCTP
    transport from the name it imported, so replacing that name is enough."""
    setattr(rtcsctptransport, "SCTP_RTO_MIN", SCTP_RTO_MIN_S)  # noqa: B010
    setattr(rtcpeerconnection, "RTCSctpTransport", BoundedFlightSctpTransport)  # noqa: B010
