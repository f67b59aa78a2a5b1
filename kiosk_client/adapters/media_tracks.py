"""aiortc media tracks: paced video from a frame source, a test tone, a mutable microphone, and the
readers that consume (and count) what the other side sends."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import av
import cv2
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

log = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms
# How often the kiosk's video senders make a keyframe of their own (the camera's and the form view's).
# aiortc 1.16's VP8 encoder makes one only every 3000 frames (`gop_size` in codecs/vpx.py, not
# configurable), at start and on PLI/FIR; a receiver that lost one and whose PLI was lost, or that
# does not ask (some don't), would otherwise stay frozen or black for minutes.
KEYFRAME_EVERY_S = 2.0


class FrameSource(Protocol):
    """Gives the newest BGR image (height × width × 3, uint8) to send."""

    def latest(self) -> np.ndarray[Any, np.dtype[np.uint8]]: ...


class ColourlessTrack:
    """A plain grey frame source (for benchmark peers whose own picture does not matter)."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        self._image = np.full((height, width, 3), 128, dtype=np.uint8)

    def latest(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        return self._image


class LatestFrame:
    """A one-slot mailbox between a producer thread (the Qt thread grabbing the form view) and a
    video track: the track always sends the newest image, or the fallback when there is none."""

    def __init__(self, fallback: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        self._fallback = fallback
        self._image: np.ndarray[Any, np.dtype[np.uint8]] | None = None
        self._lock = threading.Lock()
        self.updated_at = 0.0  # time.monotonic() of the newest image
        self.version = 0  # increases with every new image
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def set(self, image: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        with self._lock:
            self._image = image
            self.updated_at = time.monotonic()
            self.version += 1
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_settle, future)

    async def wait_newer(self, version: int) -> None:
        """Returns once an image newer than `version` is in (bound it with asyncio.timeout)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self.version != version:
                return
            self._waiters.append((loop, future))
        try:
            await future
        finally:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))

    def clear(self) -> None:
        with self._lock:
            self._image = None

    def latest(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        with self._lock:
            return self._image if self._image is not None else self._fallback


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class PacedVideoTrack(MediaStreamTrack):
    """Sends the source's newest image at a fixed frame rate; a blank image while disabled. Every
    `keyframe_every_s` of media time (None: never) a frame is marked as a keyframe, which aiortc's
    encoder obeys (see KEYFRAME_EVERY_S)."""

    kind = "video"

    def __init__(
        self,
        source: FrameSource,
        fps: int,
        disabled_image: np.ndarray[Any, np.dtype[np.uint8]] | None = None,
        on_frame: Callable[[np.ndarray[Any, np.dtype[np.uint8]]], None] | None = None,
        keyframe_every_s: float | None = KEYFRAME_EVERY_S,
    ) -> None:
        super().__init__()
        self._source = source
        self._period = 1.0 / fps
        self._keyframe_every = max(1, round(keyframe_every_s * fps)) if keyframe_every_s is not None else None
        self.keyframes_marked = 0
        self._disabled_image = disabled_image
        self._on_frame = on_frame
        self._start: float | None = None
        self._count = 0
        self._origin = 0.0
        self._max_fps = fps
        self.scale = 1.0
        self.enabled = True
        self.frames_sent = 0

    def step(self, scale: float, fps: int) -> None:
        """Fewer pixels and frames on a thin uplink (the shared uplink control decides): a smaller,
        slower picture rather than a frozen one."""
        self.scale = min(max(scale, 0.25), 1.0)
        period = 1.0 / min(max(fps, 1), self._max_fps)
        if period != self._period and self._start is not None:
            # The pacing goes on from now at the new rate (timestamps follow the clock, see recv).
            self._start = time.monotonic() - self._count * period
        self._period = period

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = self._origin = time.monotonic()
        else:
            self._count += 1
            delay = self._start + self._count * self._period - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        image = self._source.latest()
        if not self.enabled:
            image = self._disabled_image if self._disabled_image is not None else np.zeros_like(image)
        if self._on_frame is not None:
            self._on_frame(image)
        if self.scale < 1.0:
            height, width = image.shape[:2]
            size = (max(16, int(width * self.scale) // 2 * 2), max(16, int(height * self.scale) // 2 * 2))
            image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        if self._keyframe_every is not None and self._count % self._keyframe_every == 0:
            # In the encoder's own format: aiortc converts other formats into a new frame, which
            # would lose the mark. Only these frames: the others are converted on aiortc's encoder
            # thread, off the event loop.
            frame = frame.reformat(format="yuv420p")
            frame.pict_type = av.video.frame.PictureType.I
            self.keyframes_marked += 1
        frame.pts = int((time.monotonic() - self._origin) * VIDEO_CLOCK_RATE)
        frame.time_base = VIDEO_TIME_BASE
        self.frames_sent += 1
        return frame


class PushedVideoTrack(MediaStreamTrack):
    """Sends a new image as soon as it arrives (up to `max_fps`), and otherwise repeats the last one at
    `fps` as a keepalive: a change reaches the clerk without waiting for a pacing tick, and an
    unchanged form costs little encoding.

    A browser that starts decoding without a keyframe shows nothing (a black form view, once ≈40 s)
    until it gets one. The encoder makes one at the start and when asked (PLI/FIR), but an unchanged
    page makes none of its own: so the first frames and one every `keyframe_every_s` are marked as
    keyframes, and a receiver that missed one has a picture within that time, PLI or not.

    A page left alone (`still_after_s` without a change) is repeated only every `still_period_s`,
    with a keyframe every `still_keyframe_every_s`: the encoder has sharpened it by then, and ten
    repeats a second of an unchanged card cost 70 kbit/s (a keyframe every 2 s, 30 more), a tenth of
    an ADSL uplink that no one accounted for while documents went."""

    kind = "video"

    def __init__(
        self,
        frames: LatestFrame,
        fps: int = 10,
        max_fps: int = 30,
        keyframe_every_s: float = KEYFRAME_EVERY_S,
        still_after_s: float = 3.0,
        still_period_s: float = 1.0,
        still_keyframe_every_s: float = 5 * KEYFRAME_EVERY_S,
    ) -> None:
        super().__init__()
        self._frames = frames
        self._period = 1.0 / fps
        self._min_interval = 1.0 / max_fps
        self._keyframe_every = keyframe_every_s
        self._still_after = still_after_s
        self._still_period = max(still_period_s, self._period)
        self._still_keyframe_every = max(still_keyframe_every_s, keyframe_every_s)
        self._start: float | None = None
        self._last = 0.0
        self._last_keyframe = -math.inf
        self._sent_version = -1
        self._opening_keyframes = 3  # the call's first pictures: whoever receives them can start
        self.frames_sent = 0
        self.keyframes_marked = 0
        self.last_change = -math.inf
        self._moved = -math.inf  # the last change, or the start

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = self._moved = now  # the opening pictures go at the working rate
        else:
            while True:
                since = now - self._last
                period = self._still_period if self.still(now) else self._period
                if since >= period:
                    break  # the keepalive
                if self._frames.version != self._sent_version:
                    if since >= self._min_interval:
                        break
                    await asyncio.sleep(self._min_interval - since)
                else:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(period - since):
                            await self._frames.wait_newer(self._sent_version)
                now = time.monotonic()
        self._last = now
        if self._frames.version != self._sent_version:
            self.last_change = self._moved = now  # someone is working on the page (the uplink control's hint)
        self._sent_version = self._frames.version
        # In the encoder's own format: aiortc converts other formats into a new frame, which would
        # lose the keyframe mark.
        frame = av.VideoFrame.from_ndarray(self._frames.latest(), format="bgr24").reformat(format="yuv420p")
        keyframe_every = self._still_keyframe_every if self.still(now) else self._keyframe_every
        if self._opening_keyframes > 0 or now - self._last_keyframe >= keyframe_every:
            self._opening_keyframes = max(0, self._opening_keyframes - 1)
            self._last_keyframe = now
            frame.pict_type = av.video.frame.PictureType.I
            self.keyframes_marked += 1
        frame.pts = int((now - self._start) * VIDEO_CLOCK_RATE)
        frame.time_base = VIDEO_TIME_BASE
        self.frames_sent += 1
        return frame

    def still(self, now: float) -> bool:
        """The page has not changed for `still_after_s` (nor has the call just started)."""
        return now - self._moved >= self._still_after


class ToneTrack(MediaStreamTrack):
    """A sine tone (the clerk bot's voice), 48 kHz mono, 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, level: float = 0.2) -> None:
        super().__init__()
        self._frequency = frequency
        self._level = level
        self._start: float | None = None
        self._samples = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + self._samples / AUDIO_RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        t = (np.arange(AUDIO_SAMPLES) + self._samples) / AUDIO_RATE
        pcm = (np.sin(2 * math.pi * self._frequency * t) * self._level * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._samples += AUDIO_SAMPLES
        return frame


class SilenceTrack(ToneTrack):
    """Silence at the same format, when there is no microphone."""

    def __init__(self) -> None:
        super().__init__(level=0.0)


class MutableAudioTrack(MediaStreamTrack):
    """Forwards a source audio track; sends silence of the same shape while muted."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self._source = source
        self.enabled = True

    async def recv(self) -> av.AudioFrame:
        frame = await self._source.recv()
        assert isinstance(frame, av.AudioFrame)
        if not self.enabled:
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
        return frame

    def stop(self) -> None:
        self._source.stop()
        super().stop()


STALL_S = 0.2  # a gap the eye sees as a freeze (the benchmarks' measure too)
STALLS_KEPT = 1000


class TrackReader:
    """Reads every frame of a received track (aiortc needs that, or memory grows), counts them and
    hands each to an optional callback."""

    def __init__(self, track: MediaStreamTrack, on_frame: Callable[[Any], None] | None = None) -> None:
        self.track = track
        self.frames = 0
        self.first_at: float | None = None
        self.last_at: float | None = None  # wall clock of the latest frame: a stall shows as it ages
        # Freezes (gaps over STALL_S between frames), as (last frame before, first frame after).
        self.stalls: deque[tuple[float, float]] = deque(maxlen=STALLS_KEPT)
        self.on_first: Callable[[], None] | None = None
        self._on_frame = on_frame
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            self.frames += 1
            now = time.time()
            if self.last_at is not None and now - self.last_at > STALL_S:
                self.stalls.append((self.last_at, now))
            self.last_at = now
            if self.first_at is None:
                self.first_at = time.time()
                if self.on_first is not None:
                    self.on_first()
            if self._on_frame is not None:
                try:
                    self._on_frame(frame)
                except Exception:
                    log.exception("a frame callback failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def audio_level(frame: av.AudioFrame) -> float:
    """RMS level of a frame, 0.0 (silence) to 1.0 (full scale)."""
    samples = frame.to_ndarray().astype(np.float32)
    if samples.size == 0:
        return 0.0
    if frame.format.name.startswith("s16"):
        samples /= 32768.0
    return float(np.sqrt(np.mean(samples * samples)))


LIMITER_KNEE = 0.8  # of full scale: below it the gain is exact, above it peaks are rounded off


def apply_gain(frame: av.AudioFrame, gain: float) -> av.AudioFrame:
    """The frame made louder or softer by `gain`, in its own format, layout and timing. Above the
    knee a soft limiter bends peaks towards full scale instead of clipping them (a loud clerk at
    +12 dB would otherwise crackle)."""
    if gain == 1.0:
        return frame
    samples: np.ndarray[Any, Any] = frame.to_ndarray()
    integer = bool(np.issubdtype(samples.dtype, np.integer))
    scale = float(np.iinfo(samples.dtype.type).max) if integer else 1.0
    x = samples.astype(np.float32) * (gain / scale)
    magnitude = np.abs(x)
    over = magnitude > LIMITER_KNEE
    if over.any():
        room = 1.0 - LIMITER_KNEE
        bent = LIMITER_KNEE + room * np.tanh((magnitude[over] - LIMITER_KNEE) / room)
        x[over] = np.sign(x[over]) * bent
    out: np.ndarray[Any, Any] = (
        np.round(x * scale).astype(samples.dtype) if integer else x.astype(samples.dtype)
    )
    louder = av.AudioFrame.from_ndarray(out, format=frame.format.name, layout=frame.layout.name)
    louder.sample_rate = frame.sample_rate
    louder.pts = frame.pts
    louder.time_base = frame.time_base
    return louder


class GainAudioTrack(MediaStreamTrack):
    """The gain stage between the clerk's received voice and the speaker (« Son + » / « Son − »)."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, gain: float = 1.0) -> None:
        super().__init__()
        self._source = source
        self.gain = gain

    async def recv(self) -> av.AudioFrame:
        frame = await self._source.recv()
        assert isinstance(frame, av.AudioFrame)
        return apply_gain(frame, self.gain)

    def stop(self) -> None:
        self._source.stop()
        super().stop()


class LevelMeter:
    """Reads a microphone's frames and reports its loudest recent level a few times a second (the
    « Vous m'entendez ? » bar), until stopped."""

    def __init__(
        self, track: MediaStreamTrack, report: Callable[[float], None], every_s: float = 0.1
    ) -> None:
        self._track = track
        self._report = report
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        peak, since = 0.0, time.monotonic()
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, av.AudioFrame):
                peak = max(peak, audio_level(frame))
            if time.monotonic() - since >= self._every_s:
                self._report(min(1.0, peak))
                peak, since = 0.0, time.monotonic()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._track.stop()
