"""On an emulated ADSL link (tools/link_emulator.py): the kiosk engine in the kiosk's namespace, the
reference central and the clerk (aiortc) on the far side. A 60 s cut ends the call; once the link is
back the kiosk must call again at once (no back-off while the citizen waits, no dead pooled HTTP
connection) and the clerk sees the citizen again within seconds."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kiosk_client.adapters.central_http import enroll
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.events import StateChanged
from kiosk_client.core.ports import VideoSink
from kiosk_client.core.session import Phase
from kiosk_client.runtime import LoopThread
from kiosk_client.tools.clerk_bot import ClerkBot
from kiosk_client.tools.field_setup import book, move_loop_into
from kiosk_client.tools.link_emulator import FieldLink, Profile

from .field_rig import field_rig
from .kiosk_rig import Recorder, make_engine
from .sane_rig import sane_folder

pytestmark = pytest.mark.e2e


@dataclass
class FieldCall:
    """A kiosk engine in the kiosk's namespace and a clerk bot beside the central on the far side."""

    link: FieldLink
    engine: KioskEngine
    bot: ClerkBot
    recorder: Recorder
    appointment_id: str
    start: datetime
    engine_loop: LoopThread
    bot_loop: LoopThread


@contextlib.contextmanager
def field_call(
    profile: Profile | str, tmp_path: Path, outbox_key: bytes | None = None, sink: VideoSink | None = None
) -> Iterator[FieldCall]:
    """An appointment starting now on a kiosk enrolled over the link; the engine already running.
    `sink` is the kiosk's screen (what the citizen is shown)."""
    with field_rig(profile, tmp_path) as rig:
        link = rig.link
        booking = book(link, rig.central, datetime.now().astimezone())
        engine_loop, bot_loop = LoopThread("engine"), LoopThread("bot")
        engine_loop.start()
        bot_loop.start()
        kept: list[Any] = []
        move_loop_into(engine_loop, link.kiosk_ns, kept)
        move_loop_into(bot_loop, link.world_ns, kept)
        recorder = Recorder()
        bot = ClerkBot(rig.central_url, booking.clerk.token, hold_s=600)
        try:
            token = (
                engine_loop.submit(enroll(rig.central_url, booking.enrollment_code))
                .result(timeout=30)
                .device_token
            )
            engine = make_engine(
                rig.central_url, token, tmp_path / "kiosk", recorder, sink=sink, outbox_key=outbox_key
            )
            engine_loop.submit(engine.run())
            yield FieldCall(
                link, engine, bot, recorder, booking.appointment_id, booking.start, engine_loop, bot_loop
            )
        finally:
            with contextlib.suppress(Exception):
                bot_loop.submit(bot.aclose()).result(timeout=5)
            engine_loop.stop()
            bot_loop.stop()


def wait_for_video(bot: ClerkBot, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not (bot.reports and bot.reports[0].first_video_at is not None):
        assert time.monotonic() < deadline, "the call never carried video"
        time.sleep(0.1)


@pytest.mark.long
@pytest.mark.solo  # its bound (2 s) is wall time: 2.11 s once beside three other workers
def test_after_a_60_s_cut_the_kiosk_calls_again_and_the_clerk_sees_it_within_seconds(tmp_path: Path) -> None:
    with field_call("adsl", tmp_path) as call:
        bot = call.bot

        async def clerk_side() -> None:
            while True:  # each new offer of the kiosk's is answered, as a clerk's console does
                report = await bot.serve_appointment(call.appointment_id, call.start)
                if report.ended_by != "kiosk_reoffered":
                    return

        call.bot_loop.submit(clerk_side())
        wait_for_video(bot, 40)
        assert call.engine.session.phase is Phase.IN_CALL

        call.link.cut(60)
        back = time.time() + 60
        time.sleep(59)
        calls_before = len(bot.reports)
        deadline = time.monotonic() + 30
        while not (len(bot.reports) > calls_before and bot.reports[-1].first_video_at is not None):
            assert time.monotonic() < deadline, "no new call carried video after the cut"
            time.sleep(0.05)
        second = bot.reports[-1]
        assert second.answered_at is not None and second.first_video_at is not None
        answered_after = second.answered_at - back
        video_after = second.first_video_at - back
        print(f"after the cut: answered {answered_after:.2f} s, video {video_after:.2f} s")
        # The bound: media within 2 s of the link's return (measured 0.45-0.9 s). The kiosk
        # offers again at once (the clerk answers at once); the picture follows once ICE and DTLS are
        # through (a few 40 ms round trips).
        assert answered_after <= 2.0
        assert video_after <= 2.0


@pytest.mark.long
@pytest.mark.solo  # its bound (1 s) is wall time: alone, not beside three other workers
def test_after_a_10_s_cut_the_same_call_carries_video_again_within_a_second(tmp_path: Path) -> None:
    """A cut shorter than ICE consent's 30 s: the same call goes on (no new offer), and the clerk
    sees the citizen again ≤ 1 s after the link returns (a keyframe every 2 s, a PLI on the first
    incomplete frame) — FIELD-NETWORKS.md measured ≈3.3 s before, Chromium 0.4 s."""
    with field_call("adsl", tmp_path) as call:
        served = call.bot_loop.submit(call.bot.serve_appointment(call.appointment_id, call.start))
        wait_for_video(call.bot, 40)
        time.sleep(3)
        report = call.bot.reports[0]
        call.link.cut(10)
        back = time.time() + 10
        time.sleep(9.5)
        # The frozen stretch that spans the link's return ends with the first frame after it.
        deadline = time.monotonic() + 10
        while not (ends := [end for start, end in report.video_stalls if start < back < end]):
            assert time.monotonic() < deadline, (
                f"no video after the cut: stalls {report.video_stalls[-3:]} (link back {back:.2f}),"
                f" phase {call.engine.session.phase}, reports {len(call.bot.reports)}"
            )
            time.sleep(0.05)
        video_after = ends[0] - back
        print(f"after a 10 s cut: video {video_after:.2f} s after the link returned")
        assert not served.done() and len(call.bot.reports) == 1, "the call was set up again"
        assert call.engine.session.phase is Phase.IN_CALL
        assert video_after <= 1.0


@pytest.mark.solo  # a rate through the uplink control: its round trips include the event loop's lag
def test_a_letter_crosses_an_adsl_uplink_during_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 3-page letter (SANE's test pages, ≈1 MB) crosses an 800 kbit/s uplink during the call, whole,
    through the whole engine (scanner, outbox, document protocol). The uplink's queue while it goes is
    printed; tests/test_field_uplink.py holds it short (with SCTP alone it filled to the emulator's
    400 ms limit)."""
    monkeypatch.setenv("SANE_CONFIG_DIR", str(sane_folder(tmp_path)))
    with field_call("adsl", tmp_path, outbox_key=b"f" * 32) as call:
        bot, engine, engine_loop = call.bot, call.engine, call.engine_loop
        call.bot_loop.submit(bot.serve_appointment(call.appointment_id, call.start))
        wait_for_video(bot, 40)
        time.sleep(5)  # the estimate settles on the link

        async def request() -> None:
            bot.request_document(call.appointment_id, "justificatif de domicile")

        call.bot_loop.submit(request()).result(timeout=5)
        for count in (1, 2, 3):
            assert engine_loop.submit(engine.scan_document("flatbed")).result(timeout=60)
            deadline = time.monotonic() + 60
            while documents_pages(call.recorder) != count:
                assert time.monotonic() < deadline, "the scan did not finish"
                time.sleep(0.1)
        call.link.reset_stats()
        sent_at = time.monotonic()
        assert engine_loop.submit(engine.send_document()).result(timeout=10)
        deadline = time.monotonic() + 60
        while not bot.documents:
            assert time.monotonic() < deadline, "the letter never arrived"
            time.sleep(0.05)
        letter_s = time.monotonic() - sent_at
        up = call.link.stats().up
        size = bot.documents[0][0].size
        print(
            f"letter {size} B in {letter_s:.1f} s; uplink queue ms {up.queue_delay_ms}, dropped {up.dropped_queue}"
        )
        manifest, data = bot.documents[0]
        assert manifest.pages == 3 and hashlib.sha256(data).hexdigest() == manifest.sha256
        # The link's own time, and some: the documents share the uplink with the call's pictures and
        # voice and are held to a short queue (≈ 425 kbit/s of the 800 here: 19.6 s for 1 MB).
        assert letter_s <= 2.0 * size * 8 / 800_000 + 5


def documents_pages(recorder: Recorder) -> int:
    states = [e.snapshot.documents for e in recorder.events if isinstance(e, StateChanged)]
    state = states[-1] if states else None
    return len(state.pages) if state is not None and state.scanner == "idle" else -1


@pytest.mark.long
@pytest.mark.timeout(300)
def test_a_call_over_satellite_holds_three_minutes(tmp_path: Path) -> None:
    """600 ms round trip: aioice's consent checks (no retransmission, 0.5 s) ended every such call
    ≈37 s in. Held here for 3 minutes: one call, never offered again, video still arriving."""
    with field_call("satellite", tmp_path) as call:
        served = call.bot_loop.submit(call.bot.serve_appointment(call.appointment_id, call.start))
        wait_for_video(call.bot, 60)
        connected = time.monotonic()
        frames = call.bot.reports[0].video_frames
        while time.monotonic() - connected < 180:
            time.sleep(5)
            assert call.engine.session.phase is Phase.IN_CALL and not call.engine.session.reconnecting
            assert not served.done(), "the clerk's side saw the call end or the kiosk offer again"
            now_frames = call.bot.reports[0].video_frames
            assert now_frames > frames + 10, f"the picture stalled ({frames} → {now_frames} in 5 s)"
            frames = now_frames
        assert len(call.bot.reports) == 1
