"""End to end without a screen: reference central + real kiosk engine (aiortc) + clerk bot (aiortc)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from kiosk_client.adapters.media_tracks import PacedVideoTrack, ToneTrack, TrackReader
from kiosk_client.adapters.rtc_aiortc import rtc_configuration
from kiosk_client.core.session import EndReason, Phase
from kiosk_client.tools.clerk_bot import ClerkBot, ColourBars

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, make_engine, wait_for

pytestmark = pytest.mark.e2e


async def test_the_kiosk_joins_at_the_appointment_time_and_media_flows_both_ways(
    site: Site, tmp_path: Path
) -> None:
    token = await asyncio.to_thread(enrolled_token, site.url, site.enrollment_code)
    appointment = site.appointment_in(4)
    start = datetime.fromisoformat(str(appointment["start"]))
    recorder = Recorder()
    engine = make_engine(site.url, token, tmp_path, recorder)
    run = asyncio.create_task(engine.run())
    bot = ClerkBot(site.url, site.clerk.token, hold_s=2.0)
    try:
        report = await asyncio.wait_for(bot.serve_appointment(str(appointment["id"]), start), 30)
        await wait_for(lambda: bool(recorder.records()), 10)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await bot.aclose()
    [record] = recorder.records()
    # Nobody clicked: the kiosk offered before the start, the bot answered at the start.
    assert record.offer_posted_at is not None and record.offer_posted_at < start.timestamp()
    assert report.answered_at is not None and report.answered_at >= start.timestamp()
    assert record.end_reason is EndReason.CLERK_HUNG_UP
    assert record.remote_video_frames > 10 and record.remote_audio_frames > 20  # clerk → kiosk
    assert report.video_frames > 10 and report.audio_frames > 20  # kiosk → clerk
    assert (
        record.first_remote_video_at is not None and record.first_remote_video_at - report.answered_at < 2.0
    )


async def answer_then_drop(site: Site, appointment_id: str) -> None:
    """A clerk whose connection dies (no hang-up): answer, wait for media, close the peer connection."""
    async with httpx.AsyncClient(
        base_url=site.url + "/api/v1", headers={"Authorization": f"Bearer {site.clerk.token}"}
    ) as client:
        state: dict[str, Any] = {}
        version = 0
        while not state.get("has_offer"):
            response = await client.get(
                f"/appointments/{appointment_id}/call", params={"after": version, "wait": 10}
            )
            if response.status_code == 200:
                state = response.json()
                version = state["version"]
        pc = RTCPeerConnection(rtc_configuration(()))
        readers: list[TrackReader] = []
        pc.on("track", lambda track: (readers.append(TrackReader(track)), readers[-1].start()))
        pc.addTrack(ToneTrack())
        pc.addTrack(PacedVideoTrack(ColourBars(), 15))
        await pc.setRemoteDescription(RTCSessionDescription(**state["offer"]))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp, "call_id": state["call_id"]}
        (await client.put(f"/appointments/{appointment_id}/answer", json=answer)).raise_for_status()
        await wait_for(lambda: any(r.frames > 5 for r in readers if r.track.kind == "video"), 10)
        for reader in readers:
            await reader.stop()
        await pc.close()


async def test_a_dropped_connection_is_rebuilt_and_the_call_resumes(site: Site, tmp_path: Path) -> None:
    token = await asyncio.to_thread(enrolled_token, site.url, site.enrollment_code)
    appointment = site.appointment_in(1)
    appointment_id = str(appointment["id"])
    recorder = Recorder()
    engine = make_engine(site.url, token, tmp_path, recorder)
    run = asyncio.create_task(engine.run())
    bot = ClerkBot(site.url, site.clerk.token, hold_s=1.5, answer_at_start=False)
    try:
        await asyncio.wait_for(answer_then_drop(site, appointment_id), 30)
        await wait_for(lambda: engine.session.reconnecting, 15)
        assert engine.session.phase is Phase.WAITING_FOR_CLERK
        report = await asyncio.wait_for(bot.serve_appointment(appointment_id, datetime.now(UTC)), 30)
        await wait_for(lambda: bool(recorder.records()), 10)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await bot.aclose()
    [record] = recorder.records()
    assert record.end_reason is EndReason.CLERK_HUNG_UP
    assert report.video_frames > 5 and record.remote_video_frames > 5


async def test_the_form_view_reaches_the_clerk_as_a_second_video_track(site: Site, tmp_path: Path) -> None:
    from kiosk_client.app import form_frames

    token = await asyncio.to_thread(enrolled_token, site.url, site.enrollment_code)
    appointment = site.appointment_in(1)
    recorder = Recorder()
    frames = form_frames()
    frames.set(np.full((800, 1280, 3), 200, dtype=np.uint8))  # what the form view's grabs would be
    engine = make_engine(site.url, token, tmp_path, recorder, form_frames=frames)
    run = asyncio.create_task(engine.run())
    # Three seconds of call: the two tracks' first frames at their working rate, even beside busy workers
    # (in 1.5 s, 9 and 10 form frames arrived, of ≈ 15 sent, with the suite's workers around).
    bot = ClerkBot(site.url, site.clerk.token, hold_s=3.0, answer_at_start=False)
    try:
        report = await asyncio.wait_for(bot.serve_appointment(str(appointment["id"]), datetime.now(UTC)), 30)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await bot.aclose()
    assert report.video_frames > 10  # the camera (here its placeholder card)
    assert report.form_frames > 10  # and, separately, the live form view
