"""The bench clerk completes video frames on the RTP marker bit, as a browser does."""

from __future__ import annotations

import pytest
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from kiosk_client.tools.browser_like_receiver import MarkerJitterBuffer


def packet(seq: int, timestamp: int, marker: bool, data: bytes) -> RtpPacket:
    p = RtpPacket(sequence_number=seq, timestamp=timestamp, marker=int(marker))
    p._data = data  # type: ignore[attr-defined]
    return p


def test_a_frame_is_complete_at_its_marker_packet_not_at_the_next_frame() -> None:
    browser_like = MarkerJitterBuffer(capacity=512, is_video=True)
    stock = JitterBuffer(capacity=512, is_video=True)
    for buffer in (browser_like, stock):
        assert buffer.add(packet(100, 9000, False, b"ab"))[1] is None
    _, frame = browser_like.add(packet(101, 9000, True, b"cd"))
    assert frame is not None and frame.data == b"abcd" and frame.timestamp == 9000
    # aiortc's own buffer holds the same frame back until the next one starts.
    assert stock.add(packet(101, 9000, True, b"cd"))[1] is None
    assert stock.add(packet(102, 12000, False, b"ef"))[1] is not None
    # The next frame follows on its own marker.
    assert browser_like.add(packet(102, 12000, False, b"ef"))[1] is None
    _, second = browser_like.add(packet(103, 12000, True, b"gh"))
    assert second is not None and second.data == b"efgh"


def test_a_gap_holds_the_frame_until_the_missing_packet_arrives() -> None:
    buffer = MarkerJitterBuffer(capacity=512, is_video=True)
    assert buffer.add(packet(10, 3000, False, b"1"))[1] is None
    assert buffer.add(packet(12, 3000, True, b"3"))[1] is None  # packet 11 is missing
    _, frame = buffer.add(packet(11, 3000, False, b"2"))  # a retransmission fills the gap
    assert frame is not None and frame.data == b"123"


def test_a_frame_whose_marker_was_lost_is_handed_over_when_the_next_starts() -> None:
    buffer = MarkerJitterBuffer(capacity=512, is_video=True)
    buffer.add(packet(1, 3000, False, b"a"))
    _, frame = buffer.add(packet(2, 6000, False, b"b"))
    assert frame is not None and frame.data == b"a" and frame.timestamp == 3000


def test_audio_keeps_aiortcs_prefetching_buffer() -> None:
    buffer = MarkerJitterBuffer(capacity=16, prefetch=4)
    for seq in range(4):
        assert buffer.add(packet(seq, seq * 960, True, b"x"))[1] is None


def test_install_gives_new_video_receivers_the_browser_like_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiortc import rtcrtpreceiver

    from kiosk_client.tools import browser_like_receiver

    monkeypatch.setattr(rtcrtpreceiver, "JitterBuffer", JitterBuffer)  # restored after the test
    browser_like_receiver.install()
    assert getattr(rtcrtpreceiver, "JitterBuffer") is MarkerJitterBuffer  # noqa: B009
