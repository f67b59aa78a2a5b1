"""The screen's side of the reset check (Qt thread): each check fails on what was planted, the wipe
after a session clears what a session leaves, and only the start-up wipe removes the web engine's
folders (a leak there keeps the kiosk out of service until a restart)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, MemoryCache
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.reset_check import SCREEN_CHECKS, Check, CheckResult
from kiosk_client.runtime import LoopThread
from kiosk_client.ui.bridge import EngineBridge
from kiosk_client.ui.main_window import KioskWindow
from kiosk_client.ui.reset_screen import web_storage_roots


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KioskWindow]:
    # Folders of this test's own: the web engine's (QStandardPaths reads XDG_* on every call) and
    # the session files' memory-backed root.
    for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
        folder = tmp_path / name.lower()
        folder.mkdir(mode=0o700)
        monkeypatch.setenv(name, str(folder))
    engine = KioskEngine(
        FakeCentral(), FakeCallFactory(), MemoryCache(), CentralClock(SystemClock()), lambda e: None
    )
    loop = LoopThread("reset-screen")
    loop.start()
    kiosk = KioskWindow(EngineBridge(loop), engine, "fr")
    qtbot.addWidget(kiosk)
    yield kiosk
    QGuiApplication.clipboard().clear()
    loop.stop()


def failing(results: list[CheckResult]) -> dict[Check, str]:
    return {r.check: r.detail for r in results if not r.passed}


def wipe_and_check(qtbot: QtBot, window: KioskWindow, start_up: bool) -> list[CheckResult]:
    got: list[list[CheckResult]] = []
    window.screen_reset.wipe_and_check(start_up, got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10_000)
    return got[0]


def test_a_clean_window_passes_every_screen_check(qtbot: QtBot, window: KioskWindow) -> None:
    results = wipe_and_check(qtbot, window, start_up=False)
    assert failing(results) == {}
    assert {r.check for r in results} == SCREEN_CHECKS
    ours = (os.environ["XDG_DATA_HOME"], os.environ["XDG_CACHE_HOME"])
    assert all(str(root).startswith(ours) for root in web_storage_roots())


def test_something_on_the_clipboard_fails_and_the_wipe_clears_it(qtbot: QtBot, window: KioskWindow) -> None:
    QGuiApplication.clipboard().setText("FR76 3000 6000 0112 3456 7890 189")
    found = failing(window.screen_reset.check())
    assert Check.CLIPBOARD in found and "text/plain" in found[Check.CLIPBOARD]
    assert "FR76" not in found[Check.CLIPBOARD]  # what was left is named, never shown
    assert failing(wipe_and_check(qtbot, window, start_up=False)) == {}
    assert QGuiApplication.clipboard().text() == ""


def test_the_last_citizens_language_and_text_size_fail_and_the_wipe_restores_them(
    qtbot: QtBot, window: KioskWindow
) -> None:
    window.switch_language()
    window.toggle_larger_text(True)
    found = failing(window.screen_reset.check())
    assert "language en (default fr)" in found[Check.SETTINGS] and "larger text" in found[Check.SETTINGS]
    assert failing(wipe_and_check(qtbot, window, start_up=False)) == {}
    assert window.t.language == "fr" and not window.larger_text


def test_a_file_in_the_web_engines_storage_fails_until_the_start_up_wipe(
    qtbot: QtBot, window: KioskWindow
) -> None:
    storage = next(r for r in web_storage_roots() if str(r).startswith(os.environ["XDG_DATA_HOME"]))
    planted = storage / "Default" / "Local Storage" / "leveldb" / "000003.log"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"citizen=42")
    after_session = failing(wipe_and_check(qtbot, window, start_up=False))
    assert list(after_session) == [Check.WEB_STORAGE] and "000003.log" in after_session[Check.WEB_STORAGE]
    assert planted.exists()  # only a restart (staff) removes the folders
    assert failing(wipe_and_check(qtbot, window, start_up=True)) == {}
    assert not planted.exists()


def test_a_file_left_in_the_session_files_folder_fails_until_the_start_up_wipe(
    qtbot: QtBot, window: KioskWindow
) -> None:
    window.session_files.add("avis d'imposition.pdf", b"%PDF")
    planted = Path(os.environ["XDG_RUNTIME_DIR"]) / "kiosk-client-documents" / "scan-0001.png"
    planted.write_bytes(b"\x89PNG")
    after_session = failing(wipe_and_check(qtbot, window, start_up=False))
    assert after_session == {Check.SESSION_FILES: "1 session file(s) left: scan-0001.png"}
    assert failing(wipe_and_check(qtbot, window, start_up=True)) == {}
    assert not planted.exists()


def test_a_scanned_page_left_on_the_documents_panel_fails(qtbot: QtBot, window: KioskWindow) -> None:
    from kiosk_client.core.document_desk import DocumentsState, PagePreview
    from kiosk_client.ui.screen_audit import _preview

    pages = (PagePreview(1, _preview(), "gray"), PagePreview(2, _preview(), "gray"))
    window.call.documents.show_state(DocumentsState(pages=pages), window.t)
    found = failing(window.screen_reset.check())
    assert found == {Check.SCAN_TEMPORARIES: "2 scanned page(s) on screen left: page 1, page 2"}
    assert failing(wipe_and_check(qtbot, window, start_up=False)) == {}


def test_the_form_views_page_and_profile_are_destroyed_before_the_check_passes(
    qtbot: QtBot, window: KioskWindow
) -> None:
    from kiosk_client.core.navigation import NavigationPolicy

    window.call.form.start_session("about:blank", NavigationPolicy(()))
    found = failing(window.screen_reset.check())  # the check alone, without the wipe
    assert "still holds a session's page" in found[Check.WEB_PROFILE]
    assert failing(wipe_and_check(qtbot, window, start_up=False)) == {}
    assert window.call.form.sessions_released()
