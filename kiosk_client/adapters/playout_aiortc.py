"""The playout stage on the clerk's picture and voice as the kiosk receives them: each decoded frame is
held until its due time (core/playout.py says when), so a retransmitted packet arrives before its frame
is shown and the picture moves on evenly instead of freezing a round trip on every loss.

`PlayoutTrack` wraps a received aiortc track: a task takes every frame from it as soon as the decoder
gives it (its arrival time is the measure), asks the shared schedule when to show it, and `recv()`
gives it at that time. The video track also tells the schedule how many packets the receiver
recovered by NACK and the round trip (adapters/video_recovery.py), which decide how much to hold.

The voice follows the picture's delay (lip sync). It cannot be stretched as a browser's NetEq does, so
it gains delay through a gap (once, when the picture's freeze gives the delay its step) and sheds it
by skipping frames: quiet ones while the excess is under AUDIO_MAX_AHEAD_S, any beyond it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from ..core.playout import PlayoutSchedule, Stream
from .media_tracks import audio_level

log = logging.getLogger(__name__)

# A frame this quiet is skipped unheard when the voice is ahead of its delay (speech has pauses).
QUIET_LEVEL = 0.01
AUDIO_MAX_AHEAD_S = 0.12  # held longer than the delay asks: a frame is skipped whatever it holds

RecoveryProbe = Callable[[], tuple[int, float]]  # (packets recovered so far, round trip s)


class PlayoutTrack(MediaStreamTrack):
    """`source`'s frames, each given by `recv()` at its due time on `schedule`."""

    def __init__(
        self,
        source: MediaStreamTrack,
        schedule: PlayoutSchedule,
        recoveries: RecoveryProbe | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.kind = source.kind
        self._stream: Stream = "video" if source.kind == "video" else "audio"
        self._source = source
        self._schedule = schedule
        self._recoveries = recoveries
        self._clock = clock
        self._frames: deque[tuple[float, Any]] = deque()
        self._arrived = asyncio.Event()
        self._ended = False
        self._task: asyncio.Task[None] | None = None
        self._audio_next: float | None = None  # when the voice's next frame would start playing
        self.skipped = 0  # voice frames skipped to shed delay

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._take())
        while not self._frames:
            if self._ended:
                self.stop()
                raise MediaStreamError
            self._arrived.clear()
            await self._arrived.wait()
        wait = self._frames[0][0] - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        return self._frames.popleft()[1]

    async def _take(self) -> None:
        try:
            while True:
                frame = await self._source.recv()
                self._add(frame)
        except MediaStreamError:
            pass
        except Exception:
            log.exception("the %s playout stage stopped", self.kind)
        finally:
            self._ended = True
            self._arrived.set()

    def _add(self, frame: Any) -> None:
        now = self._clock()
        if frame.pts is None or frame.time_base is None:
            self._push(now, frame)  # nothing to schedule by: as it comes
            return
        if self._recoveries is not None:
            recovered, round_trip = self._recoveries()
            self._schedule.delay.recoveries(now, recovered, round_trip)
        late_before = self._schedule.late_frames
        media_s = float(frame.pts * frame.time_base)
        due = self._schedule.due(self._stream, now, media_s)
        if self._schedule.late_frames != late_before:
            delay = self._schedule.delay
            log.debug(
                "late video frame (media %.3f s, %.0f ms after the quickest): delay now %.0f ms, target %.0f ms",
                media_s,
                self._schedule.last_excess_s * 1000,
                delay.current_s * 1000,
                delay.target_s(now) * 1000,
            )
        if self._stream == "audio" and isinstance(frame, av.AudioFrame):
            start = self._audio_start(frame, due)
            if start is None:
                self.skipped += 1
                log.debug(
                    "voice frame skipped (media %.3f s, %.0f ms after the quickest, due in %.0f ms)",
                    media_s,
                    self._schedule.last_excess_s * 1000,
                    (due - now) * 1000,
                )
                return
            due = start
        self._push(due, frame)

    def _audio_start(self, frame: av.AudioFrame, due: float) -> float | None:
        """When a voice frame starts playing: not before the previous one ended (a sound card plays
        them end to end). None: skip it, the voice is ahead of the delay (it fell)."""
        duration = frame.samples / frame.sample_rate if frame.sample_rate else 0.0
        start = due if self._audio_next is None else max(due, self._audio_next)
        ahead = start - due  # held longer than the delay asks
        if ahead >= duration / 2 and (ahead > AUDIO_MAX_AHEAD_S or audio_level(frame) < QUIET_LEVEL):
            return None
        self._audio_next = start + duration
        return start

    def _push(self, due: float, frame: Any) -> None:
        if self._frames and due < self._frames[-1][0]:
            due = self._frames[-1][0]  # in order, whatever the delay did meanwhile
        self._frames.append((due, frame))
        self._arrived.set()

    def stop(self) -> None:
        super().stop()
        self._source.stop()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def aclose(self) -> None:
        task = self._task
        self.stop()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def receiver_recoveries(receiver: Any) -> RecoveryProbe | None:
    """The probe for a receiver with the kiosk's loss recovery (video), None for any other."""
    counters = getattr(receiver, "recovery", None)
    round_trip = getattr(receiver, "round_trip", None)
    if counters is None or round_trip is None:
        return None
    return lambda: (int(counters.recovered), float(round_trip()))
