"""A walk-in session end to end: the clerk makes a code in the central (as the console's « Session
sans rendez-vous » does), the animateur opens the staff panel on the kiosk's window, types the PIN and
the code, and the kiosk joins the call the clerk bot answers. Then the same code again is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from kiosk_client.core.session import Phase
from kiosk_client.runtime import LoopThread
from kiosk_client.tools.clerk_bot import ClerkBot
from kiosk_client.ui.bridge import BridgeVideoSink, EngineBridge
from kiosk_client.ui.i18n import Translator
from kiosk_client.ui.main_window import KioskWindow

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, make_engine
from .test_staff_panel_ui import tap_corner, type_digits

pytestmark = pytest.mark.e2e
PIN = "135790"


def test_a_walk_in_code_from_the_clerk_typed_in_the_staff_panel_starts_the_call(
    qtbot: QtBot, site: Site, tmp_path: Path
) -> None:
    site.admin.configure(staff_pin=PIN)
    token = enrolled_token(site.url, site.enrollment_code)
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
    window.resize(1280, 720)
    window.show()
    bot = ClerkBot(site.url, site.clerk.token, hold_s=3)
    engine_loop.submit(engine.run())
    panel = window.staff_panel
    try:
        qtbot.waitUntil(
            lambda: engine._config.staff_pin_hash is not None and not engine.reset.checking, timeout=15_000
        )
        tap_corner(window)
        type_digits(window, PIN)
        qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
        code = bot_loop.submit(bot.create_walk_in_code()).result(10)
        assert len(code) == 6 and code.isdigit()
        panel.walk_in.click()
        type_digits(window, code)
        qtbot.waitUntil(
            lambda: panel.message.text() == Translator("fr")("staff.walk_in_started"), timeout=10_000
        )
        panel.close_button.click()
        qtbot.waitUntil(lambda: engine.session.phase is Phase.WAITING_FOR_CLERK, timeout=10_000)
        appointment = engine.session.appointment
        assert appointment is not None and appointment.clerk_name == "Mme Martin"
        served = bot_loop.submit(bot.serve_appointment(appointment.id, appointment.start))
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.call, timeout=15_000)
        qtbot.waitUntil(lambda: window.call.remote.frames_shown > 5, timeout=15_000)
        report = served.result(timeout=30)
        assert report.video_frames > 5 and report.appointment_id == appointment.id
        qtbot.waitUntil(lambda: engine.session.phase is Phase.IDLE, timeout=15_000)
        # The same code again: used. The panel says so and nothing starts.
        tap_corner(window)
        type_digits(window, PIN)
        qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
        panel.walk_in.click()
        type_digits(window, code)
        used = Translator("fr")("staff.walk_in.walk_in_code_used")
        qtbot.waitUntil(lambda: panel.message.text() == used, timeout=10_000)
        assert engine.session.phase is Phase.IDLE
        assert [r.appointment_id for r in recorder.records()] == [appointment.id]
    finally:
        bot_loop.submit(bot.aclose()).result(10)
        engine_loop.stop()
        bot_loop.stop()
