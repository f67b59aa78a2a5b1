"""End to end with the kiosk's window (offscreen): the screens follow the session with no click, the
clerk appears large and the citizen small, and the citizen's hang-up asks for confirmation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from kiosk_client.core.session import EndReason, Phase
from kiosk_client.runtime import LoopThread
from kiosk_client.tools.clerk_bot import ClerkBot
from kiosk_client.ui.bridge import BridgeVideoSink, EngineBridge
from kiosk_client.ui.main_window import KioskWindow

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, make_engine

pytestmark = pytest.mark.e2e


def test_the_window_follows_the_session_and_the_citizen_hangs_up(
    qtbot: QtBot, site: Site, tmp_path: Path
) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    appointment = site.appointment_in(4)
    engine_loop, bot_loop = LoopThread("engine"), LoopThread("bot")
    engine_loop.start()
    bot_loop.start()
    bridge = EngineBridge(engine_loop)
    recorder = Recorder()

    def publish(event: object) -> None:
        recorder(event)  # type: ignore[arg-type]
        bridge.publish(event)  # type: ignore[arg-type]

    engine = make_engine(site.url, token, tmp_path, publish, BridgeVideoSink(bridge))
    window = KioskWindow(bridge, engine, "fr")
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    bot = ClerkBot(site.url, site.clerk.token, hold_s=60)  # the clerk would stay: the citizen ends it
    engine_loop.submit(engine.run())
    served = bot_loop.submit(
        bot.serve_appointment(str(appointment["id"]), datetime.fromisoformat(str(appointment["start"])))
    )
    try:
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.waiting, timeout=10_000)
        assert "Mme Martin" in window.waiting.who.text()
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.call, timeout=15_000)
        qtbot.waitUntil(
            lambda: window.call.remote.frames_shown > 5 and window.call.local.frames_shown > 2, timeout=10_000
        )
        assert window.call.remote.width() > 2 * window.call.local.width()  # clerk large, citizen small
        assert not window.language.isVisible()

        window.call.hang_up.click()
        assert window.call.confirm.isVisible()
        window.call.confirm_no.click()  # changed their mind: the call goes on
        assert not window.call.confirm.isVisible()
        qtbot.wait(300)
        assert engine.session.phase is Phase.IN_CALL

        window.call.hang_up.click()
        window.call.confirm_yes.click()
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.ended, timeout=5_000)
        assert not window.call.remote.has_image()  # no picture of this session is kept
        report = served.result(timeout=15)
        assert report.ended_by == "kiosk" and report.video_frames > 5
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.idle, timeout=5_000)
        [record] = recorder.records()
        assert record.end_reason is EndReason.CITIZEN_HUNG_UP
        # The kiosk proved it forgot the session, and the central holds the proof with the record.
        qtbot.waitUntil(
            lambda: any(r["appointment_id"] == appointment["id"] for r in site.admin.session_reports()),
            timeout=10_000,
        )
        [report] = [r for r in site.admin.session_reports() if r["appointment_id"] == appointment["id"]]
        assert report["passed"] is True and report["session"]["end_reason"] == "citizen_hung_up"
    finally:
        engine_loop.stop()
        bot_loop.submit(bot.aclose())
        bot_loop.stop()
