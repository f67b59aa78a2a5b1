"""The clerk half of `kiosk-client bench documents`, in its own process.

`call` mode: answers the appointment's call, receives documents on the documents channel (checking
each SHA-256 before its receipt) and stamps every video frame of the kiosk's camera it decodes.
`raw` mode: the baseline — a plain aiortc data channel from the bench process, SDP exchanged as JSON
lines on stdin/stdout, counting the bytes that arrive. Each mode writes one JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription

from ..adapters.media_tracks import ColourlessTrack, PacedVideoTrack, ToneTrack, TrackReader
from ..adapters.rtc_aiortc import rtc_configuration
from ..core.document_protocol import Manifest
from ..runtime import shorten_gil_switch_interval
from .clerk_bot import answer_offer, wait_for_offer
from .document_receiver import DocumentReceiver


async def call(central: str, token: str, appointment_id: str) -> dict[str, Any]:
    client = httpx.AsyncClient(
        base_url=central + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=40
    )
    state = await wait_for_offer(client, appointment_id)
    pc = RTCPeerConnection(rtc_configuration(()))
    frames: list[float] = []
    documents: list[dict[str, Any]] = []
    readers: list[TrackReader] = []

    def on_document(manifest: Manifest, data: bytes) -> None:
        documents.append(
            {"name": manifest.name, "size": manifest.size, "pages": manifest.pages, "at": time.time()}
        )

    receiver = DocumentReceiver(lambda text: None, on_document)

    videos: list[str] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        camera = track.kind == "video" and not videos  # the offer's first video: the kiosk's camera
        if track.kind == "video":
            videos.append(track.id)
        reader = TrackReader(track, (lambda frame: frames.append(time.time())) if camera else None)
        readers.append(reader)
        reader.start()

    chunks = {"first": 0.0, "last": 0.0, "bytes": 0, "max_gap_ms": 0.0}

    def on_documents_message(message: str | bytes) -> None:
        if isinstance(message, bytes):  # stamped as the raw baseline's are: at the receiver
            now = time.time()
            if chunks["last"]:
                chunks["max_gap_ms"] = max(chunks["max_gap_ms"], (now - chunks["last"]) * 1000)
            chunks["first"] = chunks["first"] or now
            chunks["last"] = now
            chunks["bytes"] += len(message)
        receiver.on_message(message)

    @pc.on("datachannel")
    def on_channel(channel: Any) -> None:
        if channel.label == "documents":
            receiver.send_text = channel.send
            channel.on("message", on_documents_message)

    pc.addTrack(ToneTrack())
    pc.addTrack(PacedVideoTrack(ColourlessTrack(), 15))
    version = await answer_offer(client, pc, appointment_id, state)
    while True:  # until the bench hangs up (from the kiosk's side)
        polled = await client.get(
            f"/appointments/{appointment_id}/call", params={"after": version, "wait": 1}
        )
        if polled.status_code == 200:
            version = polled.json()["version"]
            if polled.json()["ended"]:
                break
    for reader in readers:
        await reader.stop()
    await pc.close()
    await client.aclose()
    return {"frames": frames, "documents": documents, "errors": receiver.errors, "chunks": chunks}


def with_call_media(pc: RTCPeerConnection, video: Any, fps: int) -> list[TrackReader]:
    """A tone and `video` sent, every track received read: the raw baseline's channel shares its
    transport with the same media load as the documents channel does in the call. Both ends of the
    baseline use it; the list fills as the other side's tracks arrive."""
    pc.addTrack(ToneTrack())
    pc.addTrack(PacedVideoTrack(video, fps))
    readers: list[TrackReader] = []

    @pc.on("track")
    def on_track(track: Any) -> None:
        reader = TrackReader(track)
        readers.append(reader)
        reader.start()

    return readers


async def raw() -> dict[str, Any]:
    pc = RTCPeerConnection(rtc_configuration(()))
    readers = with_call_media(pc, ColourlessTrack(), 15)  # the clerk's side of the call's media

    received: dict[str, Any] = {"bytes": 0, "arrivals": []}  # (time, bytes so far) per message
    done = asyncio.Event()
    expected = 0

    @pc.on("datachannel")
    def on_channel(channel: Any) -> None:
        def on_message(message: Any) -> None:
            now = time.time()
            if isinstance(message, bytes):
                received["bytes"] += len(message)
                received["arrivals"].append((now, received["bytes"]))
                if received["bytes"] >= expected:
                    done.set()

        channel.on("message", on_message)

    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    offer = json.loads(line)
    expected = int(offer["expect_bytes"])
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    print(json.dumps({"sdp": pc.localDescription.sdp}), flush=True)
    await asyncio.wait_for(done.wait(), 120)
    for reader in readers:
        await reader.stop()
    await pc.close()
    return received


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["call", "raw"])
    parser.add_argument("--central")
    parser.add_argument("--token")
    parser.add_argument("--appointment")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    shorten_gil_switch_interval()  # as the kiosk does
    if args.mode == "call":
        result = asyncio.run(call(args.central, args.token, args.appointment))
    else:
        result = asyncio.run(raw())
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
