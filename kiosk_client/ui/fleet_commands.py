"""IT staff's commands on the kiosk's window (the Qt side of core/commands.py): a screenshot of the
kiosk's own window with a calm notice to whoever stands there, a fresh idle screen, a clean exit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from ..core.commands import IN_SESSION, CommandRefused
from ..core.events import KioskSnapshot
from ..core.session import Phase
from .i18n import Translator
from .widgets import label

log = logging.getLogger(__name__)

NOTICE_MS = 5000  # the notice stays this long after the picture was taken
Done = Callable[..., None]  # done(value) or done(None, error)


class CommandWindow(Protocol):
    """What of the kiosk's window the commands use."""

    snapshot: KioskSnapshot | None
    t: Translator

    def back_to_defaults(self) -> None: ...

    def show_state(self, snapshot: KioskSnapshot) -> None: ...


class FleetCommands(QObject):
    """Answers the bridge's `command_requested` on the Qt thread."""

    def __init__(
        self, window: QWidget, state: CommandWindow, quit_app: Callable[[], None] | None = None
    ) -> None:
        super().__init__(window)
        self._window = window
        self._state = state
        self._quit = quit_app or self._quit_application
        self.notice: QLabel = label("assistNotice")
        self.notice.setParent(window)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notice.hide()
        self._hide = QTimer(self)
        self._hide.setSingleShot(True)
        self._hide.setInterval(NOTICE_MS)
        self._hide.timeout.connect(self.notice.hide)

    def handle(self, kind: str, done: Done) -> None:
        try:
            if kind == "screenshot":
                done(self.screenshot())
            elif kind == "reload":
                self.reload()
                done(None)
            elif kind == "restart":
                log.warning(
                    "IT staff asked for a restart: the kiosk exits cleanly, the service manager starts it"
                )
                done(None)
                QTimer.singleShot(0, self._quit)
            else:
                done(None, ValueError(f"unknown command {kind!r}"))
        except Exception as exc:  # the engine reports it as failed; the window goes on
            log.exception("command %s failed on the window", kind)
            done(None, exc)

    def screenshot(self) -> bytes:
        """The window as the person in front of it sees it, the notice included; never during a session
        (the engine checked; this is the last look, on the thread that draws)."""
        snapshot = self._state.snapshot
        if snapshot is None or snapshot.session.phase is not Phase.IDLE:
            raise CommandRefused(IN_SESSION)
        self.notice.setText(self._state.t("command.screenshot_notice"))
        width = min(self._window.width() - 40, max(600, self._window.width() * 2 // 3))
        self.notice.setFixedWidth(max(200, width))
        self.notice.adjustSize()
        # A toast in the middle of the screen: over no button, gone after a few seconds.
        self.notice.move(
            (self._window.width() - self.notice.width()) // 2,
            (self._window.height() - self.notice.height()) // 2,
        )
        self.notice.show()
        self.notice.raise_()
        self._hide.start()
        picture = self._window.grab()  # this window only: never the desktop, never another client
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not picture.save(buffer, "PNG"):
            raise RuntimeError("the window's picture could not be encoded as PNG")
        buffer.close()
        return bytes(data.data())

    def reload(self) -> None:
        """The idle screen drawn afresh from the engine's (just fetched) state; nothing if a session
        began meanwhile (the citizen's language and text size are theirs)."""
        snapshot = self._state.snapshot
        if snapshot is None or snapshot.session.phase is not Phase.IDLE:
            return
        self._state.back_to_defaults()
        self._state.show_state(snapshot)

    @staticmethod
    def _quit_application() -> None:
        app = QApplication.instance()
        if app is not None:
            app.quit()
