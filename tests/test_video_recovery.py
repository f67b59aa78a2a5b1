"""Loss recovery for video: repeated NACKs, a rate-limited PLI when a frame stays incomplete, the sender's
keyframes (on PLI, and every KEYFRAME_EVERY_S on the kiosk's camera), measured between two real aiortc
peers on loopback with loss injected in-process (tests/impaired_link.py)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from aiortc import RTCPeerConnection, rtcpeerconnection
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.rtcrtpreceiver import NackGenerator, RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket

from kiosk_client.adapters import rtc_aiortc  # noqa: F401  # importing the adapter installs it
from kiosk_client.adapters.camera_opencv import PlaceholderSource
from kiosk_client.adapters.media_tracks import KEYFRAME_EVERY_S, PacedVideoTrack, ToneTrack, TrackReader
from kiosk_client.adapters.video_recovery import (
    JITTER_BUFFER_ATTRIBUTE,
    NACK_GENERATOR_ATTRIBUTE,
    NACK_WINDOW,
    SENDER_RTT_ATTRIBUTE,
    RecoveringJitterBuffer,
    RecoveringRtpReceiver,
    RecoveryCounters,
    RepeatingNackGenerator,
)

from .impaired_link import Impairment, impaired_pair, rtp_header

FPS = 20


# -- the internals the patch relies on (aiortc 1.16)


def test_the_patch_is_what_aiortc_builds_and_the_internals_it_uses_are_there() -> None:
    assert rtcpeerconnection.RTCRtpReceiver is RecoveringRtpReceiver
    # The swapped components: set by aiortc's constructor, used by its packet handler, by these names.
    for method in (RTCRtpReceiver.__init__, RTCRtpReceiver._handle_rtp_packet):
        assert {NACK_GENERATOR_ATTRIBUTE, JITTER_BUFFER_ATTRIBUTE} <= set(method.__code__.co_names)
    # (aiortc's own handler: the uplink control wraps it, adapters/uplink_aiortc.py)
    assert SENDER_RTT_ATTRIBUTE in inspect.unwrap(RTCRtpSender._handle_rtcp_packet).__code__.co_names
    for name in ("_send_rtcp_nack", "_send_rtcp_pli", "_handle_disconnect"):
        assert callable(getattr(RTCRtpReceiver, name))


def test_aiortc_alone_still_nacks_a_missing_packet_only_once() -> None:
    """What the repeated NACKs are for. If aiortc starts repeating them itself, this fails: re-check."""
    generator = NackGenerator()

    def add(seq: int) -> bool:
        return generator.add(RtpPacket(sequence_number=seq))

    assert [add(1), add(3)] == [False, True]  # 2 is missing: NACKed now...
    assert not any(add(seq) for seq in range(4, 40))  # ...and never again while nothing else is lost
    assert generator.missing == {2}


def test_a_missing_packet_is_asked_for_as_long_as_the_jitter_buffer_can_wait_for_it() -> None:
    """aiortc forgets a gap RTP_HISTORY_SIZE (128) packets on: 0.7 s of a browser's camera, less than a
    satellite round trip and a repeat. Here: NACK_WINDOW packets (the jitter buffer's capacity)."""
    counters = RecoveryCounters()
    generator = RepeatingNackGenerator(counters)
    for seq in [1, *range(3, 3 + 300)]:
        generator.add(RtpPacket(sequence_number=seq))
    assert generator.missing == {2} and counters.forgotten == 0
    for seq in range(303, 3 + NACK_WINDOW + 1):
        generator.add(RtpPacket(sequence_number=seq))
    assert generator.missing == set() and counters.forgotten == 1
    assert generator.given_up(0.0, 0.1) == [2]


# -- the jitter buffer's skip, on hand-made VP8 packets


def vp8_packet(seq: int, timestamp: int, start: bool, key: bool = False) -> RtpPacket:
    descriptor = bytes([0x10 if start else 0x00])
    body = bytes([0x00 if key else 0x01]) if start else b"\xaa"
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, payload=descriptor + body)
    packet._data = body  # type: ignore[attr-defined]  # what aiortc's depayload leaves
    return packet


def frame_packets(seq: int, timestamp: int, key: bool) -> list[RtpPacket]:
    return [vp8_packet(seq, timestamp, True, key), vp8_packet(seq + 1, timestamp, False)]


def vp8_start(packet: RtpPacket) -> bool:
    from kiosk_client.adapters.video_recovery import vp8_keyframe_start

    return vp8_keyframe_start(packet)


def test_a_gap_given_up_on_skips_to_the_next_keyframe_and_asks_for_one_until_it_comes() -> None:
    buffer = RecoveringJitterBuffer(vp8_start, RecoveryCounters())
    out: list[int] = []
    plis = 0

    def add(packet: RtpPacket) -> None:
        nonlocal plis
        pli, frame = buffer.add(packet)
        plis += pli
        if frame is not None:
            out.append(frame.timestamp)

    # A keyframe (ts 1), then deltas (ts 2-4) of which seq 3 never arrives.
    for packet in frame_packets(0, 1, key=True) + frame_packets(2, 2, key=False)[:1]:
        add(packet)
    for packet in frame_packets(4, 3, key=False) + frame_packets(6, 4, key=False):
        add(packet)
    assert out == [1]  # stuck behind seq 3, as aiortc's buffer is
    assert buffer.abandon([3])  # nothing decodable is held after it: a keyframe is needed
    for packet in frame_packets(8, 5, key=False):
        add(packet)  # a delta frame while waiting: dropped, and a PLI asked each time
    assert out == [1] and plis == 2
    keyframe = frame_packets(10, 6, key=True)
    add(keyframe[1])  # the keyframe's first packet comes late (by retransmission)...
    add(keyframe[0])
    for packet in frame_packets(12, 7, key=False):
        add(packet)
    assert out == [1, 6]  # ...and it is still whole: frames flow again from it
    assert not buffer.waiting_for_keyframe


def test_a_gap_given_up_on_skips_to_a_keyframe_already_held_without_asking() -> None:
    buffer = RecoveringJitterBuffer(vp8_start, RecoveryCounters())
    packets = [*frame_packets(0, 1, True), *frame_packets(2, 2, False), *frame_packets(4, 3, True)]
    packets += frame_packets(6, 4, False)
    frames = [buffer.add(p)[1] for p in packets if p.sequence_number != 3]
    assert [f.timestamp for f in frames if f is not None] == [1]  # stuck behind seq 3
    assert not buffer.abandon([3])
    pli, frame = buffer.add(vp8_packet(8, 5, True))
    assert not pli and frame is not None and frame.timestamp == 3


# -- two real peers over an impaired link


class MovingPicture:
    """A textured picture that moves and has sensor noise, so every frame costs real bits."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        y, x = np.mgrid[0:height, 0:width]
        self._base = ((x * 3 + y * 5) % 256).astype(np.uint8)
        self._count = 0
        self._random = np.random.default_rng(3)

    def latest(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        self._count += 1
        image = np.roll(self._base, self._count * 3, axis=1)
        noise = self._random.integers(0, 12, image.shape, dtype=np.uint8)
        return np.repeat((image + noise)[:, :, None], 3, axis=2)


@dataclass
class VideoCall:
    sender_pc: RTCPeerConnection
    receiver_pc: RTCPeerConnection
    to_receiver: Impairment
    to_sender: Impairment
    track: PacedVideoTrack
    frames_at: list[float] = field(default_factory=list)
    readers: list[TrackReader] = field(default_factory=list)

    @property
    def receiver(self) -> Any:
        [receiver] = [t.receiver for t in self.receiver_pc.getTransceivers() if t.kind == "video"]
        return receiver

    @property
    def sender(self) -> Any:
        [sender] = [t.sender for t in self.sender_pc.getTransceivers() if t.kind == "video"]
        return sender

    def gaps(self, longer_than_s: float, after_s: float) -> list[float]:
        start = self.frames_at[0] + after_s
        times = [t for t in self.frames_at if t >= start]
        return [b - a for a, b in itertools.pairwise(times) if b - a > longer_than_s]

    async def close(self) -> None:
        for reader in self.readers:
            await reader.stop()
        await self.sender_pc.close()
        await self.receiver_pc.close()


async def video_call(
    delay_s: float = 0.02, loss: float = 0.0, seed: int = 1, keyframe_every_s: float | None = None
) -> VideoCall:
    """The kiosk's shape: the sender sends video (and a tone), the receiver a tone (its sender measures
    the round trip from RTCP reports, as the kiosk's own senders do)."""
    sender_pc, receiver_pc = RTCPeerConnection(), RTCPeerConnection()
    track = PacedVideoTrack(MovingPicture(), FPS, keyframe_every_s=keyframe_every_s)
    sender_pc.addTrack(ToneTrack())
    sender_pc.addTrack(track)
    call = VideoCall(
        sender_pc, receiver_pc, Impairment(delay_s, loss, seed), Impairment(delay_s, loss, seed + 1), track
    )

    def on_track(remote: Any) -> None:
        if remote.kind == "video":
            reader = TrackReader(remote, lambda _frame: call.frames_at.append(time.monotonic()))
        else:
            receiver_pc.addTrack(ToneTrack())
            reader = TrackReader(remote)
        call.readers.append(reader)
        reader.start()

    receiver_pc.on("track", on_track)
    back: list[Any] = []
    sender_pc.on("track", lambda remote: back.append(TrackReader(remote)))
    await impaired_pair(sender_pc, receiver_pc, call.to_receiver, call.to_sender)
    for reader in back:
        reader.start()
    call.readers.extend(back)
    return call


@contextlib.contextmanager
def aiortc_receivers() -> Iterator[None]:
    """Peer connections created inside get aiortc's own receivers."""
    setattr(rtcpeerconnection, "RTCRtpReceiver", RTCRtpReceiver)  # noqa: B010
    try:
        yield
    finally:
        setattr(rtcpeerconnection, "RTCRtpReceiver", RecoveringRtpReceiver)  # noqa: B010


@pytest.mark.e2e
@pytest.mark.solo
async def test_random_loss_costs_far_fewer_freezes_with_the_recovery() -> None:
    """5 % loss each way, 40 ms round trip, 24 s: decoded-frame gaps over 200 ms with aiortc's own
    receiver and sender against the kiosk's (recovery, keyframe every 2 s), side by side. Both sets of
    figures are printed; over seven runs aiortc had 5-25 freezes a minute (longest 0.25-1.7 s), the
    kiosk 0-5 (longest ≤ 0.7 s). aiortc stalls whenever a NACK or its retransmission is lost too,
    until another packet goes missing; the kiosk asks again after ≈1.2 round trips. The bounds below
    leave room for a loaded 2-core machine; aiortc's own figures vary too much to assert on."""
    with aiortc_receivers():
        plain = await video_call(loss=0.05, seed=11)
    assert not isinstance(plain.receiver, RecoveringRtpReceiver)
    patched = await video_call(loss=0.05, seed=11, keyframe_every_s=KEYFRAME_EVERY_S)
    assert isinstance(patched.receiver, RecoveringRtpReceiver)
    duration = 24.0
    await asyncio.sleep(duration + 2)
    plain_gaps, patched_gaps = plain.gaps(0.2, 2.0), patched.gaps(0.2, 2.0)
    per_minute = 60 / duration
    report = {
        "aiortc freezes/min": len(plain_gaps) * per_minute,
        "aiortc s frozen/min": sum(plain_gaps) * per_minute,
        "aiortc longest gap s": max(plain_gaps, default=0.0),
        "kiosk freezes/min": len(patched_gaps) * per_minute,
        "kiosk s frozen/min": sum(patched_gaps) * per_minute,
        "kiosk longest gap s": max(patched_gaps, default=0.0),
        "recovery": patched.receiver.recovery,
        "frames": (len(plain.frames_at), len(patched.frames_at)),
    }
    print(report)
    await plain.close()
    await patched.close()
    assert patched.to_receiver.dropped > 0.03 * patched.to_receiver.sent  # the loss was there
    assert patched.receiver.recovery.nack_repeats > 0
    assert len(patched_gaps) <= 2 and max(patched_gaps, default=0.0) < 1.0, report
    # Nearly every loss is recovered by NACK. With 5 % loss each way a NACK and its retransmission are
    # both lost now and then (seen: 1 packet of 162 given up after all its attempts), and then the
    # kiosk asks for a keyframe instead of waiting.
    recovery = patched.receiver.recovery
    assert recovery.given_up <= max(1, 0.02 * recovery.nacks), report
    assert recovery.plis >= min(1, recovery.given_up), report
    assert len(patched.frames_at) > 0.9 * FPS * (duration + 2), report


def drop_video(call: VideoCall, nth: int, rtx_to_drop: int) -> dict[str, float]:
    """Drops the `nth` video packet the sender sends and then its first `rtx_to_drop` retransmissions
    (the only ones on a link that loses nothing else); returns when it happened."""
    ssrc, rtx_ssrc = call.sender._ssrc, call.sender._rtx_ssrc
    seen = {"video": 0, "rtx": 0}
    when: dict[str, float] = {}

    def drop(data: bytes) -> bool:
        header = rtp_header(data)
        if header is None:
            return False
        if header[2] == ssrc:
            seen["video"] += 1
            if seen["video"] == nth:
                when["dropped"] = time.monotonic()
                return True
        elif header[2] == rtx_ssrc and "dropped" in when:
            seen["rtx"] += 1
            return seen["rtx"] <= rtx_to_drop
        return False

    call.to_receiver.drop = drop
    return when


@pytest.mark.e2e
@pytest.mark.solo  # a retransmission must come back within the 0.35 s give-up: wall time, alone
async def test_a_packet_whose_retransmission_is_lost_is_nacked_again_and_recovered() -> None:
    call = await video_call()
    when = drop_video(call, nth=80, rtx_to_drop=1)  # well after the first receiver reports
    nacked: list[list[int]] = []
    send_nack = call.receiver._send_rtcp_nack

    async def watched(ssrc: int, lost: list[int]) -> None:
        nacked.append(lost)
        await send_nack(ssrc, lost)

    call.receiver._send_rtcp_nack = watched
    await asyncio.sleep(5)
    recovery = call.receiver.recovery
    await call.close()
    assert "dropped" in when
    assert len(nacked) >= 2 and all(lost == nacked[0] for lost in nacked[:2])  # the same packet, twice
    assert recovery.recovered == 1 and recovery.given_up == 0 and recovery.plis == 0
    # A glitch, not a freeze: on this link nothing else is lost, so aiortc alone would NACK it again
    # never and wait until its buffer overflowed (≈10 s). (≈0.15 s alone; room for a loaded machine.)
    assert max(call.gaps(0.0, 1.0)) < 0.6


@pytest.mark.e2e
@pytest.mark.solo  # its bound is a freeze's length in wall time: alone, not beside other workers
async def test_a_frame_that_stays_incomplete_brings_a_pli_and_the_sender_a_keyframe_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[tuple[float, bool]] = []
    encode = Vp8Encoder.encode

    def watched_encode(self: Vp8Encoder, frame: Any, force_keyframe: bool = False) -> Any:
        payloads, timestamp = encode(self, frame, force_keyframe)
        _, data = VpxPayloadDescriptor.parse(payloads[0])
        encoded.append((time.monotonic(), data[0] & 1 == 0))
        return payloads, timestamp

    monkeypatch.setattr(Vp8Encoder, "encode", watched_encode)
    call = await video_call()
    plis_at: list[tuple[float, int]] = []
    send_keyframe = call.sender._send_keyframe

    def on_pli() -> None:
        plis_at.append((time.monotonic(), len(encoded)))
        send_keyframe()

    call.sender._send_keyframe = on_pli
    when = drop_video(call, nth=80, rtx_to_drop=100)  # every retransmission of it is lost too
    await asyncio.sleep(5)
    recovery = call.receiver.recovery
    await call.close()
    assert "dropped" in when
    assert recovery.given_up == 1 and recovery.plis == 1, recovery
    [(pli_at, frames_before)] = plis_at
    keyframes_after = [i for i, (_, key) in enumerate(encoded) if key and i >= frames_before]
    # The sender's answer: the next frame it encodes, or the one after if one was already encoding.
    assert keyframes_after and keyframes_after[0] - frames_before <= 1, encoded[frames_before:]
    assert encoded[keyframes_after[0]][0] - pli_at < 2.5 / FPS
    # The picture froze from the loss until the keyframe: the give-up time (0.35 s), a round trip and
    # the keyframe's frame slot, no more (0.95 s seen once in a clean-clone run; a keyframe wait with
    # no PLI, as before the recovery, froze the picture for seconds).
    frozen = max(call.gaps(0.0, 1.0))
    print({"frozen s": frozen, "pli after loss s": pli_at - when["dropped"], "recovery": recovery})
    assert 0.3 < frozen < 1.2, frozen


# -- the kiosk's camera track


async def test_the_camera_track_makes_a_keyframe_every_two_seconds_in_the_encoded_stream() -> None:
    """Measured in aiortc's VP8 output, on the track as the kiosk builds it (its default interval),
    with an unchanging picture (the placeholder card), which makes no keyframe of its own."""
    track = PacedVideoTrack(PlaceholderSource(320, 240), FPS)
    encoder = Vp8Encoder()
    keys = []
    for _ in range(int(4.5 * FPS)):
        payloads, _ = encoder.encode(await track.recv())
        _, data = VpxPayloadDescriptor.parse(payloads[0])
        keys.append(data[0] & 1 == 0)
    track.stop()
    assert KEYFRAME_EVERY_S == 2.0
    assert [i for i, key in enumerate(keys) if key] == [0, 2 * FPS, 4 * FPS]
