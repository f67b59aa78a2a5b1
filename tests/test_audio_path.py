"""The call's audio path with real frames: the volume's gain stage before the speaker, and the
microphone's level while the citizen waits (a generated tone stands in for the microphone, a WAV file
for the speaker: the same aiortc MediaPlayer and MediaRecorder the kiosk opens on ALSA)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.contrib.media import MediaPlayer, MediaRecorder

from kiosk_client.adapters.media_tracks import GainAudioTrack, ToneTrack, apply_gain, audio_level
from kiosk_client.adapters.rtc_aiortc import AiortcCallFactory
from kiosk_client.core.settings import AudioSettings, CameraSettings
from kiosk_client.core.volume import DEFAULT_LEVEL, MAX_LEVEL, gain

TONE = "sine=frequency=440:sample_rate=48000"


def lavfi_microphone(device: str) -> MediaPlayer:
    return MediaPlayer(device, format="lavfi")


async def test_each_step_changes_the_loudness_of_real_frames() -> None:
    frame = await ToneTrack(level=0.1).recv()
    levels = [audio_level(apply_gain(frame, gain(level))) for level in range(1, MAX_LEVEL + 1)]
    assert levels == sorted(levels) and len(set(levels)) == MAX_LEVEL  # every step is a change
    assert audio_level(apply_gain(frame, gain(DEFAULT_LEVEL))) == pytest.approx(audio_level(frame))
    louder = apply_gain(frame, gain(DEFAULT_LEVEL + 1))
    assert audio_level(louder) / audio_level(frame) == pytest.approx(10 ** (4 / 20), rel=0.01)  # +4 dB
    assert (louder.format.name, louder.layout.name, louder.samples) == ("s16", "mono", frame.samples)
    assert (louder.pts, louder.sample_rate, louder.time_base) == (
        frame.pts,
        frame.sample_rate,
        frame.time_base,
    )


async def test_a_loud_voice_made_louder_is_limited_not_wrapped_around() -> None:
    frame = await ToneTrack(level=0.9).recv()
    loudest = apply_gain(frame, gain(MAX_LEVEL)).to_ndarray()
    original = frame.to_ndarray()
    assert np.abs(loudest).max() <= 32767
    # Wrapping around would flip the sign of the peaks; the limiter keeps every sample's sign.
    assert np.all(np.sign(loudest[original != 0]) == np.sign(original[original != 0]))
    assert np.abs(loudest).max() > np.abs(original).max()


async def test_the_gain_stage_works_on_the_decoders_stereo_frames_and_follows_changes() -> None:
    player = MediaPlayer(TONE, format="lavfi")  # s16 stereo, as aiortc's Opus decoder gives them
    stage = GainAudioTrack(player.audio)
    try:
        as_received = await stage.recv()
        stage.gain = gain(MAX_LEVEL)
        louder = await stage.recv()
        stage.gain = gain(1)
        softer = await stage.recv()
    finally:
        stage.stop()
    assert as_received.layout.name == "stereo" and louder.layout.name == "stereo"
    # A steady tone: each frame as loud as the last, until the gain changes.
    assert audio_level(louder) / audio_level(as_received) == pytest.approx(gain(MAX_LEVEL), rel=0.05)
    assert audio_level(softer) / audio_level(as_received) == pytest.approx(gain(1), rel=0.05)


def wav_rms(path: Path) -> float:
    with wave.open(str(path)) as file:
        samples = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2").astype(np.float64)
    assert samples.size > 0, "nothing reached the speaker"
    return float(np.sqrt(np.mean((samples / 32768) ** 2)))


async def clerk_voice_through_the_call(tmp_path: Path, name: str, level: int) -> float:
    """The clerk's voice (a tone) as it reaches the kiosk's speaker, at a volume level."""
    out = tmp_path / f"{name}.wav"
    factory = AiortcCallFactory(
        CameraSettings(device=None),
        AudioSettings(microphone=None, speaker="default"),
        open_speaker=lambda device: MediaRecorder(str(out)),
    )
    call = factory.new_call((), lambda event: None)
    call.set_speaker_gain(gain(level))  # set before the clerk's track arrives, as the engine does
    call._on_track(ToneTrack(level=0.05))  # what aiortc hands over when the clerk's audio arrives
    await asyncio.sleep(1.0)
    await call.close()
    return wav_rms(out)


async def test_the_volume_is_applied_between_the_clerks_voice_and_the_speaker(tmp_path: Path) -> None:
    normal = await clerk_voice_through_the_call(tmp_path, "normal", DEFAULT_LEVEL)
    louder = await clerk_voice_through_the_call(tmp_path, "louder", MAX_LEVEL)
    assert louder / normal == pytest.approx(gain(MAX_LEVEL), rel=0.1)


class LevelsSeen:
    def __init__(self) -> None:
        self.levels: list[float | None] = []

    def microphone_level(self, level: float | None) -> None:
        self.levels.append(level)


async def until(predicate: object, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.02)


async def test_the_microphone_level_moves_while_waiting_for_the_clerk() -> None:
    meter = LevelsSeen()
    factory = AiortcCallFactory(
        CameraSettings(device=None),
        AudioSettings(microphone=TONE, speaker=None),
        meter=meter,
        open_microphone=lavfi_microphone,
    )
    call = factory.new_call((), lambda event: None)
    try:
        await call.create_offer()  # opens the devices: the kiosk calls the clerk, who is not there yet
        await until(lambda: len(meter.levels) >= 3)
    finally:
        await call.close()
    assert all(level is not None and 0.05 < level < 0.2 for level in meter.levels)  # a 1/8 sine: RMS ≈ 0.09
    assert factory.device_health()["microphone"] == "ok"
    count = len(meter.levels)
    await asyncio.sleep(0.3)
    assert len(meter.levels) == count  # the call is over: the device is no longer read


async def test_without_a_microphone_the_level_says_so() -> None:
    meter = LevelsSeen()
    factory = AiortcCallFactory(
        CameraSettings(device=None), AudioSettings(microphone=None, speaker=None), meter=meter
    )
    call = factory.new_call((), lambda event: None)
    try:
        await call.create_offer()
    finally:
        await call.close()
    assert meter.levels == [None]


async def test_a_microphone_that_cannot_be_opened_says_so_too() -> None:
    def broken(device: str) -> MediaPlayer:
        raise av.FFmpegError(5, "no such device")

    meter = LevelsSeen()
    factory = AiortcCallFactory(
        CameraSettings(device=None),
        AudioSettings(microphone="hw:9", speaker=None),
        meter=meter,
        open_microphone=broken,
    )
    call = factory.new_call((), lambda event: None)
    try:
        await call.create_offer()
    finally:
        await call.close()
    assert meter.levels == [None] and factory.device_health()["microphone"] == "missing"
