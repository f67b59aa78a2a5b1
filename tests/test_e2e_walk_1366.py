"""A whole appointment on the commonest cheap touch screen, 1366×768, touching only what a citizen can
see: the call starts by itself, the citizen lets the clerk fill the form, types the password on the
on-screen keyboard, scans a page the clerk asked for, sends it, and hangs up. Every touch lands on a
visible, uncovered, touch-sized target inside the screen, and the window never grows past it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton, QWidget
from pytestqt.qtbot import QtBot

from kiosk_client.core.events import StateChanged
from kiosk_client.core.session import Phase
from kiosk_client.runtime import LoopThread
from kiosk_client.tools.clerk_bot import ClerkBot
from kiosk_client.ui.bridge import BridgeFormView, BridgeVideoSink, EngineBridge
from kiosk_client.ui.main_window import KioskWindow

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, form_field, make_engine
from .sane_rig import sane_folder
from .test_form_view import run_js

pytestmark = pytest.mark.e2e

SCREEN = QRect(0, 0, 1366, 768)


def tap(qtbot: QtBot, window: KioskWindow, widget: QPushButton) -> None:
    """A finger on `widget`, once a citizen could see and reach it."""
    qtbot.waitUntil(lambda: widget.isVisible() and widget.isEnabled(), timeout=5000)
    assert window.width() <= SCREEN.width() and window.height() <= SCREEN.height(), window.size()
    assert widget.isVisible() and widget.isEnabled(), widget.text()
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    assert SCREEN.contains(rect), (widget.text(), rect)
    assert rect.height() >= 64, (widget.text(), rect)
    on_top = window.childAt(rect.center())
    assert on_top is widget or (on_top is not None and widget.isAncestorOf(on_top)), widget.text()
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def key(window: KioskWindow, character: str) -> QPushButton:
    return next(
        b
        for b in window.call.keyboard.findChildren(QPushButton)
        if b.property("character") == character and b.isVisible()
    )


def touch_field(qtbot: QtBot, window: KioskWindow, element: str) -> None:
    form = window.call.form
    x, y = json.loads(
        run_js(
            qtbot,
            form,
            f"(() => {{ const r = document.getElementById('{element}').getBoundingClientRect();"
            " return JSON.stringify([r.left + r.width / 2, r.top + r.height / 2]); })()",
        )
    )
    target = form.input_target()
    assert target is not None and form.view is not None
    point = QPoint(int(x * form.view.zoomFactor()), int(y * form.view.zoomFactor()))
    assert QRect(0, 0, target.width(), target.height()).contains(point)  # in sight, not scrolled away
    assert SCREEN.contains(QRect(target.mapTo(window, point), target.mapTo(window, point)))
    QTest.mouseClick(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)


def test_a_whole_appointment_at_1366_by_768_touching_only_visible_targets(
    qtbot: QtBot, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANE_CONFIG_DIR", str(sane_folder(tmp_path)))
    token = enrolled_token(site.url, site.enrollment_code)
    appointment = site.admin.create_appointment(
        site.kiosk_id,
        site.clerk,
        "CAF",
        datetime.now().astimezone(),
        allowed_origins=[site.url],
        start_url=f"{site.url}/demo-form/",
    )
    appointment_id = str(appointment["id"])
    engine_loop, bot_loop = LoopThread("engine"), LoopThread("bot")
    engine_loop.start()
    bot_loop.start()
    bridge = EngineBridge(engine_loop)
    recorder = Recorder()

    def publish(event: Any) -> None:
        recorder(event)
        bridge.publish(event)

    engine = make_engine(
        site.url,
        token,
        tmp_path / "kiosk",
        publish,
        BridgeVideoSink(bridge),
        BridgeFormView(bridge),
        outbox_key=b"w" * 32,
    )
    window = KioskWindow(bridge, engine, "fr")
    qtbot.addWidget(window)
    window.resize(SCREEN.size())
    window.show()
    bot = ClerkBot(site.url, site.clerk.token, hold_s=120, answer_at_start=False)
    engine_loop.submit(engine.run())
    served = bot_loop.submit(
        bot.serve_appointment(appointment_id, datetime.fromisoformat(str(appointment["start"])))
    )

    def send(**message: Any) -> None:
        bot_loop.submit(bot.send_control(appointment_id, **message)).result(timeout=5)

    def pages() -> int:
        states = [e.snapshot.documents for e in recorder.events if isinstance(e, StateChanged)]
        state = states[-1] if states else None
        return len(state.pages) if state is not None and state.scanner == "idle" else -1

    call = window.call
    try:
        # No touch: the call starts by itself at the appointment time.
        qtbot.waitUntil(lambda: engine.session.phase is Phase.IN_CALL, timeout=20_000)
        qtbot.waitUntil(
            lambda: appointment_id in bot.control_channels and call.form.page is not None, timeout=10_000
        )
        # The demo site has set itself up (its script focuses the identifier and names the page).
        qtbot.waitUntil(
            lambda: call.form.page is not None and "Connexion" in call.form.page.title(), timeout=10_000
        )

        # The clerk asks to fill the form; one touch lets them.
        send(seq=1, type="control.request")
        qtbot.waitUntil(call.consent.isVisible, timeout=5000)
        tap(qtbot, window, call.consent_accept)
        qtbot.waitUntil(call.control_banner.isVisible, timeout=5000)
        send(seq=2, type="text", text="1234567")
        qtbot.waitUntil(lambda: form_field(qtbot, call.form, "login-id") == "1234567", timeout=5000)

        # The password is the citizen's: their touch on it opens the keyboard, the clerk sees nothing.
        touch_field(qtbot, window, "login-password")
        qtbot.waitUntil(call.keyboard.isVisible, timeout=5000)
        assert call.keyboard.hint.isVisible()
        tap(qtbot, window, call.keyboard.shift)
        for character in ("S", "e", "c", "r", "è", "t", "@", "7"):
            tap(qtbot, window, key(window, character))
        qtbot.waitUntil(lambda: form_field(qtbot, call.form, "login-password") == "Secrèt@7", timeout=5000)
        tap(qtbot, window, call.keyboard.close_key)

        # The clerk asks for a paper: the panel opens by itself; scan one page, send it.
        async def request() -> None:  # on the bot's own loop, where its data channels live
            bot.request_document(appointment_id, "justificatif de domicile")

        bot_loop.submit(request()).result(timeout=5)
        qtbot.waitUntil(call.documents_area.isVisible, timeout=10_000)
        tap(qtbot, window, call.documents.scan_flatbed)
        qtbot.waitUntil(lambda: pages() == 1, timeout=30_000)
        tap(qtbot, window, call.documents.send)
        qtbot.waitUntil(lambda: bool(bot.documents), timeout=30_000)
        manifest, _ = bot.documents[0]
        assert manifest.pages == 1

        # The citizen ends the call: the confirmation is where the finger is.
        tap(qtbot, window, call.hang_up)
        tap(qtbot, window, call.confirm_yes)
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.ended, timeout=5000)
        report = served.result(timeout=20)
        assert report.ended_by == "kiosk"
        assert "Secrèt@7" not in json.dumps(report.to_json())
        assert window.width() <= SCREEN.width() and window.height() <= SCREEN.height()
        qtbot.waitUntil(lambda: call.form.sessions_released(), timeout=10_000)
        assert isinstance(window.stack.currentWidget(), QWidget)
    finally:
        engine_loop.stop()
        bot_loop.submit(bot.aclose())
        bot_loop.stop()
