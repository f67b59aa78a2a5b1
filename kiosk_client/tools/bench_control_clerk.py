"""The clerk half of `kiosk-client bench control`, in its own process so the kiosk's CPU is its own.

Answers the appointment's call, asks for control, sends paced inputs stamped with the wall clock,
and records the colour of a region of every decoded form-view frame. Writes one JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
from aiortc import RTCPeerConnection

from ..adapters.media_tracks import ColourlessTrack, PacedVideoTrack, ToneTrack, TrackReader
from ..adapters.rtc_aiortc import rtc_configuration
from ..runtime import shorten_gil_switch_interval
from . import browser_like_receiver
from .clerk_bot import answer_offer, wait_for_offer

# The kiosk's marker square (control_bench.MARKER), inset by 10 px.
REGION = (slice(310, 390), slice(30, 110))


async def run(
    central: str,
    token: str,
    appointment_id: str,
    inputs: int,
    interval_s: float,
    save_frame: Path | None = None,
) -> dict[str, Any]:
    client = httpx.AsyncClient(
        base_url=central + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=40
    )
    state = await wait_for_offer(client, appointment_id)
    pc = RTCPeerConnection(rtc_configuration(()))
    frames: list[tuple[float, float, float, float]] = []
    videos: list[TrackReader] = []
    control: dict[str, Any] = {}
    received: list[dict[str, Any]] = []

    last: dict[str, Any] = {}

    def on_form_frame(frame: Any) -> None:
        received_at = time.time()  # before the conversion, which a browser would not do
        image = frame.to_ndarray(format="bgr24")
        last["image"] = image
        b, g, r = image[REGION].reshape(-1, 3).mean(axis=0)
        frames.append((received_at, float(b), float(g), float(r)))

    @pc.on("track")
    def on_track(track: Any) -> None:
        if track.kind == "video":
            reader = TrackReader(track, on_form_frame if videos else None)  # the second video is the form
            videos.append(reader)
        else:
            reader = TrackReader(track)
        reader.start()

    opened, granted = asyncio.Event(), asyncio.Event()

    def on_message(raw: str) -> None:
        message = json.loads(raw)
        received.append(message)
        if message.get("type") == "state" and message.get("control") == "granted":
            granted.set()

    @pc.on("datachannel")
    def on_channel(channel: Any) -> None:
        control["channel"] = channel
        channel.on("message", on_message)
        channel.on("open", opened.set)
        if channel.readyState == "open":
            opened.set()

    pc.addTrack(ToneTrack())
    pc.addTrack(PacedVideoTrack(ColourlessTrack(), 15))
    await answer_offer(client, pc, appointment_id, state)
    await asyncio.wait_for(opened.wait(), 20)
    channel = control["channel"]
    channel.send(json.dumps({"v": 1, "seq": 0, "type": "control.request"}))
    await asyncio.wait_for(granted.wait(), 20)

    sent: dict[int, float] = {}
    rng = random.Random(1)
    next_at = time.monotonic()
    for seq in range(1, inputs + 1):
        if seq % 2:
            message = {
                "type": "pointer",
                "action": "move",
                "x": rng.uniform(0.1, 0.9),
                "y": rng.uniform(0.1, 0.9),
            }
        else:
            message = {"type": "text", "text": "é"}
        next_at += interval_s
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        sent[seq] = time.time()
        channel.send(json.dumps({"v": 1, "seq": seq, **message}))
    deadline = time.monotonic() + 15
    while sum(1 for m in received if m.get("type") in ("ack", "error") and m.get("seq", 0) > 0) < inputs:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)  # keep watching the stream while the kiosk finishes its page changes
    (
        await client.post(
            f"/appointments/{appointment_id}/hangup", json={"call_id": state["call_id"], "reason": "done"}
        )
    ).raise_for_status()
    for reader in videos:
        await reader.stop()
    await pc.close()
    await client.aclose()
    errors = [m for m in received if m.get("type") == "error"]
    if save_frame is not None and "image" in last:
        cv2.imwrite(str(save_frame), last["image"])  # what the clerk saw last, to judge legibility
    return {
        "sent": sent,
        "frames": frames,
        "errors": len(errors),
        "error_codes": sorted({e["code"] for e in errors}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--central", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--appointment", required=True)
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--save-frame", type=Path, help="write the last form-view frame received (PNG)")
    args = parser.parse_args()
    shorten_gil_switch_interval()  # the decoder thread should not hold back the inputs' sending
    browser_like_receiver.install()  # the clerk's console is a browser: frames end at the marker
    result = asyncio.run(
        run(args.central, args.token, args.appointment, args.inputs, args.interval, args.save_frame)
    )
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
