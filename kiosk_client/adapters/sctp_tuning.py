"""How aiortc's SCTP (the data channels' transport) is tuned for the kiosk.

Installed once, when the aiortc adapter is imported, for every peer connection of the process.
Both settings were found with `kiosk-client bench documents`; see the README's benchmarks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import rtcpeerconnection, rtcsctptransport
from aiortc.rtcsctptransport import WEBRTC_STRING, RTCSctpTransport

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


class BoundedFlightSctpTransport(RTCSctpTransport):
    """aiortc's SCTP transport with a ceiling on its congestion window (`_cwnd`, which every path of
    aiortc's congestion control assigns), so at most SCTP_MAX_FLIGHT_BYTES are ever in flight; and a
    receive path that no message from the peer can break."""

    _bounded_cwnd: int
    # Set by the call's uplink control (adapters/uplink_aiortc.py): told every raw round trip SCTP
    # measures (one per SACK, aiortc's RFC 4960 sample), and the documents' window on the uplink.
    rtt_listener: Callable[[float], None] | None = None
    flight_cap = SCTP_MAX_FLIGHT_BYTES
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

    def _update_rto(self, R: float) -> None:  # noqa: N803 (aiortc's name)
        listener = self.rtt_listener
        if listener is not None:
            listener(R)
        super()._update_rto(R)

    @property
    def _cwnd(self) -> int:
        # The uplink control's window comes on top of SCTP's own: SCTP alone sends a 16 KB message
        # as one burst (160 ms of an ADSL uplink's queue), while a window of the documents' share
        # times the round trip sends as SACKs come back, at the pace of that share.
        return min(self._bounded_cwnd, self.flight_cap)

    @_cwnd.setter
    def _cwnd(self, value: int) -> None:
        self._bounded_cwnd = min(value, SCTP_MAX_FLIGHT_BYTES)


def install() -> None:
    """Idempotent: the timer floor is a module constant, and RTCPeerConnection builds its SCTP
    transport from the name it imported, so replacing that name is enough."""
    setattr(rtcsctptransport, "SCTP_RTO_MIN", SCTP_RTO_MIN_S)  # noqa: B010
    setattr(rtcpeerconnection, "RTCSctpTransport", BoundedFlightSctpTransport)  # noqa: B010
