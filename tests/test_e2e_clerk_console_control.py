"""The acceptance test of remote control, in a real browser: the clerk console (headless Chromium)
asks for control, the citizen accepts with a touch on the kiosk, the clerk types
"Élodie Müller-Ñúñez, 12 rue de l'Église" into the demo form and the field holds exactly that; the
citizen takes control back and the clerk's next input is refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from pytestqt.qtbot import QtBot

from kiosk_client.app import form_frames
from kiosk_client.core.session import Phase
from kiosk_client.runtime import LoopThread
from kiosk_client.ui.bridge import BridgeFormView, BridgeVideoSink, EngineBridge
from kiosk_client.ui.main_window import KioskWindow

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, form_field, make_engine

pytestmark = pytest.mark.e2e

TEXT = "Élodie Müller-Ñúñez, 12 rue de l'Église"


def console(page: Page, script: str) -> Any:
    return page.evaluate(script)


def test_clerk_console_remote_control(qtbot: QtBot, browser: Browser, site: Site, tmp_path: Path) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    appointment = site.admin.create_appointment(
        site.kiosk_id,
        site.clerk,
        "CAF",
        datetime.now().astimezone(),
        allowed_origins=[site.url],
        start_url=f"{site.url}/demo-form/",
    )
    loop = LoopThread()
    loop.start()
    bridge = EngineBridge(loop)
    recorder = Recorder()

    def publish(event: Any) -> None:
        recorder(event)
        bridge.publish(event)

    frames = form_frames()
    engine = make_engine(
        site.url, token, tmp_path, publish, BridgeVideoSink(bridge), BridgeFormView(bridge), frames
    )
    window = KioskWindow(bridge, engine, "fr", form_outlet=frames)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    loop.submit(engine.run())
    page = browser.new_page()
    # The console runs under a Content-Security-Policy (form-action 'none' among others): typing and
    # the address bar must not be refused.
    page.add_init_script(
        'window.cspViolations = []; document.addEventListener("securitypolicyviolation",'
        " (e) => window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));"
    )
    csp_reports: list[str] = []
    page.on("console", lambda m: csp_reports.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(f"{site.url}/clerk#token={site.clerk.token}")
        item = page.locator(f'li[data-appointment="{appointment["id"]}"]')
        qtbot.waitUntil(lambda: item.locator(".state", has_text="en ligne").count() == 1, timeout=20_000)
        item.get_by_role("button", name="Rejoindre").click()
        qtbot.waitUntil(
            lambda: engine.session.phase is Phase.IN_CALL and window.call.form.page is not None,
            timeout=20_000,
        )
        qtbot.waitUntil(lambda: form_field(qtbot, window.call.form, "login-id") == "", timeout=10_000)
        # The clerk sees the live form view (the second video track).
        qtbot.waitUntil(lambda: console(page, "window.clerkStats()")["formFramesDecoded"] > 5, timeout=15_000)

        page.get_by_role("button", name="Demander à remplir le formulaire").click()
        qtbot.waitUntil(window.call.consent.isVisible, timeout=10_000)
        qtbot.waitUntil(
            lambda: console(page, "window.clerkConsole.controlState") == "requested", timeout=10_000
        )
        window.call.consent_accept.click()  # the citizen's touch on the kiosk
        qtbot.waitUntil(
            lambda: console(page, "window.clerkConsole.controlState") == "granted", timeout=10_000
        )

        page.locator("#type-input").fill(TEXT)
        page.get_by_role("button", name="Saisir").click()
        qtbot.waitUntil(lambda: form_field(qtbot, window.call.form, "login-id") == TEXT, timeout=10_000)

        window.call.take_back.click()  # one touch takes control back
        qtbot.waitUntil(lambda: console(page, "window.clerkConsole.controlState") == "none", timeout=10_000)
        assert page.locator("#type-input").is_disabled()  # the console follows the state
        # A clerk (or a modified console) that sends anyway is refused, and told.
        console(
            page,
            "window.clerkConsole.control.send(JSON.stringify({v: 1, seq: 999, type: 'text', text: ' encore'}))",
        )
        qtbot.waitUntil(
            lambda: any(
                m.get("seq") == 999 and m.get("code") == "not_granted"
                for m in console(page, "window.clerkConsole.received")
            ),
            timeout=10_000,
        )
        assert "ne vous a pas donné la main" in page.locator("#control-error").inner_text()
        assert form_field(qtbot, window.call.form, "login-id") == TEXT
        assert console(page, "window.cspViolations") == [] and csp_reports == []
    finally:
        page.close()
        loop.stop()
        window.close()
        qtbot.waitUntil(window.call.form.sessions_released, timeout=10_000)
