"""A walk-in session end to end: the clerk makes a code in the central (as the console's « Session
sans rendez-vous » does), the animateur opens the staff panel on the kiosk's window, types the PIN and
the code, and the kiosk joins the call the clerk bot answers. Then the same code again is refused.
And with a service: the clerk bot available, its service touched on the walk-in page."""

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


def test_a_service_with_the_clerk_bot_available_touched_in_the_staff_panel_starts_the_call(
    qtbot: QtBot, site: Site, tmp_path: Path
) -> None:
    """The clerk bot says it is available for walk-ins (as the console's switch does); the staff
    panel's walk-in page lists its service; a touch starts the session, the kiosk joins, the bot
    answers. The bot is then no longer available: the page says so."""
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
    window.resize(1366, 768)
    window.show()
    bot = ClerkBot(site.url, site.clerk.token, hold_s=3)
    engine_loop.submit(engine.run())
    panel = window.staff_panel
    fr = Translator("fr")
    try:
        qtbot.waitUntil(
            lambda: engine._config.staff_pin_hash is not None and not engine.reset.checking, timeout=15_000
        )
        tap_corner(window)
        type_digits(window, PIN)
        qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
        panel.walk_in.click()
        status = panel.services.status
        qtbot.waitUntil(lambda: status.text() == fr("staff.walk_in_services_none"), timeout=10_000)
        panel._services_timer.setInterval(300)  # the page asks every 5 s

        state = bot_loop.submit(bot.set_walk_in_availability()).result(10)
        assert state["available"] is True
        qtbot.waitUntil(lambda: "CAF" in panel.services.buttons, timeout=10_000)
        button = panel.services.buttons["CAF"]
        # A widget added to a shown layout is shown on the next turn of the event loop (Qt queues it).
        qtbot.waitUntil(button.isVisible, timeout=2_000)
        assert button.text() == "CAF\n1 conseiller disponible"
        window.grab().save(str(tmp_path / "walk-in-service.png"))
        button.click()
        qtbot.waitUntil(lambda: panel.message.text() == fr("staff.walk_in_started"), timeout=10_000)
        panel.close_button.click()
        qtbot.waitUntil(lambda: engine.session.phase is Phase.WAITING_FOR_CLERK, timeout=10_000)
        appointment = engine.session.appointment
        assert appointment is not None and appointment.clerk_name == "Mme Martin"
        assert appointment.service == "CAF"
        [listed] = bot_loop.submit(bot.appointments()).result(10)
        assert listed["id"] == appointment.id and listed["walk_in"] is True
        ended = bot_loop.submit(bot.keep_walk_in_availability()).result(10)
        assert ended["ended"] == "walk_in" and ended["appointment_id"] == appointment.id

        served = bot_loop.submit(bot.serve_appointment(appointment.id, appointment.start))
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.call, timeout=15_000)
        qtbot.waitUntil(lambda: window.call.remote.frames_shown > 5, timeout=15_000)
        report = served.result(timeout=30)
        assert report.video_frames > 5 and report.appointment_id == appointment.id
        qtbot.waitUntil(lambda: engine.session.phase is Phase.IDLE, timeout=15_000)
        assert [r.appointment_id for r in recorder.records()] == [appointment.id]

        # The bot was taken: nobody is available any more, and the page says so.
        tap_corner(window)
        type_digits(window, PIN)
        qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
        panel.walk_in.click()
        qtbot.waitUntil(lambda: status.text() == fr("staff.walk_in_services_none"), timeout=10_000)
        assert panel.services.buttons == {}
    finally:
        bot_loop.submit(bot.aclose()).result(10)
        engine_loop.stop()
        bot_loop.stop()
