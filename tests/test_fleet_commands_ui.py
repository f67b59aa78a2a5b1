"""The window's side of IT staff's commands (ui/fleet_commands.py), offscreen: the last look before a
screenshot, the notice in the kiosk's language, the redraw, the clean exit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kiosk_client.core.commands import IN_SESSION, CommandRefused
from kiosk_client.core.events import KioskSnapshot
from kiosk_client.core.models import Appointment
from kiosk_client.core.session import IDLE, Phase, Session
from kiosk_client.ui.fleet_commands import FleetCommands
from kiosk_client.ui.i18n import Translator


def snapshot(session: Session = IDLE) -> KioskSnapshot:
    return KioskSnapshot("Site", "Borne", session, (), True, True, frozenset(), True, True, False, 0.0)


class FakeWindowState:
    """What FleetCommands reads and calls on the kiosk's window, recorded."""

    def __init__(self, language: str = "fr") -> None:
        self.snapshot: KioskSnapshot | None = snapshot()
        self.t = Translator(language)
        self.redrawn: list[KioskSnapshot] = []
        self.defaults = 0

    def back_to_defaults(self) -> None:
        self.defaults += 1

    def show_state(self, snapshot: KioskSnapshot) -> None:
        self.redrawn.append(snapshot)


@pytest.fixture
def window(qtbot: QtBot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    return widget


def answer(commands: FleetCommands, kind: str) -> tuple[object, BaseException | None]:
    got: list[tuple[object, BaseException | None]] = []
    commands.handle(kind, lambda value, error=None: got.append((value, error)))
    [result] = got
    return result


def test_a_screenshot_is_the_window_with_the_notice_in_the_kiosks_language(window: QWidget) -> None:
    state = FakeWindowState("en")
    commands = FleetCommands(window, state)
    png, error = answer(commands, "screenshot")
    assert error is None and isinstance(png, bytes)
    image = QImage.fromData(png, "PNG")
    assert (image.width(), image.height()) == (900, 600)
    assert (
        commands.notice.isVisible()
        and commands.notice.text() == "The help desk is looking at the kiosk's screen."
    )


def test_no_screenshot_once_a_session_began(window: QWidget) -> None:
    state = FakeWindowState()
    start = datetime.now(UTC)
    appointment = Appointment("a1", "CAF", "Mme Martin", start, start + timedelta(minutes=20))
    commands = FleetCommands(window, state)
    for phase in (Phase.UPCOMING, Phase.WAITING_FOR_CLERK, Phase.IN_CALL, Phase.ENDED):
        state.snapshot = snapshot(Session(phase, appointment))
        value, error = answer(commands, "screenshot")
        assert value is None and isinstance(error, CommandRefused) and error.reason == IN_SESSION, phase
    assert not commands.notice.isVisible()  # nobody was told of a picture that was not taken


def test_reload_redraws_and_restart_quits_after_answering(window: QWidget, qtbot: QtBot) -> None:
    state = FakeWindowState()
    quits: list[bool] = []
    commands = FleetCommands(window, state, quit_app=lambda: quits.append(True))
    assert answer(commands, "reload") == (None, None)
    assert state.defaults == 1 and state.redrawn == [state.snapshot]
    assert answer(commands, "restart") == (None, None)
    assert quits == []  # the engine hears "done" first; the exit comes on the next turn of Qt's loop
    qtbot.waitUntil(lambda: quits == [True], timeout=2000)


def test_a_reload_leaves_a_session_that_began_meanwhile_alone(window: QWidget) -> None:
    state = FakeWindowState()
    start = datetime.now(UTC)
    state.snapshot = snapshot(Session(Phase.UPCOMING, Appointment("a1", "CAF", "Mme Martin", start, start)))
    assert answer(FleetCommands(window, state), "reload") == (None, None)
    assert state.defaults == 0 and state.redrawn == []
