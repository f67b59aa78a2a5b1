"""Make an aiortc clerk complete video frames the way a browser does.

Clerks watch the form view in a browser, and browsers hand a video frame to the decoder as soon as
its last packet (the one with the RTP marker bit) has arrived. aiortc's receiver instead waits for
the first packet of the *next* frame, which adds up to one frame interval — on a form view that only
sends when the page changes, up to the 100 ms keepalive. The bench's clerk and the clerk bot stand in
for a browser, so they complete frames on the marker bit; the kiosk's own receiver is left as it is.
"""

from __future__ import annotations

from aiortc import rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, except that a video frame is complete at its marker packet."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if not self._is_video:
            return super()._remove_frame(sequence_number)
        packets: list[RtpPacket] = []
        origin: int = self._origin  # type: ignore[assignment]  # set by add() before this call
        for count in range(self.capacity):
            packet = self._packets[(origin + count) % self.capacity]
            if packet is None:
                return None  # a gap: wait for the missing packet (or a retransmission)
            if packets and packet.timestamp != packets[0].timestamp:
                # A frame whose marker packet was lost: hand it over, as aiortc would.
                return self._take(packets, count)
            packets.append(packet)
            if packet.marker:
                return self._take(packets, count + 1)
        return None

    def _take(self, packets: list[RtpPacket], count: int) -> JitterFrame:
        frame = JitterFrame(
            data=b"".join(p._data for p in packets),  # type: ignore[attr-defined]  # set by the receiver
            timestamp=packets[0].timestamp,
        )
        self.remove(count)
        return frame


def install() -> None:
    """Use MarkerJitterBuffer for every receiver created from now on, in this process only."""
    setattr(rtcrtpreceiver, "JitterBuffer", MarkerJitterBuffer)  # noqa: B010  # not re-exported
