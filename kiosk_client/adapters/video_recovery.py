"""Loss recovery for received video: a lost packet costs a glitch, not a freeze.

Targets aiortc 1.16.0 (`aiortc/rtcrtpreceiver.py`, `aiortc/jitterbuffer.py`). What aiortc does:
- `NackGenerator` NACKs the missing packets when a *new* gap appears, and never on a timer: a packet
  whose retransmission is lost too is asked for again only when some other packet goes missing.
- `JitterBuffer` hands frames to the decoder in sequence order and stops at the first missing packet;
  it gives up only when 512 packets piled up behind the gap (≈10 s of a 500 kbit/s stream), and only
  then asks for a keyframe (PLI), as it does on a decoder error. That is the multi-second freezes of
  FIELD-NETWORKS.md ("kiosk sees clerk: 12 freezes/min" at 0.5 % loss).

What this changes, for video receivers only:
- a missing packet is NACKed again every ≈1.2 round trips while it is still missing, and given up
  once NACK_ATTEMPTS of them had a round trip each to be answered (at least GIVE_UP_MIN_S), or once
  NACK_WINDOW packets came after it (aiortc: 128);
- a packet given up on means every frame after it until the next keyframe is undecodable (aiortc's
  and Chromium's VP8 reference the previous frame): the buffer skips to a keyframe already received,
  or else drops what it holds, keeps what arrives, and sends a PLI; frames flow again from the next
  keyframe. PLIs are rate-limited to one per `pli_interval(rtt)`, decoder-error PLIs included;
- the round trip is the RTCP one that aiortc's senders on the same (BUNDLEd) transport measure from
  the receiver reports (`RTCRtpSender.__rtt`); DEFAULT_RTT_S until there is one.

Skipping to a keyframe needs to recognise one: VP8 only (aiortc's and Chromium's first choice, the
one the kiosk's offer lists first). With another codec, NACKs are still repeated and a PLI still
sent, but the buffer waits as aiortc's does.

How it is installed: a subclass of `RTCRtpReceiver` replaces the name aiortc's peer connection builds
receivers from, and swaps aiortc's NACK generator and jitter buffer (name-mangled attributes set in
its constructor) for subclasses. tests/test_video_recovery.py fails if those internals move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiortc import rtcpeerconnection
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import NackGenerator, RTCRtpReceiver
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add, uint16_gt

log = logging.getLogger(__name__)

RECOVERY_TICK_S = 0.02  # how often due NACKs and given-up packets are looked for
DEFAULT_RTT_S = 0.2  # until aiortc's senders measured one (their first receiver report, ≈1 s in)
NACK_MIN_RETRY_S = 0.05
NACK_ATTEMPTS = 3
GIVE_UP_MIN_S = 0.35
PLI_MIN_INTERVAL_S = 0.5
JITTER_CAPACITY = 512  # aiortc's, for video
# How far behind the newest packet a missing one is still asked for: as far as the jitter buffer can
# wait behind it. aiortc's NackGenerator forgets it RTP_HISTORY_SIZE (128) packets on, 0.7 s of a
# browser's 180 packets/s camera: less than a satellite round trip and a repeated NACK, so a lost
# retransmission became a keyframe wait (2 in a 40 s `bench field --profile satellite`).
NACK_WINDOW = JITTER_CAPACITY
# RTCRtpReceiver's private `__nack_generator` and `__jitter_buffer`, as Python mangles them.
NACK_GENERATOR_ATTRIBUTE = "_RTCRtpReceiver__nack_generator"
JITTER_BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"
SENDER_RTT_ATTRIBUTE = "_RTCRtpSender__rtt"  # RTCRtpSender's smoothed round trip (None until a report)


def nack_retry_after(rtt: float) -> float:
    """A NACK's retransmission arrives one round trip later, plus the sender's turn-around."""
    return max(NACK_MIN_RETRY_S, 1.2 * rtt + 0.02)


def give_up_after(rtt: float) -> float:
    """From the moment a packet is found missing: NACK_ATTEMPTS NACKs, each with its time to answer."""
    return max(GIVE_UP_MIN_S, NACK_ATTEMPTS * nack_retry_after(rtt))


def pli_interval(rtt: float) -> float:
    """A keyframe takes a round trip and its own transmission to arrive: asking again sooner only
    makes the sender spend its bitrate on a second one."""
    return max(PLI_MIN_INTERVAL_S, 1.5 * rtt + 0.1)


def vp8_keyframe_start(packet: RtpPacket) -> bool:
    """The first packet of a VP8 keyframe: start of partition 0, and the frame tag's P bit is 0."""
    try:
        descriptor, data = VpxPayloadDescriptor.parse(packet.payload)
    except ValueError:
        return False
    return bool(descriptor.partition_start == 1 and descriptor.partition_id == 0 and data and not data[0] & 1)


@dataclass
class RecoveryCounters:
    """For tests, benchmarks and diagnostics: what the recovery did on one receiver."""

    nacks: int = 0  # packet entries in NACKs sent, repeats included
    nack_repeats: int = 0  # entries for a packet that had been NACKed before
    recovered: int = 0  # missing packets that arrived after all
    given_up: int = 0
    forgotten: int = 0  # of given_up: left behind by aiortc's NACK window (RTP_HISTORY_SIZE packets)
    plis: int = 0
    keyframe_waits: int = 0  # times the buffer dropped what it held to wait for a keyframe


@dataclass
class _Missing:
    found_at: float
    nacked_at: float
    nacks: int = 0


class RepeatingNackGenerator(NackGenerator):
    """aiortc's NACK generator (which still finds the gaps and NACKs them at once), with the times
    each missing packet was found and NACKed, so they can be NACKed again and given up on."""

    def __init__(self, counters: RecoveryCounters, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.ssrc: int | None = None
        self._counters = counters
        self._clock = clock
        self._pending: dict[int, _Missing] = {}
        self._dropped: list[int] = []  # left behind by aiortc's truncate(): the sender has forgotten them

    def add(self, packet: RtpPacket) -> bool:
        self.ssrc = packet.ssrc
        missed = super().add(packet)
        now = self._clock()
        for seq in self.missing.difference(self._pending):
            self._pending[seq] = _Missing(found_at=now, nacked_at=now)
        for seq in set(self._pending).difference(self.missing):
            del self._pending[seq]
            if seq == packet.sequence_number:
                self._counters.recovered += 1
            else:
                self._dropped.append(seq)
                self._counters.forgotten += 1
        if missed:  # aiortc's receiver now sends a NACK for every missing packet
            self._nacked(list(self._pending), now)
        return missed

    def truncate(self) -> None:
        if self.max_seq is not None:
            oldest = uint16_add(self.max_seq, -NACK_WINDOW)
            for seq in [seq for seq in self.missing if uint16_gt(oldest, seq)]:
                self.missing.discard(seq)

    def _nacked(self, seqs: Iterable[int], now: float) -> None:
        for seq in seqs:
            entry = self._pending[seq]
            if entry.nacks:
                self._counters.nack_repeats += 1
            entry.nacks += 1
            entry.nacked_at = now
            self._counters.nacks += 1

    def due(self, now: float, rtt: float) -> list[int]:
        """The packets to NACK again now (and marked as NACKed)."""
        retry, limit = nack_retry_after(rtt), give_up_after(rtt)
        seqs = sorted(
            seq
            for seq, entry in self._pending.items()
            if now - entry.nacked_at >= retry and now - entry.found_at < limit
        )
        self._nacked(seqs, now)
        return seqs

    def given_up(self, now: float, rtt: float) -> list[int]:
        """The packets to stop waiting for (forgotten here from now on)."""
        limit = give_up_after(rtt)
        seqs = [seq for seq, entry in self._pending.items() if now - entry.found_at >= limit]
        for seq in seqs:
            del self._pending[seq]
            self.missing.discard(seq)
        seqs.extend(self._dropped)
        self._dropped.clear()
        self._counters.given_up += len(seqs)
        return seqs


class RecoveringJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, which can also skip a gap that will not be filled: to a keyframe
    it holds, or else to the next keyframe that arrives (packets are kept meanwhile, so a keyframe
    whose first packet comes late by retransmission is still whole)."""

    def __init__(
        self, is_keyframe_start: Callable[[RtpPacket], bool | None], counters: RecoveryCounters
    ) -> None:
        super().__init__(capacity=JITTER_CAPACITY, is_video=True)
        self._is_keyframe_start = is_keyframe_start
        self._counters = counters
        self._held: dict[int, RtpPacket] | None = None  # not None while waiting for a keyframe

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._held is not None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._held is None:
            return super().add(packet)
        if self._is_keyframe_start(packet):
            return False, self._restart_at(packet)
        self._held[packet.sequence_number] = packet
        if len(self._held) > self.capacity:
            del self._held[next(iter(self._held))]
        return True, None  # still no keyframe: ask again (the receiver rate-limits PLIs)

    def _restart_at(self, start: RtpPacket) -> JitterFrame | None:
        held, self._held = self._held or {}, None
        self._packets = [None] * self.capacity
        self._origin = start.sequence_number
        for packet in (start, *held.values()):
            if uint16_add(packet.sequence_number, -start.sequence_number) < self.capacity:
                self._packets[packet.sequence_number % self.capacity] = packet
        return self._remove_frame(start.sequence_number)

    def abandon(self, seqs: list[int]) -> bool:
        """Stops waiting for these packets; True if a keyframe is needed (none is held after them)."""
        if self._held is not None:
            return True
        origin = self._origin
        if origin is None:
            return False
        offsets = [uint16_add(seq, -origin) for seq in seqs]
        offsets = [offset for offset in offsets if offset < self.capacity]
        if not offsets:
            return False  # already behind the buffer (aiortc overflowed past them)
        last = max(offsets)
        present: list[RtpPacket] = []
        for offset in range(last + 1, self.capacity):
            packet = self._packets[(origin + offset) % self.capacity]
            if packet is None:
                continue
            keyframe = self._is_keyframe_start(packet)
            if keyframe is None:
                return True  # a codec this cannot read: wait as aiortc does, but ask for a keyframe
            if keyframe:
                self.remove(offset)  # frames flow again from this keyframe
                return False
            present.append(packet)
        self._counters.keyframe_waits += 1
        self.remove(self.capacity)
        self._held = {packet.sequence_number: packet for packet in present}
        return True


class RecoveringRtpReceiver(RTCRtpReceiver):
    """aiortc's receiver with the recovery above for video (audio is untouched)."""

    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        super().__init__(kind, transport)
        self.recovery = RecoveryCounters()
        self._codec_names: dict[int, str] = {}
        self._last_pli = -math.inf
        self._task: asyncio.Task[None] | None = None
        self._nacks: RepeatingNackGenerator | None = None
        self._frames: RecoveringJitterBuffer | None = None
        if kind == "video":
            # aiortc sets both in its constructor and uses them only through these names.
            assert isinstance(getattr(self, NACK_GENERATOR_ATTRIBUTE), NackGenerator)
            assert isinstance(getattr(self, JITTER_BUFFER_ATTRIBUTE), JitterBuffer)
            self._nacks = RepeatingNackGenerator(self.recovery)
            self._frames = RecoveringJitterBuffer(self._keyframe_start, self.recovery)
            setattr(self, NACK_GENERATOR_ATTRIBUTE, self._nacks)
            setattr(self, JITTER_BUFFER_ATTRIBUTE, self._frames)

    def _keyframe_start(self, packet: RtpPacket) -> bool | None:
        if self._codec_names.get(packet.payload_type) == "vp8":
            return vp8_keyframe_start(packet)
        return None

    def round_trip(self) -> float:
        """The RTCP round trip aiortc's senders on this transport measured, the longest; else a guess."""
        senders = self.transport._rtp_router.senders.values()
        known = [rtt for rtt in (getattr(s, SENDER_RTT_ATTRIBUTE, None) for s in senders) if rtt]
        return max(known) if known else DEFAULT_RTT_S

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        for codec in parameters.codecs:
            if codec.payloadType is not None:
                self._codec_names[codec.payloadType] = codec.name.lower()
        await super().receive(parameters)
        if self._nacks is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        assert self._nacks is not None and self._frames is not None
        try:
            while True:
                await asyncio.sleep(RECOVERY_TICK_S)
                now, rtt, ssrc = time.monotonic(), self.round_trip(), self._nacks.ssrc
                if ssrc is None:
                    continue
                due = self._nacks.due(now, rtt)
                if due:
                    await self._send_rtcp_nack(ssrc, due)
                lost = self._nacks.given_up(now, rtt)
                if lost and self._frames.abandon(lost):
                    await self._send_rtcp_pli(ssrc)
        except Exception:
            # Without this task the receiver still works, as aiortc's own does.
            log.exception("video loss recovery stopped")

    async def _send_rtcp_pli(self, media_ssrc: int) -> None:
        now = time.monotonic()
        if now - self._last_pli < pli_interval(self.round_trip()):
            return
        self._last_pli = now
        self.recovery.plis += 1
        await super()._send_rtcp_pli(media_ssrc)

    def _stop_recovery(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        task = self._task
        self._stop_recovery()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().stop()

    def _handle_disconnect(self) -> None:
        self._stop_recovery()
        super()._handle_disconnect()


def install() -> None:
    """Idempotent: RTCPeerConnection builds its receivers from the name it imported."""
    setattr(rtcpeerconnection, "RTCRtpReceiver", RecoveringRtpReceiver)  # noqa: B010
