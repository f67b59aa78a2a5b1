"""The screen's side of the reset check, on the Qt thread: wipe what the window holds of the session,
wait until the web engine has really destroyed the session's page and profile, then look.

What it looks at (core/reset_check.py judges):
- web_profile: the form view holds no page, view or profile, every ended session's profile is
  destroyed, and the default profile (which nothing should use) is off the record;
- web_storage: no file at all under the folders QtWebEngine writes a profile's cookies, cache,
  localStorage and IndexedDB to (QStandardPaths' AppDataLocation and CacheLocation, "QtWebEngine"):
  off-the-record profiles never write there, so any file is a leak (or planted) — the kiosk goes out
  of service, and only the start-up wipe (a restart, by staff) removes those folders;
- session_files: the documents folder of the form's file chooser (ui/session_files.py) is empty — the
  scans themselves never touch the disk but encrypted in the outbox (pages stay in memory);
- scan_temporaries (with the engine's: its desk of pages is gone): the documents panel shows no page;
- clipboard: no format at all, in the clipboard or the selection;
- settings: the kiosk's own language, normal text, the form at 100 %.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QStandardPaths, QTimer
from PySide6.QtGui import QClipboard, QGuiApplication
from PySide6.QtWebEngineCore import QWebEnginePage, QWebEngineProfile
from PySide6.QtWebEngineWidgets import QWebEngineView

from ..core.reset_check import (
    SCREEN_CHECKS,
    Check,
    CheckResult,
    SettingsFound,
    clipboard_empty,
    failed,
    leftovers,
    passed,
    settings_at_default,
)
from .form_view import FormView
from .session_files import SessionFiles

log = logging.getLogger(__name__)

RELEASE_WAIT_S = 5.0  # the page's and profile's deleteLater: a few event-loop turns, far less than this
RELEASE_POLL_MS = 20
WEB_ENGINE_FOLDER = "QtWebEngine"

Done = Callable[[list[CheckResult]], None]


class ResetWindow(Protocol):
    """What the reset needs of the kiosk's window besides its form view and session files."""

    def back_to_defaults(self) -> None:
        """Language, text size, reading, the screens' pictures: as for a new citizen."""

    def screen_settings(self) -> SettingsFound: ...

    def papers_shown(self) -> list[str]:
        """The scanned pages any screen still shows (named by position, never their image)."""
        ...


def web_storage_roots() -> list[Path]:
    """Where QtWebEngine keeps a disk-based profile's storage and cache, for this application (what
    `QWebEngineProfile(name)` would use, and the default profile if it were not off the record)."""
    roots = []
    for location in (
        QStandardPaths.StandardLocation.AppDataLocation,
        QStandardPaths.StandardLocation.AppLocalDataLocation,
        QStandardPaths.StandardLocation.CacheLocation,
    ):
        base = QStandardPaths.writableLocation(location)
        if base:
            roots.append(Path(base) / WEB_ENGINE_FOLDER)
    return sorted(set(roots))


def files_under(roots: list[Path]) -> list[str]:
    """Files under the folders, named from the folder ("QtWebEngine/OffTheRecord/Cookies"): the
    report says which, not where this machine keeps its home."""
    found: list[str] = []
    for root in roots:
        if root.is_dir():
            found.extend(str(p.relative_to(root.parent)) for p in root.rglob("*") if not p.is_dir())
        elif root.exists():
            found.append(root.name)
    return found


class ScreenReset(QObject):
    def __init__(
        self, window: ResetWindow, form: FormView, files: SessionFiles, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._window = window
        self._form = form
        self._files = files

    def wipe_and_check(self, start_up: bool, done: Done) -> None:
        """Called on the Qt thread; `done` gets the results once the web engine let go of the session."""
        self._wipe(start_up)
        deadline = time.monotonic() + RELEASE_WAIT_S
        form = self._form

        def look() -> None:
            if not _released(form) and time.monotonic() < deadline:
                QTimer.singleShot(RELEASE_POLL_MS, look)
                return
            try:
                done(self.check())
            except Exception as exc:  # unproven is not clean: every screen check fails
                log.exception("the screen's reset checks failed")
                done([failed(c, f"could not check: {type(exc).__name__}") for c in sorted(SCREEN_CHECKS)])

        look()

    def _wipe(self, start_up: bool) -> None:
        self._form.end_session()
        self._window.back_to_defaults()
        if start_up:
            self._files.clear_all()
            for root in web_storage_roots():
                # Nothing of this program should be there (every profile is off the record): a restart
                # removes whatever is, and the check that follows proves it.
                if root.exists():
                    log.warning("start-up: removing the web engine's storage folder %s", root)
                    shutil.rmtree(root, ignore_errors=True)
        else:
            self._files.clear()
        clipboard = QGuiApplication.clipboard()
        clipboard.clear(QClipboard.Mode.Clipboard)
        if clipboard.supportsSelection():
            clipboard.clear(QClipboard.Mode.Selection)

    def check(self) -> list[CheckResult]:
        return [
            self._web_profile(self._form),
            leftovers(Check.WEB_STORAGE, files_under(web_storage_roots()), "web engine file(s)"),
            leftovers(Check.SESSION_FILES, self._files.leftovers(), "session file(s)"),
            clipboard_empty(_clipboard_formats()),
            settings_at_default(self._window.screen_settings()),
            leftovers(Check.SCAN_TEMPORARIES, self._window.papers_shown(), "scanned page(s) on screen"),
        ]

    @staticmethod
    def _web_profile(form: FormView) -> CheckResult:
        problems = []
        if form.page is not None or form.view is not None or form.profile is not None:
            problems.append("the form view still holds a session's page")
        if not form.sessions_released():
            problems.append("an ended session's profile is not destroyed yet")
        alive = len(form.findChildren(QWebEnginePage)) + len(form.findChildren(QWebEngineView))
        if alive:
            problems.append(f"{alive} web page(s) or view(s) still alive")
        if not QWebEngineProfile.defaultProfile().isOffTheRecord():
            problems.append("the web engine's default profile keeps data on disk")
        return failed(Check.WEB_PROFILE, "; ".join(problems)) if problems else passed(Check.WEB_PROFILE)


def _released(form: FormView) -> bool:
    return form.sessions_released() and not form.findChildren(QWebEngineView)


def _clipboard_formats() -> list[str]:
    clipboard = QGuiApplication.clipboard()
    modes = [QClipboard.Mode.Clipboard]
    if clipboard.supportsSelection():
        modes.append(QClipboard.Mode.Selection)
    found: list[str] = []
    for mode in modes:
        data = clipboard.mimeData(mode)
        if data is not None:
            found.extend(f"{mode.name}:{f}" for f in data.formats())
    return found
