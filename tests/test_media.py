"""Camera fallbacks and media tracks: a missing camera never crashes, it sends a labelled placeholder."""

from __future__ import annotations

import itertools
import time

import av
import numpy as np

from kiosk_client.adapters.camera_opencv import OpenCvCamera, PlaceholderSource, load_card, probe_camera
from kiosk_client.adapters.media_tracks import (
    LatestFrame,
    MutableAudioTrack,
    PacedVideoTrack,
    PushedVideoTrack,
    ToneTrack,
    audio_level,
)


def test_the_placeholder_is_the_labelled_card() -> None:
    image = PlaceholderSource(640, 480).latest()
    assert image.shape == (480, 640, 3)
    assert image.std() > 10  # text on a background, not a blank frame
    assert (image == load_card("camera-unavailable.png", 640, 480)).all()


def test_a_missing_camera_sends_the_placeholder_and_says_so() -> None:
    camera = OpenCvCamera("/dev/video-does-not-exist", 640, 480, 20)
    camera.start()
    try:
        deadline = time.monotonic() + 5
        while camera.status == "starting" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert camera.status == "missing"
        assert (camera.latest() == PlaceholderSource(640, 480).latest()).all()
    finally:
        camera.stop()
    assert probe_camera("/dev/video-does-not-exist") == "missing"
    assert probe_camera(None) == "disabled"


async def test_video_is_paced_and_camera_off_sends_the_card() -> None:
    source = PlaceholderSource(320, 240)
    off = np.full((240, 320, 3), 7, dtype=np.uint8)
    track = PacedVideoTrack(source, fps=20, disabled_image=off)
    start = time.monotonic()
    for _ in range(11):
        frame = await track.recv()
    assert 0.4 < time.monotonic() - start < 0.8  # 10 intervals at 20 fps
    track.enabled = False
    frame = await track.recv()
    assert (frame.to_ndarray(format="bgr24") == 7).all()


async def test_muting_sends_silence_of_the_same_shape() -> None:
    mic = MutableAudioTrack(ToneTrack(440, level=0.5))
    loud = await mic.recv()
    mic.enabled = False
    quiet = await mic.recv()
    assert audio_level(loud) > 0.2 and audio_level(quiet) == 0.0
    assert quiet.samples == loud.samples


async def test_the_form_track_sends_a_change_at_once_and_repeats_at_the_keepalive_rate() -> None:
    import asyncio
    import threading

    fallback = np.zeros((8, 8, 3), np.uint8)
    frames = LatestFrame(fallback)
    track = PushedVideoTrack(frames, fps=5, max_fps=30)
    await track.recv()  # the first frame goes at once
    started = time.monotonic()
    await track.recv()  # nothing new: the keepalive, one period later
    assert 0.18 <= time.monotonic() - started < 0.35

    changed = np.full((8, 8, 3), 200, np.uint8)
    await asyncio.sleep(0.05)
    threading.Timer(0.01, frames.set, (changed,)).start()  # from another thread, as Qt does
    started = time.monotonic()
    frame = await track.recv()
    assert time.monotonic() - started < 0.1  # not held until the keepalive
    assert abs(int(frame.to_ndarray(format="bgr24")[0, 0, 0]) - 200) <= 6  # the new image, through YUV

    frames.set(fallback)  # a second change inside the minimum interval waits for it, no longer
    started = time.monotonic()
    await track.recv()
    assert time.monotonic() - started < 1 / 30 + 0.03
    track.stop()


async def test_the_form_track_gives_a_late_receiver_a_keyframe_even_on_an_unchanged_page() -> None:
    """The clerk's browser shows nothing until a keyframe: the track's first pictures are keyframes,
    and an unchanged page still gets one every `keyframe_every_s` (checked in aiortc's VP8 output,
    not just in the mark)."""
    from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor

    page = np.full((240, 320, 3), 230, np.uint8)
    page[100:140, 40:280] = 20  # some text
    frames = LatestFrame(page)
    track = PushedVideoTrack(frames, fps=20, max_fps=30, keyframe_every_s=0.5)
    encoder = Vp8Encoder()

    def is_keyframe(frame: object) -> bool:
        payloads, _ = encoder.encode(frame)  # type: ignore[arg-type]
        _, data = VpxPayloadDescriptor.parse(payloads[0])
        return data[0] & 1 == 0  # the VP8 frame tag's P bit: 0 for a keyframe

    kinds = [is_keyframe(await track.recv()) for _ in range(30)]  # 1.5 s of an unchanged page
    track.stop()
    assert kinds[:3] == [True, True, True]  # whoever receives the opening pictures can start
    later = [i for i, key in enumerate(kinds) if key and i >= 3]
    assert 2 <= len(later) <= 4, kinds  # about one every 0.5 s (10 frames)
    assert all(b - a >= 8 for a, b in itertools.pairwise(later)), kinds
    assert kinds.count(False) >= 20  # the rest are cheap delta frames


async def test_the_form_track_slows_down_on_a_page_left_alone_and_speeds_up_at_a_change() -> None:
    """An unchanged page costs a repeat every `still_period_s` and a keyframe every
    `still_keyframe_every_s` once `still_after_s` passed without a change; a change is sent at once
    and the working rate comes back with it."""
    page = np.full((48, 64, 3), 230, np.uint8)
    frames = LatestFrame(page)
    track = PushedVideoTrack(
        frames,
        fps=20,
        max_fps=30,
        keyframe_every_s=0.2,
        still_after_s=0.5,
        still_period_s=0.25,
        still_keyframe_every_s=1.0,
    )

    async def sent_for(seconds: float) -> list[tuple[float, bool]]:
        sent: list[tuple[float, bool]] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            frame = await track.recv()
            sent.append((time.monotonic(), frame.pict_type == av.video.frame.PictureType.I))
        return sent

    working = await sent_for(0.45)  # the call's start counts as a change: the working rate
    assert len(working) >= 7  # 20 a second
    still = await sent_for(2.2)
    assert track.still(time.monotonic())
    quiet = [at for at, _ in still if at > still[0][0] + 0.2]
    gaps = [b - a for a, b in itertools.pairwise(quiet)]
    assert gaps and min(gaps) >= 0.2 and len(quiet) <= 10, gaps  # one every 0.25 s, not 20 a second
    keyframes = [at for at, key in still if key and at > still[0][0] + 0.2]
    assert 1 <= len(keyframes) <= 3, keyframes  # about one a second, not five
    frames.set(np.full((48, 64, 3), 20, np.uint8))
    started = time.monotonic()
    await track.recv()
    assert time.monotonic() - started < 0.1  # the change goes at once
    assert not track.still(time.monotonic())
    again = await sent_for(0.3)
    assert len(again) >= 4  # and the working rate is back
    track.stop()
