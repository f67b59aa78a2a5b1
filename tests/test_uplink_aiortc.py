"""The shared uplink control on a real aiortc call (kiosk's AiortcCall → an aiortc answerer on
loopback): receiver reports reach the controller, the camera's encoder goes below aiortc's 250 kbit/s
floor, the camera's picture steps down, and the documents are paced."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import vpx

from kiosk_client.adapters.media_tracks import TrackReader
from kiosk_client.adapters.rtc_aiortc import AiortcCallFactory
from kiosk_client.adapters.uplink_aiortc import ENCODER_ATTRIBUTE, DocumentPace, encoder_of
from kiosk_client.core.models import SessionDescription
from kiosk_client.core.settings import AudioSettings, CameraSettings
from kiosk_client.core.uplink_control import CAMERA_FLOOR_BPS


async def until(predicate: Any, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.05)


async def test_the_camera_goes_below_aiortcs_floor_and_steps_its_picture_down() -> None:
    factory = AiortcCallFactory(
        CameraSettings(device=None), AudioSettings(microphone=None, speaker=None), uplink_control=True
    )
    call = factory.new_call((), lambda event: None)
    clerk = RTCPeerConnection()
    sizes: list[tuple[int, int]] = []
    readers: list[TrackReader] = []

    def on_track(track: Any) -> None:
        if track.kind == "video":
            reader = TrackReader(track, lambda frame: sizes.append((frame.width, frame.height)))
            reader.start()
            readers.append(reader)

    clerk.on("track", on_track)
    try:
        offer = await call.create_offer()
        await clerk.setRemoteDescription(RTCSessionDescription(offer.sdp, offer.type))
        await clerk.setLocalDescription(await clerk.createAnswer())
        await call.accept_answer(SessionDescription(clerk.localDescription.sdp, "answer"))
        governor = call.uplink
        assert governor is not None
        await until(lambda: len(sizes) > 5)
        assert sizes[-1] == (640, 480)
        # The clerk's browser reports back: the controller hears of loss and round trip.
        await until(lambda: governor.controller.least_rtt() is not None)
        # A thin uplink: the camera gets what is left after the voice, below aiortc's own floor.
        await governor.stop()  # the test drives the rounds from here
        governor.controller.estimate = 120_000
        allocation = await governor.tick()
        encoder = encoder_of(governor._camera_sender)
        assert encoder is not None and allocation.camera_bps < 250_000
        assert encoder.target_bitrate == allocation.camera_bps >= CAMERA_FLOOR_BPS
        assert vpx.MIN_BITRATE <= CAMERA_FLOOR_BPS
        # Fewer pixels and frames rather than a frozen picture.
        count = len(sizes)
        await until(lambda: len(sizes) > count + 5 and sizes[-1] == (320, 240))
        started, before = time.monotonic(), len(sizes)
        await asyncio.sleep(2.0)
        fps = (len(sizes) - before) / (time.monotonic() - started)
        assert fps <= allocation.camera.fps + 2
        # A REMB from the browser (it sets the encoder's target itself): a ceiling for the controller.
        governor.controller.estimate = 600_000
        await governor.tick()
        encoder.target_bitrate = 300_000  # what aiortc does with a REMB of 300 kbit/s
        await governor.tick()
        assert governor.controller.decreases["remb"] >= 1 and governor.controller.video_ceiling() == 300_000
        assert governor.last is not None and governor.last.camera_bps <= 300_000
    finally:
        for reader in readers:
            await reader.stop()
        await call.close()
        await clerk.close()
    assert ENCODER_ATTRIBUTE == "_RTCRtpSender__encoder"  # the private name this relies on


async def test_documents_are_paced_at_their_share() -> None:
    pace = DocumentPace(rate_bps=400_000)
    started = time.monotonic()
    for _ in range(50):  # 50 KB in 1 KB chunks, as the transfer sends them
        pace.consume(1024)
        if pace.owed() > 8 * 1024:
            await pace.paid(2 * 1024)
    await pace.paid(0)
    elapsed = time.monotonic() - started
    assert elapsed == pytest.approx(50 * 1024 * 8 / 400_000, rel=0.25)
    assert pace.waiting()
    unpaced = DocumentPace()
    unpaced.consume(10_000_000)
    assert unpaced.owed() == 0
