"""The staff panel's device check page: the camera's live picture, the microphone's level, the test
sound and the scanner's test page. It renders what the engine reports (the live check's picture and
level come through the bridge, like the call's self-view); the engine opens, times and releases the
devices (KioskEngine.staff_live_check). Nothing shown here is kept: the page drops the picture when it
closes or the check ends."""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QHBoxLayout,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from ..core.engine import LiveCheck, StaffDeviceCheck
from ..core.models import RgbImage
from .i18n import Translator
from .theme import BLUE, GREY
from .video_view import VideoView, to_qimage
from .widgets import button, follow_orientation, label

FLOOR_DB = -60.0  # the level bar's empty end (a quiet room); its full end is 0 dBFS
SCANNER_WORDS = ("ok", "missing", "not_configured", "in_use", "blank_page", "no_page", "checking")


def decibels(rms: float) -> float:
    """An RMS level (0.0-1.0 of full scale) in dBFS, FLOOR_DB for silence."""
    return max(FLOOR_DB, min(0.0, 20 * math.log10(max(rms, 1e-9))))


class DecibelBar(QWidget):
    """The microphone's level from -60 to 0 dBFS: a filled bar in an outline, with marks every 20 dB
    (its figure is written beside it: never by colour alone)."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("staffLevelBar")
        self.decibels = FLOOR_DB
        self.setFixedHeight(44)
        self.setMinimumWidth(200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_rms(self, rms: float) -> None:
        self.decibels = decibels(rms)
        self.update()

    def filled(self) -> float:
        """How much of the bar is filled, 0.0 to 1.0."""
        return (self.decibels - FLOOR_DB) / -FLOOR_DB

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        box = self.rect().adjusted(2, 2, -2, -2)
        painter.fillRect(box, QColor("white"))
        fill = QRect(box)
        fill.setWidth(round(box.width() * self.filled()))
        painter.fillRect(fill, QColor(BLUE))
        painter.setPen(QPen(QColor(GREY), 1))
        for mark in (-40, -20):
            x = box.left() + round(box.width() * (mark - FLOOR_DB) / -FLOOR_DB)
            painter.drawLine(x, box.bottom() - 10, x, box.bottom())
        painter.setPen(QPen(QColor(GREY), 2))
        painter.drawRect(box)
        painter.end()


class CameraPreview(QFrame):
    """The camera's picture, scaled to fit with its shape kept, or a calm sentence instead of it."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("staffCameraFrame")
        self.video = VideoView()
        self.video.setObjectName("staffCameraPreview")
        self.words = label("staffCameraWords")
        self.words.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedLayout(self)
        self.stack.setContentsMargins(0, 0, 0, 0)
        self.stack.addWidget(self.video)
        self.stack.addWidget(self.words)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_picture(self, image: QImage) -> None:
        self.video.show_image(image)
        self.stack.setCurrentWidget(self.video)

    def show_words(self, text: str) -> None:
        self.video.clear()  # the last picture goes with the camera
        self.words.setText(text)
        self.stack.setCurrentWidget(self.words)

    def has_picture(self) -> bool:
        return self.stack.currentWidget() is self.video and self.video.has_image()

    def sizeHint(self) -> QSize:
        return QSize(640, 480)


class DeviceCheckPage(QWidget):
    """« Test des appareils »: the live picture beside the microphone, the sound and the scanner;
    one above the other on a portrait screen."""

    back_requested = Signal()
    again_requested = Signal()  # test everything again (and a fresh time limit for camera and micro)
    test_sound_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.t = Translator("fr")
        self.heading = label("staffSection", wrap=False)
        self.camera = CameraPreview()
        self.camera_state = label("staffDeviceState")
        self.microphone_hint = label("staffDeviceHint")
        self.level_bar = DecibelBar()
        self.level_words = label("staffLevel", wrap=False)
        self.level_words.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.sound = button("staffTestSound")
        self.sound.clicked.connect(self.test_sound_requested.emit)
        self.speaker_state = label("staffDeviceState")
        self.scanner_state = label("staffDeviceState")
        self.scanner_page = label("staffPreview")  # the test page's picture (plain text otherwise)
        self.scanner_page.setFixedSize(120, 160)
        self.scanner_page.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.timer_words = label("staffDeviceHint")
        self.again = button("staffAgain")
        self.again.clicked.connect(self.again_requested.emit)
        self.back = button("staffBack")
        self.back.clicked.connect(self.back_requested.emit)
        for widget in (self.sound, self.again, self.back):
            widget.setMinimumHeight(72)

        level_row = QHBoxLayout()
        level_row.setSpacing(12)
        level_row.addWidget(self.level_bar, 1)
        level_row.addWidget(self.level_words)
        scanner_row = QHBoxLayout()
        scanner_row.setSpacing(12)
        scanner_row.addWidget(self.scanner_state, 1, Qt.AlignmentFlag.AlignTop)
        scanner_row.addWidget(self.scanner_page, 0, Qt.AlignmentFlag.AlignTop)
        facts = QVBoxLayout()
        facts.setSpacing(10)
        facts.addWidget(self.camera_state)
        facts.addWidget(self.microphone_hint)
        facts.addLayout(level_row)
        facts.addSpacing(6)
        facts.addWidget(self.sound, 0, Qt.AlignmentFlag.AlignLeft)
        facts.addWidget(self.speaker_state)
        facts.addSpacing(6)
        facts.addLayout(scanner_row)
        facts.addStretch(1)
        self.facts = QWidget()
        self.facts.setLayout(facts)
        self.facts.setMinimumWidth(360)

        self.arrangement = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.arrangement.setSpacing(24)
        self.arrangement.addWidget(self.camera, 3)
        self.arrangement.addWidget(self.facts, 2)
        bottom = QHBoxLayout()
        bottom.setSpacing(24)
        bottom.addWidget(self.timer_words, 1)
        bottom.addWidget(self.again)
        bottom.addWidget(self.back)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        layout.addWidget(self.heading)
        layout.addLayout(self.arrangement, 1)
        layout.addLayout(bottom)

        self._deadline: float | None = None  # time.monotonic() when the engine stops the live check
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        self.live = False
        self._check: StaffDeviceCheck | None = None
        self._scanner = "checking"

    # --- what the panel calls

    def begin(self, t: Translator) -> None:
        """The page opens (or everything is tested again): words for « under way », no old result."""
        self.t = t
        self.live = False
        self._deadline = None
        self._check = None
        self._scanner = "checking"
        self.scanner_page.clear()
        self.camera.show_words(t("staff.devices.camera.starting"))
        self.camera_state.setText("")
        self.level_bar.set_rms(0.0)
        self.level_words.setText(self._level_text(FLOOR_DB))
        self._words()

    def end(self) -> None:
        """The page closes: no picture, no level, no timer left behind."""
        self.live = False
        self._deadline = None
        self._ticker.stop()
        self.camera.video.clear()
        self.level_bar.set_rms(0.0)
        self.scanner_page.clear()

    def show_live(self, live: LiveCheck) -> None:
        t = self.t
        if live.refused is not None:
            self.live = False
            self._deadline = None
            self._ticker.stop()
            key = live.refused if live.refused in ("in_use", "unavailable") else "unavailable"
            self.camera.show_words(t(f"staff.devices.{key}"))
            self.camera_state.setText("")
            self._show_microphone(None, hint=False)
            self.timer_words.setText("")
            return
        self.live = True
        self._deadline = time.monotonic() + live.seconds
        self._ticker.start()
        camera = live.devices.get("camera", "missing")
        if camera != "ok":
            self.camera.show_words(self._camera_words(camera))
        self.camera_state.setText(t("staff.devices.camera.ok") if camera == "ok" else "")
        microphone = live.devices.get("microphone", "missing")
        if microphone != "ok":
            self._show_microphone(microphone)
        self._tick()

    def show_frame(self, image: RgbImage | None) -> None:
        if not self.live:
            return  # a picture still on its way when the check stopped: not shown
        if image is None:
            self.camera.show_words(self._camera_words("missing"))
            self.camera_state.setText("")
        else:
            self.camera.show_picture(to_qimage(image))
            self.camera_state.setText(self.t("staff.devices.camera.ok"))

    def show_level(self, level: float | None) -> None:
        if not self.live:
            return
        if level is None:
            self._show_microphone("missing")
            return
        self.microphone_hint.setText(self.t("staff.devices.microphone.speak"))
        self.level_bar.show()
        self.level_words.show()
        self.level_bar.set_rms(level)
        self.level_words.setText(self._level_text(self.level_bar.decibels))

    def show_ended(self, reason: str) -> None:
        """The engine stopped the live check and released camera and microphone."""
        self.live = False
        self._deadline = None
        self._ticker.stop()
        key = reason if reason in ("time_limit", "session", "reset") else "stopped"
        self.camera.show_words(self.t(f"staff.devices.ended.{key}"))
        self.camera_state.setText("")
        self.level_bar.set_rms(0.0)
        self._show_microphone(None, hint=False)  # no « Parlez » to a microphone that is off
        self.timer_words.setText(self.t("staff.devices.off"))

    def show_check(self, check: StaffDeviceCheck) -> None:
        """The one-off part: the speaker's and the scanner's state, the scanner's test page."""
        self._check = check
        self._scanner = check.scanner
        if check.scanner_preview:
            image = QImage.fromData(check.scanner_preview)  # a JPEG: Qt reads its header
            self.scanner_page.setPixmap(
                QPixmap.fromImage(image).scaled(
                    self.scanner_page.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        else:
            self.scanner_page.clear()
        self._words()

    def retranslate(self, t: Translator) -> None:
        self.t = t
        self._words()

    # --- inside

    def _words(self) -> None:
        t = self.t
        self.heading.setText(t("staff.devices.title"))
        self.sound.setText(t("staff.test_sound"))
        self.again.setText(t("staff.devices.again"))
        self.back.setText(t("staff.devices.back"))
        if self.level_bar.isVisibleTo(self):
            self.microphone_hint.setText(t("staff.devices.microphone.speak"))
        speaker = self._check.devices.get("speaker", "ok") if self._check is not None else "ok"
        self.speaker_state.setText(
            t(f"staff.devices.speaker.{speaker}")
            if speaker in ("ok", "missing", "disabled")
            else t("staff.devices.speaker.problem", detail=speaker)
        )
        scanner = self._scanner
        if scanner in SCANNER_WORDS:
            self.scanner_state.setText(t(f"staff.devices.scanner.{scanner}"))
        else:
            detail = scanner.removeprefix("error: ")
            self.scanner_state.setText(t("staff.devices.scanner.problem", detail=detail))
        self.scanner_page.setVisible(scanner == "ok")

    def _camera_words(self, state: str) -> str:
        if state in ("missing", "disabled", "starting"):
            return self.t(f"staff.devices.camera.{state}")
        return self.t("staff.devices.camera.problem", detail=state.removeprefix("error: "))

    def _show_microphone(self, state: str | None, hint: bool = True) -> None:
        self.level_bar.hide()
        self.level_words.hide()
        if not hint or state is None:
            self.microphone_hint.setText("")
        elif state in ("missing", "disabled"):
            self.microphone_hint.setText(self.t(f"staff.devices.microphone.{state}"))
        else:
            self.microphone_hint.setText(
                self.t("staff.devices.microphone.problem", detail=state.removeprefix("error: "))
            )

    def _level_text(self, db: float) -> str:
        shown = round(db)
        figure = f"\u2212{-shown}" if shown < 0 else "0"  # a real minus sign
        return self.t("staff.devices.level", db=figure if db > FLOOR_DB else f"≤ \u2212{-round(FLOOR_DB)}")

    def _tick(self) -> None:
        if self._deadline is None:
            return
        left = max(0, math.ceil(self._deadline - time.monotonic()))
        self.timer_words.setText(self.t("staff.devices.remaining", seconds=str(left)))

    def resizeEvent(self, event: QResizeEvent) -> None:
        follow_orientation(self.arrangement, event.size())
        super().resizeEvent(event)
