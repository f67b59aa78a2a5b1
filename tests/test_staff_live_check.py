"""The staff's live device check: the engine opens the call's camera and microphone for the panel and
releases them (page closed, panel closed, time limit, a session, a reset check); the opencv/aiortc
adapter really reads a camera (a video file opencv opens as one, with the synthetic face) and a
microphone (ffmpeg's generated tone, or silence) and really closes them."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
from aiortc.contrib.media import MediaPlayer

from kiosk_client.adapters import camera_opencv
from kiosk_client.adapters.fakes import FakeLiveDevices
from kiosk_client.adapters.live_devices import OpenCvLiveDevices
from kiosk_client.core.engine import LiveCheck
from kiosk_client.core.events import LiveCheckEnded
from kiosk_client.core.models import RgbImage
from kiosk_client.core.session import Phase
from kiosk_client.core.settings import AudioSettings, CameraSettings
from kiosk_client.tools.synthetic_face import face_frames

from . import test_engine
from .test_engine import Harness
from .test_staff_access import central_with_pin, opened, walk_in

harness = test_engine.harness  # the engine rig's fixture


class Seen:
    """A DeviceCheckSink that keeps what reached it (the test's own record; the kiosk keeps nothing)."""

    def __init__(self) -> None:
        self.frames: list[RgbImage | None] = []
        self.levels: list[float | None] = []

    def check_frame(self, image: RgbImage | None) -> None:
        self.frames.append(image)

    def check_level(self, level: float | None) -> None:
        self.levels.append(level)


def ended(h: Harness) -> list[str]:
    return [e.reason for e in h.events if isinstance(e, LiveCheckEnded)]


def with_live_devices(h: Harness, limit_s: float = 60.0) -> FakeLiveDevices:
    live = FakeLiveDevices(Seen())
    h.engine._live = live  # as build_engine gives a kiosk with a screen
    h.engine._live_check_s = limit_s
    return live


# -- the engine


async def test_the_live_check_opens_the_devices_and_releases_them_when_the_page_or_panel_closes(
    harness: Callable[..., Harness],
) -> None:
    h = harness(central_with_pin())
    live = with_live_devices(h)
    assert await h.engine.staff_live_check() == LiveCheck({}, "panel_closed")  # not before the PIN
    assert live.starts == 0
    await opened(h)
    check = await h.engine.staff_live_check()
    assert check.refused is None and check.devices == {"camera": "ok", "microphone": "ok"}
    assert live.is_open and h.engine.live_check_running
    await h.until(lambda: live.frames_sent >= 3)
    await h.engine.staff_stop_live_check()  # « Retour »
    assert not live.is_open and live.stops == 1 and ended(h) == ["stopped"]
    sent = live.frames_sent
    await asyncio.sleep(0.3)
    assert live.frames_sent == sent  # nothing is read any more

    await h.engine.staff_live_check()
    await h.engine.staff_live_check()  # asked again: the same devices, a fresh time limit
    assert live.starts == 2 and live.is_open
    await h.engine.staff_close()  # « Fermer »
    assert not live.is_open and ended(h)[-1] == "panel_closed"


async def test_the_live_check_stops_by_itself_after_its_time_limit_and_when_the_panel_idles_out(
    harness: Callable[..., Harness],
) -> None:
    h = harness(central_with_pin())
    live = with_live_devices(h, limit_s=0.6)
    await opened(h)
    check = await h.engine.staff_live_check()
    assert check.seconds == 0.6
    await asyncio.sleep(0.3)
    assert live.is_open
    await h.until(lambda: not live.is_open, within=2.0)
    assert ended(h) == ["time_limit"] and not h.engine.live_check_running

    h.engine._live_check_s = 60.0
    await h.engine.staff_live_check()
    h.engine.staff.close()  # as when nobody touched it for IDLE_CLOSE_S
    await h.until(lambda: not live.is_open, within=2.0)
    assert ended(h)[-1] == "panel_closed"


async def test_a_session_takes_the_devices_and_the_live_check_is_refused_meanwhile(
    harness: Callable[..., Harness],
) -> None:
    central = central_with_pin()
    central.walk_in_codes["123456"] = walk_in()
    h = harness(central)
    live = with_live_devices(h)
    await opened(h)
    await h.engine.staff_live_check()
    assert live.is_open
    assert await h.engine.staff_walk_in("123456") is None
    await h.until(lambda: bool(central.offers))
    assert not live.is_open and ended(h) == ["session"]  # released before the call opened them
    assert (await h.engine.staff_live_check()).refused == "in_use"
    assert live.starts == 1 and h.engine.session.phase is Phase.WAITING_FOR_CLERK


async def test_missing_devices_are_said_and_a_kiosk_without_a_live_check_says_so(
    harness: Callable[..., Harness],
) -> None:
    h = harness(central_with_pin())
    await opened(h)
    assert (await h.engine.staff_live_check()).refused == "unavailable"  # no LiveDevices given
    live = with_live_devices(h)
    live.devices = {"camera": "missing", "microphone": "missing"}
    check = await h.engine.staff_live_check()
    assert check.refused is None and check.devices == {"camera": "missing", "microphone": "missing"}
    await asyncio.sleep(0.2)
    sink = live._sink
    assert isinstance(sink, Seen) and sink.frames == [None] and sink.levels == [None]
    await h.engine.staff_stop_live_check()
    assert not live.is_open


# -- the adapter, with a camera and a microphone that opencv and ffmpeg really open


class CaptureSpy:
    """cv2.VideoCapture, counting the captures opened and released."""

    opened: ClassVar[list[Any]] = []
    released = 0

    def __new__(cls, *args: Any) -> Any:
        capture = cv2.VideoCapture(*args)
        spy = cls.Wrapped(capture)
        CaptureSpy.opened.append(spy)
        return spy

    class Wrapped:
        def __init__(self, capture: Any) -> None:
            self._capture = capture

        def release(self) -> None:
            CaptureSpy.released += 1
            self._capture.release()

        def __getattr__(self, name: str) -> Any:
            return getattr(self._capture, name)


@pytest.fixture
def capture_spy(monkeypatch: pytest.MonkeyPatch) -> type[CaptureSpy]:
    CaptureSpy.opened = []
    CaptureSpy.released = 0

    class Cv2:
        def __getattr__(self, name: str) -> Any:
            return CaptureSpy if name == "VideoCapture" else getattr(cv2, name)

    monkeypatch.setattr(camera_opencv, "cv2", Cv2())
    return CaptureSpy


def face_video(path: Path) -> Path:
    """Two seconds of the synthetic face as a file opencv opens like a camera (and reopens at its end)."""
    frames = face_frames(seconds=2.0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 20, (640, 480))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def lavfi(device: str) -> MediaPlayer:
    return MediaPlayer(device, format="lavfi")


LOUD = "sine=frequency=440:sample_rate=48000"  # amplitude 1/8: about -21 to -24 dBFS once read
SILENT = "anullsrc=r=48000:cl=mono"


async def test_the_adapter_shows_the_camera_at_10_fps_and_releases_it(
    tmp_path: Path, capture_spy: type[CaptureSpy]
) -> None:
    seen = Seen()
    camera = CameraSettings(device=str(face_video(tmp_path / "face.avi")))
    live = OpenCvLiveDevices(
        camera, AudioSettings(microphone=LOUD, speaker=None), seen, open_microphone=lavfi
    )
    states = await live.start()
    try:
        assert states == {"camera": "ok", "microphone": "ok"}
        await asyncio.sleep(0.3)  # the first pictures
        before = len([f for f in seen.frames if f is not None])
        await asyncio.sleep(1.0)
        pictures = [f for f in seen.frames if f is not None]
        assert 7 <= len(pictures) - before <= 13  # ≈10 a second
    finally:
        await live.stop()
    picture = pictures[-1]
    assert (picture.width, picture.height) == (640, 480)
    pixels = np.frombuffer(picture.data, np.uint8).reshape(480, 640, 3)
    assert pixels.std() > 20  # a room and a face, not a blank card
    assert len(capture_spy.opened) >= 1 and capture_spy.released == len(capture_spy.opened)  # light off
    assert not live.running
    count = len(seen.frames), len(seen.levels)
    await asyncio.sleep(0.3)
    assert (len(seen.frames), len(seen.levels)) == count  # nothing read once stopped


async def levels_of(source: str) -> list[float | None]:
    seen = Seen()
    settings = AudioSettings(microphone=source, speaker=None)
    live = OpenCvLiveDevices(CameraSettings(device=None), settings, seen, open_microphone=lavfi)
    states = await live.start()
    assert states == {"camera": "disabled", "microphone": "ok"}
    try:
        await asyncio.sleep(0.8)
    finally:
        await live.stop()
    return seen.levels


async def test_the_level_follows_a_loud_and_a_silent_microphone() -> None:
    loud = await levels_of(LOUD)
    silent = await levels_of(SILENT)
    assert len(loud) >= 4 and len(silent) >= 4  # ≈10 a second
    assert all(level is not None and 0.04 < level < 0.15 for level in loud)
    assert all(level == 0.0 for level in silent)
    decibels = 20 * math.log10(max(level or 0.0 for level in loud))
    assert -28 < decibels < -16  # what the panel writes beside the bar


async def test_the_adapter_says_when_camera_and_microphone_are_missing(capture_spy: type[CaptureSpy]) -> None:
    def broken(device: str) -> MediaPlayer:
        raise OSError("no such ALSA device")

    seen = Seen()
    live = OpenCvLiveDevices(
        CameraSettings(device="/dev/video-not-there"),
        AudioSettings(microphone="hw:9", speaker=None),
        seen,
        open_microphone=broken,
    )
    states = await live.start()
    await asyncio.sleep(0.3)
    await live.stop()
    assert states == {"camera": "missing", "microphone": "missing"}
    assert seen.frames == [None] and seen.levels == [None]  # said once, calmly
    assert capture_spy.released == len(capture_spy.opened)
