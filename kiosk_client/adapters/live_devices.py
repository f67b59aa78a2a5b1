"""The staff's live device check: the camera and the microphone a call would open (the same settings,
the same way), opened for the staff panel alone — its preview and its level bar — and released when
the check stops, so the camera's light goes off. Nothing is kept: each picture and each level goes to
the sink and the next one replaces it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import av
import cv2
import numpy as np
from aiortc.contrib.media import MediaPlayer

from ..core.models import RgbImage
from ..core.ports import DeviceCheckSink
from ..core.settings import AudioSettings, CameraSettings
from .camera_opencv import OpenCvCamera
from .media_tracks import FrameSource, LevelMeter
from .rtc_aiortc import MicrophoneOpener, alsa_microphone

log = logging.getLogger(__name__)

PREVIEW_FPS = 10
PREVIEW_MAX_WIDTH = 640  # the panel shows it smaller than this
CAMERA_OPEN_WAIT_S = 4.0  # a USB camera takes about a second to open; a missing one answers at once


class OpenCvLiveDevices:
    """The core's LiveDevices port over opencv (the camera, on its own capture thread) and aiortc's
    MediaPlayer (the microphone, read by a LevelMeter on the engine's loop)."""

    # A source to show instead of the camera the settings name, as the call sends it (benches, tests).
    camera_source: FrameSource | None = None

    def __init__(
        self,
        camera: CameraSettings,
        audio: AudioSettings,
        sink: DeviceCheckSink,
        open_microphone: MicrophoneOpener = alsa_microphone,
        fps: int = PREVIEW_FPS,
    ) -> None:
        self._camera_settings = camera
        self._audio_settings = audio
        self._sink = sink
        self._open_microphone = open_microphone
        self._period = 1.0 / fps
        self._camera: OpenCvCamera | None = None
        self._player: MediaPlayer | None = None
        self._meter: LevelMeter | None = None
        self._pump: asyncio.Task[None] | None = None
        self.frames_sent = 0

    @property
    def running(self) -> bool:
        return self._pump is not None

    async def start(self) -> dict[str, str]:
        await self.stop()
        states = {"camera": await self._open_camera(), "microphone": await self._open_microphone_()}
        if states["microphone"] != "ok":
            self._sink.check_level(None)
        self._pump = asyncio.get_running_loop().create_task(self._send_pictures())
        return states

    async def stop(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        meter, self._meter = self._meter, None
        if meter is not None:
            meter.stop()  # stops the player's track: the player closes the device when none is left
        player, self._player = self._player, None
        if player is not None and player.audio is not None:
            with contextlib.suppress(Exception):
                player.audio.stop()
        camera, self._camera = self._camera, None
        if camera is not None:
            await asyncio.to_thread(camera.stop)  # its thread releases the capture before it ends

    async def _open_camera(self) -> str:
        settings = self._camera_settings
        if self.camera_source is not None:
            return "ok"
        if settings.device is None:
            return "disabled"
        camera = OpenCvCamera(settings.device, settings.width, settings.height, settings.fps)
        camera.start()
        self._camera = camera
        for _ in range(round(CAMERA_OPEN_WAIT_S / 0.05)):  # its capture thread says how it went
            if camera.status != "starting":
                break
            await asyncio.sleep(0.05)
        return "ok" if camera.status == "ok" else "missing"

    async def _open_microphone_(self) -> str:
        device = self._audio_settings.microphone
        if device is None:
            return "disabled"
        try:
            player = await asyncio.to_thread(self._open_microphone, device)
        except (av.FFmpegError, OSError) as exc:
            log.warning("live check: microphone %r unavailable: %s", device, exc)
            return "missing"
        if player.audio is None:
            return "missing"
        self._player = player
        self._meter = LevelMeter(player.audio, self._sink.check_level, every_s=self._period)
        self._meter.start()
        return "ok"

    def _picture(self) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
        if self.camera_source is not None:
            return self.camera_source.latest()
        return self._camera.frame() if self._camera is not None else None

    async def _send_pictures(self) -> None:
        shown_none = False
        while True:
            image = self._picture()
            if image is None:
                if not shown_none:  # said once, not ten times a second
                    self._sink.check_frame(None)
                    shown_none = True
            else:
                shown_none = False
                self._sink.check_frame(to_preview(image))
                self.frames_sent += 1
            await asyncio.sleep(self._period)


def to_preview(image: np.ndarray[Any, np.dtype[np.uint8]]) -> RgbImage:
    """A BGR camera picture as the panel draws it: RGB, at most PREVIEW_MAX_WIDTH wide."""
    height, width = image.shape[:2]
    if width > PREVIEW_MAX_WIDTH:
        size = (PREVIEW_MAX_WIDTH, max(1, height * PREVIEW_MAX_WIDTH // width))
        image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return RgbImage(rgb.shape[1], rgb.shape[0], rgb.tobytes())
