"""A bad link between two real aiortc peers on loopback, made in-process: every datagram a peer's ICE
sockets send (STUN, DTLS, SRTP, SCTP) goes through an `Impairment` that can delay it, drop it at
random, drop chosen packets, or cut the link entirely. No netns, no root."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection


def ice_connection(pc: RTCPeerConnection) -> Any:
    """The aioice connection under a peer connection (one, with BUNDLE), once it gathered."""
    for transceiver in pc.getTransceivers():
        return transceiver.sender.transport.transport.iceGatherer._connection
    assert pc.sctp is not None
    return pc.sctp.transport.transport.iceGatherer._connection


class Impairment:
    """What happens to the datagrams one peer sends: a one-way delay, random loss, a chosen-packet
    filter (`drop(data) -> bool`) and an on/off switch for the whole link."""

    def __init__(self, delay_s: float = 0.0, loss: float = 0.0, seed: int = 7) -> None:
        self.delay_s = delay_s
        self.loss = loss
        self.down = False
        self.drop: Callable[[bytes], bool] | None = None
        self.sent = 0
        self.dropped = 0
        self._random = random.Random(seed)

    def attach(self, pc: RTCPeerConnection) -> None:
        """Call after setLocalDescription (the sockets exist) and before the connection starts."""
        for protocol in ice_connection(pc)._protocols:
            protocol.transport = _ImpairedTransport(protocol.transport, self)

    def passes(self, data: bytes) -> bool:
        self.sent += 1
        if self.down or (self.loss and self._random.random() < self.loss) or (self.drop and self.drop(data)):
            self.dropped += 1
            return False
        return True


class _ImpairedTransport:
    def __init__(self, transport: asyncio.DatagramTransport, impairment: Impairment) -> None:
        self._transport = transport
        self._impairment = impairment

    def sendto(self, data: bytes, addr: Any = None) -> None:
        if not self._impairment.passes(data):
            return
        if self._impairment.delay_s > 0:
            asyncio.get_running_loop().call_later(self._impairment.delay_s, self._send_late, data, addr)
        else:
            self._transport.sendto(data, addr)

    def _send_late(self, data: bytes, addr: Any) -> None:
        if not self._transport.is_closing():
            self._transport.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def impaired_pair(
    offerer: RTCPeerConnection,
    answerer: RTCPeerConnection,
    offerer_sends: Impairment,
    answerer_sends: Impairment,
) -> None:
    """Negotiates two peer connections (tracks and channels already added) over the impaired link;
    returns once both are connected."""
    await offerer.setLocalDescription(await offerer.createOffer())
    offerer_sends.attach(offerer)
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    answerer_sends.attach(answerer)
    await offerer.setRemoteDescription(answerer.localDescription)
    for _ in range(400):
        if offerer.connectionState == "connected" and answerer.connectionState == "connected":
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not connected: {offerer.connectionState}, {answerer.connectionState}")


def rtp_header(data: bytes) -> tuple[int, int, int] | None:
    """(payload type, sequence number, SSRC) of an SRTP packet (its header is in the clear); None
    for anything else on the socket (STUN, DTLS, RTCP)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    payload_type = data[1] & 0x7F
    if 64 <= payload_type <= 95:  # RTCP's packet types 192-223 once the marker bit is folded in
        return None
    return payload_type, int.from_bytes(data[2:4], "big"), int.from_bytes(data[8:12], "big")
