"""End to end (issue 12, item 2, "a renderer killed mid-control"): the real kiosk (engine, aiortc, Qt
window with its form view) and the clerk console in headless Chromium over loopback. The clerk has
control and has typed into the form; the form view's render process is killed (SIGKILL); the kiosk
reloads the page the citizen was on, the console shows the notice in words, control is still the
clerk's (granted, never silently dropped or re-granted), and the clerk's next text reaches the
reloaded page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from pytestqt.qtbot import QtBot

from kiosk_client.app import form_frames
from kiosk_client.core.page_recovery import FormPageRecovered, PageIncident
from kiosk_client.core.session import Phase
from kiosk_client.runtime import LoopThread
from kiosk_client.ui.bridge import BridgeFormView, BridgeVideoSink, EngineBridge
from kiosk_client.ui.main_window import KioskWindow

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, form_field, make_engine

pytestmark = pytest.mark.e2e

NOTICE = "La page du formulaire s'est rechargée après un incident sur la borne : ce qui n'était pas envoyé est à ressaisir."


def wait(qtbot: QtBot, predicate: Callable[[], object], timeout_s: float) -> None:
    qtbot.waitUntil(lambda: bool(predicate()), timeout=int(timeout_s * 1000))


def test_a_renderer_killed_mid_control_comes_back_and_the_clerk_console_says_so(
    qtbot: QtBot, browser: Browser, site: Site, tmp_path: Path
) -> None:
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
        site.url, token, tmp_path / "kiosk", publish, BridgeVideoSink(bridge), BridgeFormView(bridge), frames
    )
    window = KioskWindow(bridge, engine, "fr", form_outlet=frames)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    loop.submit(engine.run())
    form = window.call.form
    recovered: list[FormPageRecovered] = []
    form.recovered.connect(recovered.append)
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    js: Callable[[str], Any] = page.evaluate

    def focus_login() -> None:
        # The citizen's page, with the login field focused: the clerk's text goes to the focused field.
        assert form.page is not None
        done: list[object] = []
        form.page.runJavaScript("document.getElementById('login-id').focus(); 1", 0, done.append)
        wait(qtbot, lambda: bool(done), 5)

    def clerk_types(text: str) -> None:
        page.locator("#type-input").fill(text)
        page.get_by_role("button", name="Saisir").click()

    try:
        page.goto(f"{site.url}/clerk#token={site.clerk.token}")
        item = page.locator(f'li[data-appointment="{appointment["id"]}"]')
        wait(qtbot, lambda: item.locator(".state", has_text="en ligne").count() == 1, 30)
        item.get_by_role("button", name="Rejoindre").click()
        wait(qtbot, lambda: js("() => window.clerkConsole.connectedAt !== null"), 20)
        wait(qtbot, lambda: engine.session.phase is Phase.IN_CALL and form.page is not None, 10)
        wait(qtbot, lambda: form.page is not None and form.page.url().toString().endswith("/demo-form/"), 10)

        # The clerk asks (once the control channel speaks: a click before it opens sends nothing), the
        # citizen agrees with a touch, the clerk fills a field.
        wait(qtbot, lambda: js("() => window.clerkConsole.received.some((m) => m.type === 'state')"), 20)
        page.get_by_role("button", name="Demander à remplir le formulaire").click()
        wait(qtbot, window.call.consent.isVisible, 10)
        window.call.consent_accept.click()
        wait(qtbot, lambda: js("() => window.clerkConsole.controlState") == "granted", 10)
        focus_login()
        clerk_types("Dupont")
        wait(qtbot, lambda: form_field(qtbot, form, "login-id") == "Dupont", 10)
        assert page.locator("#form-incident").is_hidden()

        # The renderer dies mid-control.
        assert form.page is not None
        url = form.page.url().toString()
        killed_at = form.kill_renderer()
        wait(qtbot, lambda: bool(recovered), 20)
        [event] = recovered
        assert event.cause is PageIncident.KILLED and event.url == url
        assert event.back_at - killed_at < 10  # the bench's "renderer killed → form view back"
        assert form.page.url().toString() == url

        # The console says so, in words, and control is still the clerk's on both sides.
        notice = page.locator("#form-incident")
        notice.wait_for(state="visible", timeout=10_000)
        assert NOTICE in page.locator("#form-incident-text").inner_text()
        received = js("() => window.clerkConsole.received.filter((m) => m.type === 'form.incident')")
        assert received == [
            {"v": 1, "type": "form.incident", "cause": "killed", "outcome": "reloaded", "attempts": 1}
        ]
        assert js("() => window.clerkConsole.controlState") == "granted"
        assert engine.snapshot().control == "granted" and window.call.control_banner.isVisible()
        states = js(
            "() => window.clerkConsole.received.filter((m) => m.type === 'state').map((m) => m.event)"
        )
        assert (
            "taken_back" not in states and states.count("granted") == 1
        )  # nothing dropped, nothing re-granted
        # On the kiosk: the citizen is told too, and what was typed is gone with the renderer.
        assert form.notice.isVisible() and "rechargée" in form.notice.text()
        assert form_field(qtbot, form, "login-id") == ""

        # The clerk types again: it reaches the reloaded page.
        focus_login()
        clerk_types("Martin")
        wait(qtbot, lambda: form_field(qtbot, form, "login-id") == "Martin", 10)
        page.get_by_role("button", name="Compris").click()
        assert notice.is_hidden()

        page.get_by_role("button", name="Raccrocher").click()
        wait(qtbot, lambda: "Entretien terminé" in page.locator("#last-call").inner_text(), 15)
        wait(qtbot, lambda: bool(recorder.records()), 15)
        records = recorder.records()
        audit = records[-1].control_audit
        assert audit is not None
        events: Any = audit["events"]
        assert any(e["event"] == "form_reloaded_killed" for e in events)  # in the session's audit trail
    finally:
        page.close()
        # The window first: closing its form view still tells the engine, whose loop must be running.
        window.close()
        qtbot.waitUntil(form.sessions_released, timeout=10_000)
        loop.stop()
