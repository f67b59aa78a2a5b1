"""How aiortc's SCTP (the data channels' transport) is tuned for the kiosk.

Installed once, when the aiortc adapter is imported, for every peer connection of the process.
Both settings were found with `kiosk-client bench documents`; see the README's benchmarks.
"""

from __future__ import annotations

from aiortc import rtcpeerconnection, rtcsctptransport
from aiortc.rtcsctptransport import RTCSctpTransport

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
    aiortc's congestion control assigns), so at most SCTP_MAX_FLIGHT_BYTES are ever in flight."""

    _bounded_cwnd: int

    @property
    def _cwnd(self) -> int:
        return self._bounded_cwnd

    @_cwnd.setter
    def _cwnd(self, value: int) -> None:
        self._bounded_cwnd = min(value, SCTP_MAX_FLIGHT_BYTES)


def install() -> None:
    """Idempotent: the timer floor is a module constant, and RTCPeerConnection builds its SCTP
    transport from the name it imported, so replacing that name is enough."""
    setattr(rtcsctptransport, "SCTP_RTO_MIN", SCTP_RTO_MIN_S)  # noqa: B010
    setattr(rtcpeerconnection, "RTCSctpTransport", BoundedFlightSctpTransport)  # noqa: B010
