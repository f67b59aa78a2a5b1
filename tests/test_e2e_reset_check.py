"""End to end through the kiosk's window, the reference central and the clerk bot: after every session
the kiosk proves it forgot the citizen and the central holds the proof; a planted file puts it out of
service (screen, failing report, no call for the next appointment) until a restart wipes and checks
again; a report the central could not take at the session's end reaches it once it is back."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from kiosk_client.central.admin import CentralAdmin
from kiosk_client.central.server import CentralThread
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.navigation import NavigationPolicy
from kiosk_client.core.session import Phase
from kiosk_client.core.volume import DEFAULT_LEVEL
from kiosk_client.runtime import LoopThread
from kiosk_client.tools.clerk_bot import BotCallReport, ClerkBot
from kiosk_client.ui.bridge import BridgeFormView, BridgeVideoSink, EngineBridge
from kiosk_client.ui.main_window import KioskWindow
from kiosk_client.ui.reset_screen import files_under, web_storage_roots

from .conftest import Site
from .kiosk_rig import enrolled_token, make_engine

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def own_web_engine_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QtWebEngine's storage folders of this test alone: a file planted here must not put a kiosk of
    another test (another worker) out of service."""
    for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME"):
        folder = tmp_path / name.lower()
        folder.mkdir(mode=0o700)
        monkeypatch.setenv(name, str(folder))


@dataclass
class Kiosk:
    loop: LoopThread
    bridge: EngineBridge
    engine: KioskEngine
    window: KioskWindow

    def stop(self) -> None:
        self.loop.stop()
        self.window.close()


def start_kiosk(qtbot: QtBot, url: str, token: str, data_dir: Path) -> Kiosk:
    loop = LoopThread("engine")
    loop.start()
    bridge = EngineBridge(loop)
    engine = make_engine(
        url, token, data_dir, bridge.publish, BridgeVideoSink(bridge), BridgeFormView(bridge)
    )
    window = KioskWindow(bridge, engine, "fr")
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    loop.submit(engine.run())
    return Kiosk(loop, bridge, engine, window)


def run_js(qtbot: QtBot, kiosk: Kiosk, script: str) -> Any:
    page = kiosk.window.call.form.page
    assert page is not None
    result: list[Any] = []
    page.runJavaScript(script, 0, result.append)
    qtbot.waitUntil(lambda: bool(result), timeout=10_000)
    return result[0]


def wait_for_form(qtbot: QtBot, kiosk: Kiosk, url: str) -> None:
    loaded = f"location.href.startsWith('{url}') && document.readyState === 'complete'"
    qtbot.waitUntil(lambda: run_js(qtbot, kiosk, loaded) is True, timeout=15_000)


def reports_for(admin: CentralAdmin, appointment_id: str | None, trigger: str) -> list[dict[str, Any]]:
    return [
        r
        for r in admin.session_reports()
        if r["appointment_id"] == appointment_id and r["trigger"] == trigger
    ]


def offered(site_url: str, clerk_token: str, appointment_id: str) -> bool:
    response = httpx.get(
        f"{site_url}/api/v1/appointments/{appointment_id}/call",
        headers={"Authorization": f"Bearer {clerk_token}"},
        params={"after": 0},
    )
    response.raise_for_status()
    return response.status_code == 200 and bool(response.json()["has_offer"])


def form_appointment(site: Site, in_s: float) -> dict[str, object]:
    start = datetime.now().astimezone() + timedelta(seconds=in_s)
    return site.admin.create_appointment(
        site.kiosk_id,
        site.clerk,
        "CAF",
        start,
        allowed_origins=[site.url],
        start_url=f"{site.url}/demo-form/",
    )


@pytest.fixture
def loops() -> Iterator[LoopThread]:
    bot_loop = LoopThread("bot")
    bot_loop.start()
    yield bot_loop
    bot_loop.stop()


def clerk_for(
    loops: LoopThread, url: str, clerk_token: str, appointment: dict[str, object]
) -> tuple[ClerkBot, concurrent.futures.Future[BotCallReport]]:
    """The clerk bot answers the appointment's call at once and stays until the citizen hangs up."""
    bot = ClerkBot(url, clerk_token, hold_s=120, answer_at_start=False)
    start = datetime.fromisoformat(str(appointment["start"]))
    return bot, loops.submit(bot.serve_appointment(str(appointment["id"]), start))


def citizen_hangs_up(qtbot: QtBot, kiosk: Kiosk) -> None:
    kiosk.window.call.hang_up.click()
    kiosk.window.call.confirm_yes.click()
    qtbot.waitUntil(lambda: kiosk.engine.session.phase is not Phase.IN_CALL, timeout=5_000)


def test_after_a_session_the_central_holds_a_passing_reset_report(
    qtbot: QtBot, site: Site, tmp_path: Path, loops: LoopThread
) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    appointment = form_appointment(site, 3)
    appointment_id = str(appointment["id"])
    kiosk = start_kiosk(qtbot, site.url, token, tmp_path)
    bot, served = clerk_for(loops, site.url, site.clerk.token, appointment)
    try:
        qtbot.waitUntil(lambda: kiosk.window.call.form.page is not None, timeout=20_000)
        # The citizen's traces: the administration's page keeps a cookie, localStorage and an IndexedDB
        # database; something is copied; the citizen chose English, larger text, a louder clerk.
        wait_for_form(qtbot, kiosk, site.url)
        run_js(
            qtbot,
            kiosk,
            "document.cookie = 'citizen=Dupont; max-age=86400; path=/';"
            "localStorage.setItem('draft', 'FR76 3000 6000'); indexedDB.open('kiosk-test', 1); 'ok'",
        )
        assert "citizen=Dupont" in run_js(qtbot, kiosk, "document.cookie")
        QGuiApplication.clipboard().setText("FR76 3000 6000 0112 3456 7890 189")
        kiosk.window.switch_language()
        kiosk.window.toggle_larger_text(True)
        kiosk.bridge.submit(lambda: kiosk.engine.change_volume(2))
        qtbot.waitUntil(lambda: kiosk.engine.snapshot().volume == DEFAULT_LEVEL + 2, timeout=5_000)

        citizen_hangs_up(qtbot, kiosk)
        served.result(timeout=15)
        qtbot.waitUntil(lambda: bool(reports_for(site.admin, appointment_id, "session_end")), timeout=20_000)
        [report] = reports_for(site.admin, appointment_id, "session_end")
        assert report["passed"] is True, report["reset"]
        assert report["session"]["end_reason"] == "citizen_hung_up"
        assert {c["check"] for c in report["reset"]["checks"]} == {
            "web_profile", "web_storage", "session_files", "scan_temporaries", "clipboard", "devices",
            "settings", "outbox", "print_files",
        }  # fmt: skip
        assert reports_for(site.admin, None, "start_up")[0]["passed"] is True
        assert kiosk.window.stack.currentWidget() is kiosk.window.idle
        assert kiosk.window.t.language == "fr" and not kiosk.window.larger_text
        assert QGuiApplication.clipboard().text() == ""
        assert kiosk.engine.snapshot().volume == DEFAULT_LEVEL
        assert files_under(web_storage_roots()) == []

        # The next citizen's page, in the profile a session gets: nothing of the last one.
        form = kiosk.window.call.form
        form.start_session(f"{site.url}/demo-form/", NavigationPolicy((site.url,)))
        wait_for_form(qtbot, kiosk, site.url)
        left = "document.cookie + '|' + (localStorage.getItem('draft') || '')"
        assert run_js(qtbot, kiosk, left) == "|"
        form.end_session()
        qtbot.waitUntil(form.sessions_released, timeout=5_000)
    finally:
        kiosk.stop()
        loops.submit(bot.aclose()).result(timeout=5)


def test_a_planted_file_puts_the_kiosk_out_of_service_until_a_restart(
    qtbot: QtBot, site: Site, tmp_path: Path, loops: LoopThread
) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    first = form_appointment(site, 3)
    first_id = str(first["id"])
    kiosk = start_kiosk(qtbot, site.url, token, tmp_path)
    bot, served = clerk_for(loops, site.url, site.clerk.token, first)
    try:
        qtbot.waitUntil(lambda: kiosk.engine.session.phase is Phase.IN_CALL, timeout=20_000)
        # The next appointment is already due when this one ends: a clean kiosk would call at once.
        following = site.appointment_in(5)
        following_id = str(following["id"])
        storage = next(r for r in web_storage_roots() if str(r).startswith(str(tmp_path)))
        planted = storage / "OffTheRecord" / "Cookies"
        planted.parent.mkdir(parents=True)
        planted.write_bytes(b"SQLite format 3\x00 citizen=Dupont")
        citizen_hangs_up(qtbot, kiosk)
        served.result(timeout=15)

        window = kiosk.window
        qtbot.waitUntil(lambda: window.stack.currentWidget() is window.out_of_service, timeout=20_000)
        assert window.out_of_service.title.text() == "Borne momentanément indisponible."
        assert window.out_of_service.message.text() == "Adressez-vous à l’accueil."
        qtbot.waitUntil(lambda: bool(reports_for(site.admin, first_id, "session_end")), timeout=20_000)
        [report] = reports_for(site.admin, first_id, "session_end")
        assert report["passed"] is False
        [storage_check] = [c for c in report["reset"]["checks"] if not c["passed"]]
        assert storage_check["check"] == "web_storage" and "Cookies" in storage_check["detail"]
        qtbot.waitUntil(lambda: site.admin.kiosks()[0]["state"] == "out_of_service", timeout=10_000)
        cached = json.loads((tmp_path / "cache" / "out-of-service.json").read_text())
        assert cached["failed_checks"] == ["web_storage"]
        qtbot.wait(4_000)  # the next appointment's join window is open: still no call
        assert not offered(site.url, site.clerk.token, following_id)
        assert kiosk.engine.session.phase is Phase.IDLE
        assert window.stack.currentWidget() is window.out_of_service
    finally:
        kiosk.stop()

    # Staff restart the kiosk (the staff panel of issue 12 item 4 will add a button): it wipes the web
    # engine's folders at start-up, checks again, and the appointment under way gets its call.
    again = start_kiosk(qtbot, site.url, token, tmp_path)
    try:
        qtbot.waitUntil(lambda: offered(site.url, site.clerk.token, following_id), timeout=20_000)
        assert not planted.exists()
        assert not (tmp_path / "cache" / "out-of-service.json").exists()
        assert [r["passed"] for r in reports_for(site.admin, None, "start_up")] == [True, True]
        qtbot.waitUntil(lambda: again.window.stack.currentWidget() is again.window.waiting, timeout=10_000)
    finally:
        again.stop()
        loops.submit(bot.aclose()).result(timeout=5)


def test_a_report_the_central_missed_at_the_session_end_reaches_it_once_it_is_back(
    qtbot: QtBot, tmp_path: Path, loops: LoopThread
) -> None:
    database = tmp_path / "central.db"
    central = CentralThread(database)
    central.start()
    port, admin_token = central.server.port, central.admin_token
    admin = CentralAdmin(central.url, admin_token)
    admin.configure(join_before_seconds=2, poll_interval_seconds=1, no_show_after_seconds=60)
    kiosk_id = admin.create_kiosk("Borne 1", "France Services de Test")
    clerk = admin.create_clerk("Mme Martin", "CAF")
    token = enrolled_token(central.url, admin.enrollment_code(kiosk_id))
    site = Site(central.url, kiosk_id, "", clerk, admin, admin_token)
    appointment = site.appointment_in(3)
    appointment_id = str(appointment["id"])
    kiosk = start_kiosk(qtbot, central.url, token, tmp_path)
    bot, _ = clerk_for(loops, central.url, clerk.token, appointment)
    back: CentralThread | None = None
    try:
        qtbot.waitUntil(lambda: kiosk.engine.session.phase is Phase.IN_CALL, timeout=20_000)
        qtbot.waitUntil(lambda: bool(reports_for(admin, None, "start_up")), timeout=10_000)
        central.stop()  # the link to the central is cut while the citizen is still there
        citizen_hangs_up(qtbot, kiosk)

        pending = tmp_path / "cache" / "pending-session-reports.json"

        def kept() -> list[dict[str, Any]]:
            return list(json.loads(pending.read_text())) if pending.exists() else []

        def kept_for_this_session() -> bool:
            return any(r["session"] and r["session"]["appointment_id"] == appointment_id for r in kept())

        qtbot.waitUntil(kept_for_this_session, timeout=20_000)
        # The check passed: only the central is away, the kiosk is ready for the next citizen.
        assert kiosk.window.stack.currentWidget() is kiosk.window.idle

        back = CentralThread(database, admin_token=admin_token)
        back.server.port = port  # the same address: the kiosk knows only this one
        back.start()
        qtbot.waitUntil(lambda: bool(reports_for(admin, appointment_id, "session_end")), timeout=60_000)
        [report] = reports_for(admin, appointment_id, "session_end")
        assert report["passed"] is True
        qtbot.waitUntil(lambda: kept() == [], timeout=10_000)
    finally:
        kiosk.stop()
        loops.submit(bot.aclose()).result(timeout=5)
        admin.close()
        if back is not None:
            back.stop()
