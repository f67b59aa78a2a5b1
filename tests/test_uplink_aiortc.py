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
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

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
        # The camera starts at its full picture (beside busy workers the control may already have taken a
        # step down by the sixth frame: a lagging event loop looks like a queue to it).
        assert sizes[0] == (640, 480), sizes
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
        # A REMB from the browser: aiortc would set it as the encoder's target (a new codec, a
        # keyframe, at each one); here it goes to the controller, a ceiling on the pictures.
        governor.controller.estimate = 600_000
        await governor.tick()
        target = encoder.target_bitrate
        sender = governor._camera_sender
        remb = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(300_000, [sender._ssrc])
        )
        await sender._handle_rtcp_packet(remb)
        assert encoder.target_bitrate == target
        await governor.tick()
        assert governor.controller.decreases["remb"] >= 1 and governor.controller.video_ceiling() == 300_000
        assert governor.last is not None and governor.last.camera_bps <= 300_000
    finally:
        for reader in readers:
            await reader.stop()
        await call.close()
        await clerk.close()
    assert ENCODER_ATTRIBUTE == "_RTCRtpSender__encoder"  # the private name this relies on


async def test_the_documents_channel_is_paced_and_its_sacks_measure_the_round_trip() -> None:
    """SCTP sends the documents chunk by chunk at their share (SCTP alone sends a 16 KB message as
    one burst), and each SACK's round trip reaches the controller."""
    links: list[Any] = []
    factory = AiortcCallFactory(
        CameraSettings(device=None), AudioSettings(microphone=None, speaker=None), uplink_control=True
    )
    call = factory.new_call((), lambda event: links.append(getattr(event, "link", None)))
    clerk = RTCPeerConnection()
    received: list[tuple[float, int]] = []

    @clerk.on("datachannel")
    def on_channel(channel: Any) -> None:
        channel.on("message", lambda m: received.append((time.monotonic(), len(m))))

    try:
        offer = await call.create_offer()
        await clerk.setRemoteDescription(RTCSessionDescription(offer.sdp, offer.type))
        await clerk.setLocalDescription(await clerk.createAnswer())
        await call.accept_answer(SessionDescription(clerk.localDescription.sdp, "answer"))
        governor = call.uplink
        assert governor is not None
        await until(lambda: any(link is not None for link in links))
        link = next(link for link in links if link is not None)
        await governor.stop()  # the test drives the rounds from here
        governor.controller.estimate = 600_000
        await governor.tick()
        sctp = call._pc.sctp
        # Before any document: the pace a transfer would start at (the share it would get).
        share = sctp.pace_bps if sctp is not None else 0
        assert share == governor.controller.documents_share() > 0
        samples_before = len(governor.controller._recent)
        started = time.monotonic()
        for _ in range(6):  # 96 KB in the transfer's 16 KB messages, all at once
            link.send_bytes(b"x" * 16 * 1024)
        await until(lambda: sum(n for _, n in received) >= 6 * 16 * 1024, within=20)
        elapsed = time.monotonic() - started
        # Loopback carries this in milliseconds; the pace makes it take its share's time.
        assert elapsed == pytest.approx(6 * 16 * 1024 * 8 / share, rel=0.3)
        # Chunk by chunk, not a message at once: even the first message took its share's time.
        assert received[0][0] - started >= 0.6 * 16 * 1024 * 8 / share
        assert len(governor.controller._recent) > samples_before
    finally:
        await call.close()
        await clerk.close()


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


def test_loss_is_told_for_all_streams_together_over_enough_packets() -> None:
    """2 % random loss over the call is 2 %, not the 20 % of the one packet of five the form view's
    still page lost (valley 4G: 25 loss cuts in 90 s, the documents at a third of the link)."""
    from kiosk_client.adapters.uplink_aiortc import DocumentPace, UplinkGovernor
    from kiosk_client.core.uplink_control import UplinkController

    told: list[float] = []

    class Recording(UplinkController):
        def on_loss(self, now: float, fraction_lost: float) -> None:
            told.append(fraction_lost)
            super().on_loss(now, fraction_lost)

    governor = UplinkGovernor(Recording(), object(), None, object(), None, DocumentPace(), [])
    camera, form = 1111, 2222
    governor.on_receiver_report(None, camera, 1000, 0)
    governor.on_receiver_report(None, form, 50, 0)
    governor._report_loss(1.0)
    assert told == []  # nothing to compare with yet
    governor.on_receiver_report(0.08, camera, 1050, 1)  # 50 packets, 1 lost
    governor.on_receiver_report(0.08, form, 55, 1)  # 5 packets, 1 lost: 20 % of very little
    governor._report_loss(2.0)
    assert told == []  # 55 packets: not enough to say
    governor.on_receiver_report(0.08, camera, 1100, 2)
    governor._report_loss(3.0)
    assert told == [pytest.approx(3 / 105)]
    assert governor.controller.decreases["loss"] == 0
