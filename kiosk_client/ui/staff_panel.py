"""The staff panel (« Espace accueil »): opened by five taps in the screen's top-left corner within a
few seconds, then the PIN. It renders what the engine reports and sends the staff's commands; the
engine decides (core/staff_access.py, the engine's staff_* commands)."""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QMouseEvent, QTouchEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QScroller,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from ..core.engine import LiveCheck, StaffDeviceCheck, StaffReport, WalkInServices
from ..core.events import KioskSnapshot
from ..core.models import RgbImage
from ..core.staff_access import Attempt, Verdict
from .i18n import Translator
from .staff_devices import DeviceCheckPage
from .widgets import button, label

TAPS = 5
TAPS_WITHIN_S = 4.0
CORNER_PX = 96
PIN_IDLE_S = 60.0  # the PIN pad closes if nobody types
WALK_IN_REFRESH_S = 5.0  # the services with a clerk available, asked again while the walk-in page is open
SERVICES_WIDTH = 520
# The column, less its right margin, the button's padding and border (theme.py), and room for the
# scroll bar when there are many services.
TEXT_WIDTH = SERVICES_WIDTH - 8 - 2 * (20 + 3) - 30


class CornerTaps(QObject):
    """Watches every press on the window: five in its top-left corner, quickly."""

    triggered = Signal()

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self._taps: list[float] = []

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        point: QPoint | None = None
        if event.type() == QEvent.Type.MouseButtonPress and isinstance(event, QMouseEvent):
            point = event.globalPosition().toPoint()
        elif event.type() == QEvent.Type.TouchBegin and isinstance(event, QTouchEvent) and event.points():
            point = event.points()[0].globalPosition().toPoint()
        if point is not None and self._window.isVisible():
            local = self._window.mapFromGlobal(point)
            if 0 <= local.x() < CORNER_PX and 0 <= local.y() < CORNER_PX:
                self.tap(time.monotonic())
        return False  # never takes the press away from what it was meant for

    def tap(self, now: float) -> None:
        self._taps = [t for t in self._taps if now - t < TAPS_WITHIN_S] + [now]
        if len(self._taps) >= TAPS:
            self._taps = []
            self.triggered.emit()


class Keypad(QWidget):
    """Digits, « Effacer », « Valider »: a PIN (shown as dots) or a walk-in code (shown 3 by 3)."""

    entered = Signal(str)
    typed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.secret = True
        self.digits = ""
        self.shown = label("staffKeypadValue", wrap=False)
        self.shown.setAlignment(Qt.AlignmentFlag.AlignCenter)
        grid = QGridLayout()
        grid.setSpacing(10)
        self.keys: dict[str, QWidget] = {}
        for index, key in enumerate("123456789C0V"):
            widget = button(f"staffKey{key}", "staffKey")
            widget.setFixedSize(128, 80)
            widget.setText({"C": "⌫", "V": "OK"}.get(key, key))
            widget.clicked.connect(lambda _=False, k=key: self.press(k))
            grid.addWidget(widget, index // 3, index % 3)
            self.keys[key] = widget
        layout = QVBoxLayout(self)
        layout.addStretch(1)  # the value sits on the keys, whatever the screen's height
        layout.addWidget(self.shown)
        layout.addLayout(grid)
        layout.addStretch(1)
        self._render()

    def clear(self, secret: bool) -> None:
        self.secret = secret
        self.digits = ""
        self._render()

    def press(self, key: str) -> None:
        self.typed.emit()
        if key == "C":
            self.digits = self.digits[:-1]
        elif key == "V":
            if self.digits:
                self.entered.emit(self.digits)
            return
        elif len(self.digits) < 8:
            self.digits += key
        self._render()

    def _render(self) -> None:
        if self.secret:
            self.shown.setText("●" * len(self.digits) or "—")
        else:
            self.shown.setText(" ".join(self.digits[i : i + 3] for i in range(0, len(self.digits), 3)) or "—")


class WalkInServicesBox(QWidget):
    """Beside the code's keypad on the walk-in page: a big button for each service with a clerk
    available now (its name and how many), or a calm sentence when there is none."""

    chosen = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setFixedWidth(SERVICES_WIDTH)
        self.title = label("staffWalkInServicesTitle")
        self.status = label("staffWalkInServicesStatus")
        self.buttons: dict[str, QPushButton] = {}
        self._list = QVBoxLayout()
        self._list.setSpacing(12)
        self._list.setContentsMargins(0, 0, 0, 0)
        holder = QWidget()
        column = QVBoxLayout(holder)
        column.setContentsMargins(0, 0, 8, 0)
        column.addLayout(self._list)
        column.addStretch(1)
        self.list_area = QScrollArea()
        self.list_area.setObjectName("staffWalkInServicesList")
        self.list_area.setWidget(holder)
        self.list_area.setWidgetResizable(True)
        self.list_area.setFrameShape(QFrame.Shape.NoFrame)
        self.list_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        QScroller.grabGesture(self.list_area.viewport(), QScroller.ScrollerGestureType.LeftMouseButtonGesture)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        # The title stays where it is whatever follows it: the sentence, the buttons, or both.
        layout.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.status)
        layout.addWidget(self.list_area, 4)
        layout.addStretch(1)
        self.services: WalkInServices | None = None

    def show_services(self, result: WalkInServices | None, t: Translator) -> None:
        """None: being asked for (the page just opened)."""
        self.services = result
        self.title.setText(t("staff.walk_in_services"))
        wanted = [] if result is None else [s for s in result.services]
        names = [s.service for s in wanted]
        if names != list(self.buttons):  # rebuilt only when the services change: a touch stays on its button
            for widget in self.buttons.values():
                self._list.removeWidget(widget)
                widget.deleteLater()
            self.buttons = {}
            for service in wanted:
                widget = button("staffWalkInService", "staffWalkInService")
                widget.setMinimumHeight(96)
                # As wide as the column, whatever its text asks for (a long name is cut below).
                widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
                widget.clicked.connect(lambda _=False, name=service.service: self.chosen.emit(name))
                self._list.addWidget(widget)
                self.buttons[service.service] = widget
        for service in wanted:
            count = (
                t("staff.walk_in_clerks_one")
                if service.clerks_available == 1
                else t("staff.walk_in_clerks", count=str(service.clerks_available))
            )
            widget = self.buttons[service.service]
            widget.ensurePolished()  # the stylesheet's font, to measure the name with
            name = widget.fontMetrics().elidedText(service.service, Qt.TextElideMode.ElideRight, TEXT_WIDTH)
            widget.setText(f"{name}\n{count}")
            widget.setToolTip(service.service)
        if result is None:
            self.status.setText(t("staff.walk_in_services_loading"))
        elif result.problem is not None:
            self.status.setText(t(f"staff.walk_in.{result.problem}"))
        elif not wanted:
            self.status.setText(t("staff.walk_in_services_none"))
        else:
            self.status.setText("")
        self.status.setVisible(bool(self.status.text()))

    def set_enabled(self, enabled: bool) -> None:
        for widget in self.buttons.values():
            widget.setEnabled(enabled)


class StaffPanel(QFrame):
    unlock_requested = Signal(str)
    walk_in_requested = Signal(str)
    walk_in_service_requested = Signal(str)
    walk_in_services_wanted = Signal()  # while the walk-in page is open, every few seconds
    end_requested = Signal()
    rejoin_requested = Signal()
    service_requested = Signal(bool)  # True: out of service
    device_check_requested = Signal()
    live_check_requested = Signal()  # the device check page opened: the camera's picture, the level
    live_check_stopped = Signal()  # it closed: camera and microphone released
    test_sound_requested = Signal()
    used = Signal()  # any touch while open: the engine keeps the panel open
    closed = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("staffPanel")
        self.setAutoFillBackground(True)
        self.t = Translator("fr")
        self.mode = "closed"  # "pin", "panel", "code" (walk-in code), "devices", or "closed"
        self._out_of_service = False
        self._pin_idle = QTimer(self)
        self._pin_idle.setSingleShot(True)
        self._pin_idle.timeout.connect(self.close_panel)

        self.title = label("staffTitle")
        self.message = label("staffMessage")
        self.close_button = button("staffClose")
        self.close_button.clicked.connect(self.close_panel)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.close_button)

        self.keypad = Keypad()
        self.keypad.entered.connect(self._entered)
        self.keypad.typed.connect(self._typed)
        # The walk-in page: the keypad for a clerk's code, and beside it the services with a clerk
        # available (the PIN pad shows the keypad alone).
        self.services = WalkInServicesBox()
        self.services.chosen.connect(self._service_chosen)
        self.services.hide()
        self._services_timer = QTimer(self)
        self._services_timer.setInterval(int(WALK_IN_REFRESH_S * 1000))
        self._services_timer.timeout.connect(self._want_services)
        keypad_page = QWidget()
        keypad_layout = QHBoxLayout(keypad_page)
        keypad_layout.addStretch(1)
        keypad_layout.addWidget(self.keypad)
        keypad_layout.addSpacing(56)
        keypad_layout.addWidget(self.services)
        keypad_layout.addStretch(1)

        self.info = label("staffInfo")
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.walk_in = button("staffWalkIn")
        self.rejoin = button("staffRejoin")
        self.end = button("staffEnd")
        self.check = button("staffCheckDevices")
        self.service = button("staffService")
        self.walk_in.clicked.connect(self._ask_code)
        self.rejoin.clicked.connect(lambda: self._command(self.rejoin_requested))
        self.end.clicked.connect(lambda: self._command(self.end_requested))
        self.check.clicked.connect(self._open_devices)
        self.service.clicked.connect(lambda: self._command_service())
        actions = QGridLayout()
        actions.setSpacing(10)
        for index, widget in enumerate((self.walk_in, self.rejoin, self.end, self.check, self.service)):
            widget.setMinimumHeight(64)
            actions.addWidget(widget, index // 2, index % 2)
        right = QVBoxLayout()
        right.addLayout(actions)
        right.addStretch(1)
        panel_page = QWidget()
        panel_layout = QHBoxLayout(panel_page)
        panel_layout.addWidget(self.info, 1)
        panel_layout.addLayout(right, 1)

        # « Test des appareils »: the camera's live picture, the microphone's level, the sound, the scanner
        self.device_page = DeviceCheckPage()
        self.sound = self.device_page.sound
        self.device_page.back_requested.connect(self._leave_devices)
        self.device_page.again_requested.connect(self._test_devices)
        self.device_page.test_sound_requested.connect(lambda: self._command(self.test_sound_requested))

        self.pages = QStackedLayout()
        self.pages.addWidget(keypad_page)
        self.pages.addWidget(panel_page)
        self.pages.addWidget(self.device_page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 20, 28, 20)
        layout.addLayout(header)
        layout.addWidget(self.message)
        layout.addLayout(self.pages, 1)
        self.hide()

    # --- what the window calls

    def open_pin(self, t: Translator) -> None:
        self.t = t
        self.mode = "pin"
        self._leave_services()
        self.keypad.clear(secret=True)
        self.message.setText(self.t("staff.pin_hint"))
        self._show_page(0)
        self._pin_idle.start(int(PIN_IDLE_S * 1000))

    def show_attempt(self, attempt: Attempt) -> None:
        if attempt.verdict is Verdict.OPENED:
            self.mode = "panel"
            self._pin_idle.stop()
            self.message.setText("")
            self._show_page(1)
            return
        self.keypad.clear(secret=True)
        if attempt.verdict is Verdict.WRONG:
            self.message.setText(self.t("staff.pin_wrong", remaining=str(attempt.remaining)))
        elif attempt.verdict is Verdict.LOCKED:
            self.message.setText(self.t("staff.pin_locked", minutes=str(max(1, round(attempt.seconds / 60)))))
        else:
            self.message.setText(self.t("staff.no_pin"))

    def show_report(self, report: StaffReport, snapshot: KioskSnapshot | None) -> None:
        t = self.t
        lines = [
            t(
                "staff.kiosk",
                name=snapshot.kiosk_name if snapshot else "—",
                site=snapshot.site_name if snapshot else "—",
            ),
            t("staff.version", version=report.software_version),
            t("staff.central_ok") if report.central_reachable else t("staff.central_down"),
        ]
        if snapshot is not None:
            lines.append(t("staff.session", phase=t(f"staff.phase.{snapshot.session.phase.value}")))
            active = snapshot.session.phase.value in ("waiting_for_clerk", "in_call")
            self.rejoin.setEnabled(active)
            self.end.setEnabled(active)
            lines.append(t("staff.clock", offset=f"{snapshot.clock_offset_s:+.1f}"))
        lines.append(t("staff.devices", devices=_devices(report.devices, t)))
        lines.append(t("staff.notices", notices=", ".join(report.notices) or "—"))
        if report.preflight is not None:
            lines.append(t("staff.preflight", result="; ".join(report.preflight) or "OK"))
        if report.crashes:
            lines.append(t("staff.crashes", count=str(report.crashes)))
        if report.out_of_service:
            lines.append(t("staff.out_of_service", causes=", ".join(report.out_of_service)))
        self.info.setText("\n".join(lines))
        self._out_of_service = bool(report.out_of_service)
        self._words()

    def show_walk_in(self, problem: str | None) -> None:
        self.mode = "panel"
        self._leave_services()
        self._show_page(1)
        self.message.setText(
            self.t("staff.walk_in_started") if problem is None else self.t(f"staff.walk_in.{problem}")
        )

    def show_walk_in_services(self, result: WalkInServices) -> None:
        if self.mode == "code":  # an answer that comes back after the page was left is dropped
            self.services.show_services(result, self.t)

    def show_walk_in_service(self, problem: str | None) -> None:
        """The answer to a touched service: started (back to the panel, as with a code), or why not,
        said on the walk-in page, whose list is asked for again at once."""
        if problem is None or self.mode != "code":
            self.show_walk_in(problem)
            return
        self.services.set_enabled(True)
        self.message.setText(self.t(f"staff.walk_in.{problem}"))
        self._want_services()

    def show_device_check(self, check: StaffDeviceCheck) -> None:
        if self.mode == "devices":
            self.device_page.show_check(check)

    def show_live_check(self, live: LiveCheck) -> None:
        if self.mode != "devices":
            if live.refused is None:
                self.live_check_stopped.emit()  # the page closed before the devices opened
            return
        self.device_page.show_live(live)

    def show_check_frame(self, image: RgbImage | None) -> None:
        if self.mode == "devices":
            self.device_page.show_frame(image)

    def show_check_level(self, level: float | None) -> None:
        if self.mode == "devices":
            self.device_page.show_level(level)

    def live_check_ended(self, reason: str) -> None:
        if self.mode == "devices":
            self.device_page.show_ended(reason)

    def show_done(self, done: bool) -> None:
        self.message.setText(self.t("staff.done") if done else self.t("staff.not_now"))

    def close_panel(self) -> None:
        if self.mode == "closed":
            return
        self.mode = "closed"
        self._pin_idle.stop()
        self._leave_services()
        self.keypad.clear(secret=True)
        self.info.clear()
        self.device_page.end()  # the engine releases camera and microphone as the panel closes
        self.hide()
        self.closed.emit()

    # --- inside

    def _show_page(self, index: int) -> None:
        self._words()
        self.pages.setCurrentIndex(index)
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
        self.show()
        self.raise_()

    def _words(self) -> None:
        t = self.t
        self.title.setText(t("staff.title"))
        self.close_button.setText(t("staff.close"))
        self.walk_in.setText(t("staff.walk_in"))
        self.rejoin.setText(t("staff.rejoin"))
        self.end.setText(t("staff.end"))
        self.check.setText(t("staff.check"))
        self.device_page.retranslate(t)
        self.service.setText(
            t("staff.back_in_service") if self._out_of_service else t("staff.out_of_service_button")
        )

    def _typed(self) -> None:
        if self.mode == "pin":
            self._pin_idle.start(int(PIN_IDLE_S * 1000))
        else:
            self.used.emit()

    def _entered(self, digits: str) -> None:
        if self.mode == "pin":
            self.message.setText(self.t("staff.checking"))
            self.unlock_requested.emit(digits)
        elif self.mode == "code":
            self.message.setText(self.t("staff.checking"))
            self.walk_in_requested.emit(digits)

    def _ask_code(self) -> None:
        self.used.emit()
        self.mode = "code"
        self.keypad.clear(secret=False)
        self.message.setText(self.t("staff.code_hint"))
        self.services.show_services(None, self.t)
        self.services.show()
        self._show_page(0)
        self._want_services()
        self._services_timer.start()

    def _want_services(self) -> None:
        if self.mode == "code":
            self.walk_in_services_wanted.emit()

    def _leave_services(self) -> None:
        self._services_timer.stop()
        self.services.hide()

    def _service_chosen(self, service: str) -> None:
        if self.mode != "code":
            return
        self.used.emit()
        self.services.set_enabled(False)  # one touch, one session
        self.message.setText(self.t("staff.walk_in_service_asking", service=service))
        self.walk_in_service_requested.emit(service)

    def _open_devices(self) -> None:
        self.used.emit()
        self.mode = "devices"
        self.message.setText("")
        self._show_page(2)
        self._test_devices()

    def _test_devices(self) -> None:
        """Everything at once: the scanner's test page, then the camera's picture and the microphone's
        level for a while (the engine stops them by itself)."""
        self.used.emit()
        self.device_page.begin(self.t)
        self.device_check_requested.emit()
        self.live_check_requested.emit()

    def _leave_devices(self) -> None:
        self.used.emit()
        self.device_page.end()
        self.live_check_stopped.emit()
        self.mode = "panel"
        self.message.setText("")
        self._show_page(1)

    def _command(self, signal: SignalInstance) -> None:
        self.used.emit()
        self.message.setText("")
        signal.emit()

    def _command_service(self) -> None:
        self.used.emit()
        self.service_requested.emit(not self._out_of_service)


DEVICE_NAMES = ("camera", "microphone", "speaker", "scanner")
DEVICE_STATES = ("ok", "missing", "disabled", "not_configured", "in_use")


def _devices(devices: dict[str, str], t: Translator) -> str:
    """« caméra : OK, micro : absent »: the animateur's words, a driver's reason kept as it is."""

    def name(device: str) -> str:
        return t(f"staff.device.{device}") if device in DEVICE_NAMES else device

    def state(value: str) -> str:
        if value in DEVICE_STATES:
            return t(f"staff.device_state.{value}")
        return t("staff.device_state.other", detail=value.removeprefix("error: "))

    lines = (t("staff.device_line", device=name(d), state=state(v)) for d, v in sorted(devices.items()))
    return ", ".join(lines) or "—"
