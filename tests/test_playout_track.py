"""The playout stage as the kiosk wires it (adapters/playout_aiortc.py), on frames from a fake track:
held to their due time, handed on in order, the voice skipping quiet frames to shed delay."""

from __future__ import annotations

import asyncio
import fractions
import itertools
import time
from typing import Any

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from kiosk_client.adapters.playout_aiortc import PlayoutTrack, receiver_recoveries
from kiosk_client.adapters.video_recovery import RecoveryCounters
from kiosk_client.core.playout import PlayoutSchedule


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FedTrack(MediaStreamTrack):
    """Frames put in by the test, as a decoder gives them."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def recv(self) -> Any:
        frame = await self.queue.get()
        if frame is None:
            raise MediaStreamError
        return frame


def video_frame(media_s: float) -> av.VideoFrame:
    frame = av.VideoFrame(16, 16, "yuv420p")
    frame.pts = round(media_s * 90_000)
    frame.time_base = fractions.Fraction(1, 90_000)
    return frame


def audio_frame(media_s: float, level: float) -> av.AudioFrame:
    pcm = np.full((1, 960), int(level * 32767), dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = 48_000
    frame.pts = round(media_s * 48_000)
    frame.time_base = fractions.Fraction(1, 48_000)
    return frame


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class FixedSchedule(PlayoutSchedule):
    """A delay the test sets: due = media time + the first frame's transit + `hold_s`."""

    def __init__(self, hold_s: float) -> None:
        super().__init__()
        self.hold_s = hold_s
        self._base: float | None = None

    def due(self, stream: str, arrival: float, media_s: float) -> float:  # type: ignore[override]
        if self._base is None:
            self._base = arrival - media_s
        due = media_s + self._base + self.hold_s
        if due < arrival:
            self.late_frames += 1
        return max(due, arrival)


async def test_frames_are_held_to_their_due_time_and_a_late_one_goes_at_once() -> None:
    source = FedTrack("video")
    schedule = FixedSchedule(0.2)  # as if the link had taught it
    stage = PlayoutTrack(source, schedule)
    got: list[tuple[float, int]] = []

    async def read() -> None:
        while True:
            frame = await stage.recv()
            got.append((time.monotonic(), frame.pts))

    reader = asyncio.get_running_loop().create_task(read())
    start = time.monotonic()
    await source.queue.put(video_frame(0.0))
    await asyncio.sleep(0.05)
    assert got == []  # held
    await asyncio.sleep(0.2)
    assert [pts for _, pts in got] == [0]
    assert got[0][0] - start == pytest.approx(0.2, abs=0.05)
    await asyncio.sleep(0.5)  # the next frame (captured 50 ms after) comes 0.7 s late
    await source.queue.put(video_frame(0.05))
    await settle()
    assert [pts for _, pts in got] == [0, 4500]
    assert schedule.late_frames == 1
    await source.queue.put(None)
    await asyncio.sleep(0.01)
    assert reader.done() and isinstance(reader.exception(), MediaStreamError)
    assert stage.readyState == "ended"


async def test_the_video_stage_reads_the_receivers_recoveries() -> None:
    counters = RecoveryCounters()

    class Receiver:
        recovery = counters

        def round_trip(self) -> float:
            return 0.6

    probe = receiver_recoveries(Receiver())
    assert probe is not None and probe() == (0, 0.6)
    assert receiver_recoveries(object()) is None  # aiortc's own (audio) receivers
    source, schedule = FedTrack("video"), PlayoutSchedule()
    stage = PlayoutTrack(source, schedule, probe)
    task = asyncio.get_running_loop().create_task(stage.recv())
    await source.queue.put(video_frame(0.0))
    await settle()
    counters.recovered = 3
    await source.queue.put(video_frame(0.05))
    await task
    now = time.monotonic()
    assert schedule.delay.recovering(now) and schedule.delay.round_trip_s == 0.6
    await stage.aclose()


async def test_the_voice_sheds_delay_on_quiet_frames_and_never_overlaps() -> None:
    clock = FakeClock()
    source = FedTrack("audio")
    schedule = FixedSchedule(0.2)
    stage = PlayoutTrack(source, schedule, clock=clock)
    task = asyncio.get_running_loop().create_task(stage.recv())
    # Three loud frames at their pace, then the delay falls by 45 ms (as after a long-RTT spell).
    for i in range(3):
        await source.queue.put(audio_frame(i * 0.02, 0.5))
        await settle()
        clock.now += 0.02
    schedule.hold_s -= 0.045
    for i in range(3, 6):  # loud: played end to end, none skipped
        await source.queue.put(audio_frame(i * 0.02, 0.5))
        await settle()
        clock.now += 0.02
    assert stage.skipped == 0
    for i in range(6, 12):  # quiet: skipped until the voice is back within half a frame
        await source.queue.put(audio_frame(i * 0.02, 0.0))
        await settle()
        clock.now += 0.02
    assert stage.skipped == 2
    dues = [due for due, _ in stage._frames]
    assert all(b - a == pytest.approx(0.02) for a, b in itertools.pairwise(dues))
    task.cancel()
    await stage.aclose()


async def test_the_voice_skips_whatever_it_holds_when_far_ahead() -> None:
    clock = FakeClock()
    source = FedTrack("audio")
    schedule = FixedSchedule(0.5)
    stage = PlayoutTrack(source, schedule, clock=clock)
    task = asyncio.get_running_loop().create_task(stage.recv())
    await source.queue.put(audio_frame(0.0, 0.5))
    await settle()
    schedule.hold_s -= 0.3
    clock.now += 0.02
    await source.queue.put(audio_frame(0.02, 0.5))
    await settle()
    assert stage.skipped == 1
    task.cancel()
    await stage.aclose()
