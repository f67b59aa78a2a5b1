"""The clerk console for a busy clerk (issue 10, item 8), in real headless Chromium against the real
kiosk (engine, aiortc, Qt window with its form view and scanner) over loopback, for three calls in a
row:

- at 1366×768 the citizen's video and the live form view are side by side, and the controls are
  within the viewport with nothing to scroll; the same at 1920×1080 (screenshots of both are saved);
- who the appointment is for (service, site, the citizen's name), a call timer that advances, and
  what the kiosk shows, in words, from the kiosk's kiosk.screen messages;
- the clerk's zoom: refused without control, applied with it, and a click on the zoomed picture
  still lands on the field under the clerk's pointer;
- the form video has a picture within seconds of each call connecting;
- after a hang-up by either side every local track is stopped, and a finished appointment has no
  "Rejoindre".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta
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
from .sane_rig import sane_folder

pytestmark = pytest.mark.e2e

PICTURE_WITHIN_S = 6.0  # from the connection to a picture in the form video

# The form video's picture, sampled in the page: how much of it is not black, and its size.
FORM_PICTURE = """() => {
  const video = document.getElementById("form-view");
  if (!video.videoWidth || video.readyState < 2) return {lit: 0, width: 0, height: 0};
  const canvas = document.createElement("canvas");
  canvas.width = 160; canvas.height = 100;
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0, canvas.width, canvas.height);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0;
  for (let i = 0; i < pixels.length; i += 4) if (pixels[i] + pixels[i + 1] + pixels[i + 2] > 90) lit += 1;
  return {lit: lit / (pixels.length / 4), width: video.videoWidth, height: video.videoHeight};
}"""

BOX = "(selector) => { const r = document.querySelector(selector).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"


def box(page: Page, selector: str) -> tuple[float, float, float, float]:
    left, top, right, bottom = page.evaluate(BOX, selector)
    return left, top, right, bottom


def wait(qtbot: QtBot, predicate: Callable[[], object], timeout_s: float) -> None:
    qtbot.waitUntil(lambda: bool(predicate()), timeout=int(timeout_s * 1000))


def check_one_screen(page: Page, width: int, height: int) -> None:
    """Side by side, everything inside the viewport, nothing to scroll."""
    remote, form = box(page, "#remote"), box(page, "#form-view")
    for name, (left, top, right, bottom) in (("remote", remote), ("form", form)):
        assert 0 <= left < right <= width and 0 <= top < bottom <= height, (name, left, top, right, bottom)
        assert right - left > 250 and bottom - top > 180, name  # a picture, not a thumbnail
    assert remote[2] <= form[0], (remote, form)  # the citizen left, the form right
    assert remote[1] < form[3] and form[1] < remote[3]  # at the same height: side by side
    assert form[2] - form[0] > 1.5 * (remote[2] - remote[0])  # the form has the room
    local = box(page, "#local")
    assert (local[2] - local[0]) * (local[3] - local[1]) < 0.12 * (remote[2] - remote[0]) * (
        remote[3] - remote[1]
    )
    for name in (
        "Demander à remplir le formulaire",
        "Demander un document",
        "Raccrocher",
        "Couper mon micro",
        "Agrandir la page",
        "Réduire la page",
        "Saisir",
        "Aller",
    ):
        button = page.get_by_role("button", name=name)
        assert button.is_visible(), name
        found = button.bounding_box()
        assert found is not None, name
        assert found["x"] >= 0 and found["x"] + found["width"] <= width, (name, found)
        assert found["y"] >= 0 and found["y"] + found["height"] <= height, (name, found)
    for selector in (
        "#address-input",
        "#type-input",
        "#document-label",
        "#documents",
        "#kiosk-state",
        "#call-timer",
    ):
        left, top, right, bottom = box(page, selector)
        assert left >= 0 and right <= width and top >= 0 and bottom <= height, selector
    scroll = page.evaluate(
        "() => [document.documentElement.scrollHeight, document.documentElement.scrollWidth, innerHeight, innerWidth]"
    )
    assert scroll[0] <= scroll[2] and scroll[1] <= scroll[3], scroll


def seconds(timer: str) -> int:
    match = re.fullmatch(r"(\d\d+):(\d\d)", timer)
    assert match, timer
    return int(match.group(1)) * 60 + int(match.group(2))


def screenshot(page: Page, folder: Path, name: str) -> None:
    path = folder / name
    page.screenshot(path=str(path))
    if keep := os.environ.get("CONSOLE_SCREENSHOTS"):  # to look at them (the report's screenshots)
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)


@pytest.mark.long
def test_the_clerk_console_on_one_screen_through_three_calls(
    qtbot: QtBot, browser: Browser, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANE_CONFIG_DIR", str(sane_folder(tmp_path)))
    token = enrolled_token(site.url, site.enrollment_code)
    now = datetime.now().astimezone()
    appointments = [
        site.admin.create_appointment(
            site.kiosk_id,
            site.clerk,
            service,
            now + timedelta(seconds=i),
            allowed_origins=[site.url],
            start_url=f"{site.url}/demo-form/",
            citizen_name=name,
        )
        for i, (service, name) in enumerate(
            (("CAF", "M. Bernard Dupont"), ("CPAM", None), ("France Travail", "Mme Awa Diallo"))
        )
    ]
    loop = LoopThread()
    loop.start()
    bridge = EngineBridge(loop)
    recorder = Recorder()

    def publish(event: Any) -> None:
        recorder(event)
        bridge.publish(event)

    frames = form_frames()
    engine = make_engine(
        site.url,
        token,
        tmp_path / "kiosk",
        publish,
        BridgeVideoSink(bridge),
        BridgeFormView(bridge),
        frames,
        outbox_key=b"k" * 32,
    )
    window = KioskWindow(bridge, engine, "fr", form_outlet=frames)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    loop.submit(engine.run())
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.add_init_script(
        'window.cspViolations = []; document.addEventListener("securitypolicyviolation",'
        " (e) => window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));"
    )
    csp_reports: list[str] = []
    page.on("console", lambda m: csp_reports.append(m.text) if "Content Security Policy" in m.text else None)
    js: Callable[[str], Any] = page.evaluate

    def kiosk_state() -> str:
        return str(page.locator("#kiosk-state").inner_text())

    def join(appointment: dict[str, Any]) -> float:
        """Joins; returns how long the form video took to show a picture after the connection."""
        item = page.locator(f'li[data-appointment="{appointment["id"]}"]')
        wait(qtbot, lambda: item.locator(".state", has_text="en ligne").count() == 1, 30)
        item.get_by_role("button", name="Rejoindre").click()
        wait(qtbot, lambda: js("() => window.clerkConsole.connectedAt !== null"), 20)
        connected = time.monotonic()
        wait(qtbot, lambda: js(FORM_PICTURE)["lit"] > 0.2, 20)
        took = time.monotonic() - connected
        wait(qtbot, lambda: engine.session.phase is Phase.IN_CALL and window.call.form.view is not None, 10)
        # Then the page itself (not the "form not shown" card): the picture has the view's size.
        view = window.call.form.view
        assert view is not None
        wait(
            qtbot,
            lambda: [js(FORM_PICTURE)[k] for k in ("width", "height")] == [view.width(), view.height()],
            20,
        )
        took = max(took, time.monotonic() - connected)
        assert js(FORM_PICTURE)["lit"] > 0.2  # the page, not a black picture of its size
        # Every local track is live during the call; kept to check they are stopped after it.
        js("() => { window.testTracks = window.clerkConsole.local.getTracks(); }")
        assert js("() => window.testTracks.length") == 2
        assert js("() => window.testTracks.every((t) => t.readyState === 'live')")
        return took

    def released_after_the_call(appointment: dict[str, Any], message: str) -> None:
        wait(qtbot, lambda: message in page.locator("#last-call").inner_text(), 15)
        assert js("() => window.testTracks.every((t) => t.readyState === 'ended')")
        assert js("() => document.getElementById('local').srcObject === null")
        assert js("() => window.clerkConsole.released.length") >= 2
        item = page.locator(f'li[data-appointment="{appointment["id"]}"]')
        wait(qtbot, lambda: "terminé" in item.inner_text(), 10)
        assert item.get_by_role("button", name="Rejoindre").count() == 0  # finished: nothing to join
        assert page.locator("#call").is_hidden()

    pictures: list[float] = []
    try:
        page.goto(f"{site.url}/clerk#token={site.clerk.token}")

        # ------------------------------------------------ call 1, at 1366×768: the clerk hangs up
        first = appointments[0]
        pictures.append(join(first))
        check_one_screen(page, 1366, 768)
        title = page.locator("#call-title").inner_text()
        assert "CAF" in title and "France Services de Test" in title
        assert "M. Bernard Dupont" in page.locator("#citizen").inner_text()
        before = seconds(page.locator("#call-timer").inner_text())
        time.sleep(3.2)  # the display ticks every second, not in step with this test
        assert seconds(page.locator("#call-timer").inner_text()) >= before + 2
        wait(qtbot, lambda: "Borne en français" in kiosk_state(), 10)
        assert "Panneau des documents fermé" in kiosk_state() and "Page affichée à 100 %" in kiosk_state()

        # What the kiosk shows, as it changes: the documents panel the clerk's request opens, a page
        # scanned, the citizen's microphone.
        page.wait_for_function(
            "() => !document.querySelector('#ask-document button').disabled", timeout=20_000
        )
        page.get_by_role("button", name="Demander un document").click()
        wait(qtbot, lambda: "Panneau des documents ouvert" in kiosk_state(), 10)
        bridge.submit(lambda: engine.scan_document("flatbed"))
        wait(qtbot, lambda: "1 page numérisée, pas encore envoyée" in kiosk_state(), 30)
        window.call.mute.click()
        wait(qtbot, lambda: "L'usager a coupé son micro" in kiosk_state(), 10)
        wait(qtbot, lambda: window.snapshot is not None and not window.snapshot.microphone_on, 5)
        window.call.mute.click()
        wait(qtbot, lambda: "coupé son micro" not in kiosk_state(), 10)
        bridge.submit(lambda: engine.send_document())  # the citizen sends the page to the clerk
        page.locator("#documents li.received").wait_for(timeout=30_000)
        wait(qtbot, lambda: "page numérisée" not in kiosk_state(), 10)
        window.call.documents.closed.emit()  # the citizen closes the panel
        wait(qtbot, lambda: "Panneau des documents fermé" in kiosk_state(), 10)
        screenshot(page, tmp_path, "console-1366x768.png")

        # The clerk's zoom: not without control (the buttons are off, and a message sent anyway is
        # refused), then with it; the pointer still lands where the clerk clicks.
        assert page.get_by_role("button", name="Agrandir la page").is_disabled()
        js(
            "() => window.clerkConsole.control.send(JSON.stringify({v: 1, seq: 900, type: 'zoom', level: 1.5}))"
        )
        wait(qtbot, lambda: any(m.get("seq") == 900 for m in js("() => window.clerkConsole.received")), 10)
        [refused] = [m for m in js("() => window.clerkConsole.received") if m.get("seq") == 900]
        assert refused["code"] == "not_granted"
        assert window.call.form.zoom_factor() == 1.0
        page.get_by_role("button", name="Demander à remplir le formulaire").click()
        wait(qtbot, window.call.consent.isVisible, 10)
        window.call.consent_accept.click()
        wait(qtbot, lambda: js("() => window.clerkConsole.controlState") == "granted", 10)
        page.get_by_role("button", name="Agrandir la page").click()
        wait(qtbot, lambda: window.call.form.zoom_factor() == 1.25, 10)
        wait(qtbot, lambda: page.locator("#zoom-level").inner_text() == "125 %", 10)
        wait(qtbot, lambda: "Page affichée à 125 %" in kiosk_state(), 10)
        # Where the login field is in the kiosk's view, as fractions of the view (the picture sent).
        view = window.call.form.view
        assert view is not None
        assert window.call.form.page is not None
        form_page = window.call.form.page

        def measured() -> list[float]:
            found: list[Any] = []
            form_page.runJavaScript(
                "(() => { const r = document.getElementById('login-id').getBoundingClientRect();"
                " return JSON.stringify([r.left + r.width / 2, r.top + r.height / 2, devicePixelRatio]); })()",
                0,
                found.append,
            )
            wait(qtbot, lambda: bool(found), 5)
            return list(json.loads(found[0]))

        # The page's layout follows the zoom a moment after the view's factor changed.
        wait(qtbot, lambda: measured()[2] == 1.25, 10)
        rect = [measured()]
        x_css, y_css, dpr = rect[0]
        fx, fy = x_css * dpr / view.width(), y_css * dpr / view.height()
        assert 0 < fx < 1 and 0 < fy < 1
        # The clerk clicks on what the console shows: wait until it shows the view as it is now (the
        # banner of granted control made it shorter a moment ago).
        wait(
            qtbot,
            lambda: (
                js(
                    "() => [document.getElementById('form-view').videoWidth, document.getElementById('form-view').videoHeight]"
                )
                == [view.width(), view.height()]
            ),
            10,
        )
        time.sleep(0.3)  # and the zoomed page in it
        video = js(
            "() => { const v = document.getElementById('form-view'); const r = v.getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height, v.videoWidth, v.videoHeight]; }"
        )
        left, top, width, height, vw, vh = video
        scale = min(width / vw, height / vh)
        x0, y0 = left + (width - vw * scale) / 2, top + (height - vh * scale) / 2
        page.mouse.click(x0 + fx * vw * scale, y0 + fy * vh * scale)
        page.locator("#type-input").fill("Dupont")
        page.get_by_role("button", name="Saisir").click()
        wait(qtbot, lambda: form_field(qtbot, window.call.form, "login-id") == "Dupont", 10)
        page.get_by_role("button", name="Réduire la page").click()
        wait(qtbot, lambda: window.call.form.zoom_factor() == 1.0, 10)
        window.call.take_back.click()  # the citizen takes control back: the zoom buttons go off
        wait(qtbot, lambda: page.get_by_role("button", name="Agrandir la page").is_disabled(), 10)

        page.get_by_role("button", name="Raccrocher").click()
        released_after_the_call(first, "Entretien terminé")
        # The paper of that call stays on the agenda, to download…
        assert page.locator("#agenda #documents li.received").count() == 1
        assert "dernier entretien" in page.locator("#documents-title").inner_text()
        screenshot(page, tmp_path, "console-agenda-1366x768.png")

        # ------------------------------------------------ call 2: the citizen hangs up on the kiosk
        second = appointments[1]
        pictures.append(join(second))
        assert "nom non communiqué" in page.locator("#citizen").inner_text()
        # …and the next citizen's call starts without it.
        assert page.locator("#call #documents li").count() == 0
        assert page.locator("#documents-status").inner_text() == ""
        check_one_screen(page, 1366, 768)
        window.call.hang_up.click()
        window.call.confirm_yes.click()
        released_after_the_call(second, "L'usager a terminé l'entretien")

        # ------------------------------------------------ call 3, at 1920×1080
        page.set_viewport_size({"width": 1920, "height": 1080})
        third = appointments[2]
        pictures.append(join(third))
        check_one_screen(page, 1920, 1080)
        wait(qtbot, lambda: "Borne en français" in kiosk_state(), 10)
        screenshot(page, tmp_path, "console-1920x1080.png")
        page.get_by_role("button", name="Raccrocher").click()
        released_after_the_call(third, "Entretien terminé")

        assert all(took < PICTURE_WITHIN_S for took in pictures), pictures
        assert js("() => window.cspViolations") == [] and csp_reports == []
    finally:
        page.close()
        # The window first: closing its form view still tells the engine, whose loop must be running.
        window.close()
        qtbot.waitUntil(window.call.form.sessions_released, timeout=10_000)
        loop.stop()
