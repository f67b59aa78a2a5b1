"""Two real aiortc peers on loopback with one data channel between them, for the transport tests."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import RTCPeerConnection


async def connected_pair(label: str) -> tuple[RTCPeerConnection, RTCPeerConnection, Any, asyncio.Future[Any]]:
    """(offerer, answerer, the offerer's channel, a future for the answerer's side of it)."""
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    channel = offerer.createDataChannel(label, ordered=True)
    remote: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    answerer.on("datachannel", remote.set_result)
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    return offerer, answerer, channel, remote
