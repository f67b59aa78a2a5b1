"""The kiosk's screens. Each one renders a snapshot; none keeps state of its own beyond widgets."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from PySide6.QtCore import QPointF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..core.events import KioskSnapshot
from ..core.session import EndReason, Phase
from ..core.volume import MAX_LEVEL
from .documents_panel import DocumentsPanel
from .form_view import FormView
from .i18n import Translator
from .onscreen_keyboard import OnScreenKeyboard
from .print_panel import PrintPanel
from .rating import SMALL_BELOW, RatingFaces, faces_to_read, qr_code, shown_address
from .theme import BLUE, GREY
from .video_view import VideoView
from .widgets import ElidedLabel, ListenButton, WrappingScrollArea, button, follow_orientation, label, spoken

OPPOSITE_ACTIONS_GAP = 40  # px between "Refuser" and "Accepter", "Non" and "Oui"
ZOOM_GAP = 30  # px between « Réduire la page » and « Agrandir la page » (see InCallScreen)
LINK_WORDS_WIDTH = 620  # px: « Je donne mon avis »'s words beside its QR code
CHECK_WIDTH = 540  # the waiting screen's « Vous vous voyez ? Vous m'entendez ? » panel, at most


def central_now(snapshot: KioskSnapshot | None) -> datetime:
    offset = snapshot.clock_offset_s if snapshot else 0.0
    return datetime.now(UTC) + timedelta(seconds=offset)


class IdleScreen(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.site = label("title")
        self.clock = label("clock")
        self.date = label("subtitle")
        self.heading = label("subtitle")
        self.lines = QVBoxLayout()
        self.help = label("hint")
        self.listen = ListenButton()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(60, 40, 60, 40)
        top = QHBoxLayout()
        top.addWidget(self.site, 1)
        top.addWidget(self.clock, 0, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        layout.addLayout(top)
        layout.addWidget(self.date)
        layout.addSpacing(30)
        layout.addWidget(self.heading)
        layout.addLayout(self.lines)
        layout.addStretch(1)
        layout.addWidget(self.help)
        layout.addWidget(self.listen, 0, Qt.AlignmentFlag.AlignLeft)

    def show_state(self, snapshot: KioskSnapshot, t: Translator) -> None:
        now = central_now(snapshot)
        self.site.setText(snapshot.site_name or t("idle.welcome"))
        self.clock.setText(t.time(now))
        self.date.setText(t.date(now))
        self.heading.setText(t("idle.today"))
        self.help.setText(t("idle.help"))
        self.listen.setText(t("listen"))
        self.listen.text_to_read = spoken(self.site.text(), self.help.text())
        while self.lines.count():
            item = self.lines.takeAt(0)
            if item is not None and (widget := item.widget()) is not None:
                widget.deleteLater()
        if not snapshot.schedule_known:
            self.lines.addWidget(label("appointmentLine", t("idle.schedule_unknown")))
        elif not snapshot.today:
            self.lines.addWidget(label("appointmentLine", t("idle.none_today")))
        for appointment in snapshot.today[:8]:
            self.lines.addWidget(
                label(
                    "appointmentLine",
                    t("appointment.line", time=t.time(appointment.start), service=appointment.service),
                )
            )


class LevelBar(QWidget):
    """The microphone's level as ten segments, filled or empty (never by colour alone: an empty
    segment is an outline)."""

    SEGMENTS = 10

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("levelBar")
        self.level = 0.0  # 0.0 to 1.0, on a decibel scale (see set_rms)
        self.setFixedHeight(36)
        self.setMinimumWidth(200)

    def set_rms(self, rms: float) -> None:
        # -60 dBFS (a quiet room) is empty, -6 dBFS (a voice close to the microphone) is full.
        decibels = 20 * math.log10(max(rms, 1e-6))
        self.level = max(0.0, min(1.0, (decibels + 60) / 54))
        self.update()

    def lit(self) -> int:
        return round(self.level * self.SEGMENTS)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        width = self.width() / self.SEGMENTS
        for i in range(self.SEGMENTS):
            box = self.rect().adjusted(0, 2, 0, -2)
            box.setLeft(int(i * width) + 2)
            box.setWidth(int(width) - 6)
            painter.setPen(QPen(QColor(GREY), 2))
            painter.setBrush(QColor(BLUE) if i < self.lit() else QColor("white"))
            painter.drawRect(box)
        painter.end()


class VolumeControl(QWidget):
    """« Son − », the level, « Son + » on one row when there is room; the level above the two buttons
    when not (beside a form). The buttons stay far apart either way."""

    def __init__(self, down: QWidget, level: QWidget, up: QWidget) -> None:
        super().__init__()
        self.down, self.level, self.up = down, level, up
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(OPPOSITE_ACTIONS_GAP)
        self.grid.setVerticalSpacing(4)
        self.grid.setColumnStretch(1, 1)
        self.one_row: bool | None = None
        self._arrange(False)

    def _arrange(self, one_row: bool) -> None:
        if one_row == self.one_row:
            return
        self.one_row = one_row
        for widget in (self.down, self.level, self.up):
            self.grid.removeWidget(widget)
        if one_row:
            self.grid.addWidget(self.down, 0, 0)
            self.grid.addWidget(self.level, 0, 1)
            self.grid.addWidget(self.up, 0, 2)
        else:
            self.grid.addWidget(self.level, 0, 0, 1, 3)
            self.grid.addWidget(self.down, 1, 0)
            self.grid.addWidget(self.up, 1, 2)

    def fit(self, width: int) -> None:
        for side in (self.down, self.up):  # never narrower than its words, beside a form too
            side.setMinimumWidth(side.sizeHint().width())
        gap = OPPOSITE_ACTIONS_GAP
        needed = sum(w.sizeHint().width() for w in (self.down, self.level, self.up)) + 2 * gap
        self._arrange(width >= needed)

    def minimumSizeHint(self) -> QSize:
        width = self.down.sizeHint().width() + OPPOSITE_ACTIONS_GAP + self.up.sizeHint().width()
        return QSize(width, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        self.fit(event.size().width())
        super().resizeEvent(event)


class WaitingScreen(QWidget):
    """Both 'upcoming' (countdown) and 'waiting for the clerk' (calm reassurance). While waiting for
    the clerk, a short check beside it: « Vous vous voyez ? Vous m'entendez ? » — the citizen's own
    picture, a test sound and the microphone's level."""

    test_sound_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.title = label("title")
        self.who = label("subtitle")
        self.when = label("subtitle")
        self.countdown = label("countdown")
        self.hint = label("hint")
        self.listen = ListenButton()
        text = QVBoxLayout()
        text.setSpacing(14)
        text.addStretch(1)
        for widget in (self.title, self.who, self.when, self.countdown, self.hint):
            # Full width, text centred: a centred word-wrapped label would be squeezed to its hint.
            text.addWidget(widget)
            widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.addWidget(self.listen, 0, Qt.AlignmentFlag.AlignHCenter)
        text.addStretch(1)

        self.check = QFrame()
        self.check.setObjectName("confirm")
        self.check_title = label("confirmQuestion")
        self.check_listen = ListenButton()
        self.self_view = VideoView()
        self.self_view.setObjectName("waitingSelfView")
        self.self_view.setFixedSize(200, 150)
        self.test_sound = button("testSoundButton")
        self.test_sound.clicked.connect(self.test_sound_requested.emit)
        self.level_bar = LevelBar()
        self.microphone_words = label("microphoneWords")
        microphone = QVBoxLayout()
        microphone.addWidget(self.test_sound)
        microphone.addWidget(self.level_bar)
        microphone.addStretch(1)
        picture_row = QHBoxLayout()
        picture_row.setSpacing(16)
        picture_row.addWidget(self.self_view, 0, Qt.AlignmentFlag.AlignTop)
        picture_row.addLayout(microphone, 1)
        check = QVBoxLayout(self.check)
        check.setContentsMargins(24, 20, 24, 20)
        check.setSpacing(12)
        check.addWidget(self.check_title)
        check.addWidget(self.check_listen, 0, Qt.AlignmentFlag.AlignLeft)  # right under its question
        check.addLayout(picture_row)
        check.addWidget(self.microphone_words)
        self.check.setMaximumWidth(CHECK_WIDTH)
        self.check.hide()
        self._microphone: float | None = 0.0  # None: no microphone; 0.0 until a level arrives

        # Side by side on a landscape screen; one above the other on a portrait totem.
        layout = self.arrangement = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        layout.setContentsMargins(40, 20, 40, 20)
        layout.setSpacing(30)
        layout.addLayout(text, 1)
        layout.addWidget(self.check, 0, Qt.AlignmentFlag.AlignVCenter)

    def resizeEvent(self, event: QResizeEvent) -> None:
        if follow_orientation(self.arrangement, event.size()):
            portrait = event.size().height() > event.size().width()
            # Beside the text, at mid-height; under it on a portrait totem, in the middle.
            where = Qt.AlignmentFlag.AlignHCenter if portrait else Qt.AlignmentFlag.AlignVCenter
            self.arrangement.setAlignment(self.check, where)
            self.check.setMinimumWidth(CHECK_WIDTH if portrait else 0)  # centred: as wide as it may be
        super().resizeEvent(event)

    def microphone_level(self, level: float | None) -> None:
        """The newest level (RMS, 0.0-1.0) of the microphone, or None: there is none."""
        self._microphone = level
        self.level_bar.set_rms(level or 0.0)
        self.level_bar.setVisible(level is not None)

    def reset(self) -> None:
        """No picture of the last citizen, and no level of theirs, stays on the screen."""
        self.self_view.clear()
        self.microphone_level(0.0)

    def show_state(self, snapshot: KioskSnapshot, t: Translator) -> None:
        session = snapshot.session
        appointment = session.appointment
        if appointment is None:
            return
        self.who.setText(t("upcoming.with", service=appointment.service, clerk=appointment.clerk_name))
        self.when.setText(t("upcoming.at", time=t.time(appointment.start)))
        remaining = (appointment.start - central_now(snapshot)).total_seconds()
        if session.phase is Phase.UPCOMING:
            self.title.setText(t("upcoming.title"))
            self.hint.setText(t("upcoming.hint"))
        else:
            self.title.setText(t("waiting.title"))
            if session.reconnecting:
                self.hint.setText(t("waiting.reconnecting"))
            elif session.clerk_late:
                self.hint.setText(t("waiting.late"))
            else:
                self.hint.setText(t("waiting.hint"))
        # While waiting for the clerk the check takes the room; the clerk may come before the start
        # anyway, so the appointment's time says enough.
        checking = session.phase is Phase.WAITING_FOR_CLERK
        show_countdown = remaining > 0 and not session.reconnecting and not checking
        self.countdown.setVisible(show_countdown)
        if show_countdown:
            self.countdown.setText(t("upcoming.countdown", countdown=t.duration(remaining)))
        self.listen.setText(t("listen"))
        self.when.setVisible(not checking)  # the check needs the room; the clerk may come early anyway
        shown = [
            self.title,
            self.who,
            *([self.when] if not checking else []),
            *([self.countdown] if show_countdown else []),
            self.hint,
        ]
        self.listen.text_to_read = spoken(*(w.text() for w in shown))
        # The devices are opened when the kiosk calls the clerk, that is while waiting for the clerk.
        self.check.setVisible(checking)
        self.check_title.setText(t("check.title"))
        self.check_listen.setText(t("listen"))
        self.test_sound.setText(t("check.test_sound"))
        self.test_sound.setMinimumWidth(self.test_sound.sizeHint().width())
        missing = self._microphone is None
        self.microphone_words.setText(t("check.no_microphone") if missing else t("check.speak"))
        self.check_listen.text_to_read = spoken(
            t("check.title"), t("check.hint"), self.microphone_words.text()
        )


CLERK_VIDEO_MIN = QSize(240, 180)


class InCallScreen(QWidget):
    hang_up_confirmed = Signal()
    microphone_toggled = Signal(bool)
    camera_toggled = Signal(bool)
    control_answered = Signal(bool)  # the consent question, answered by a touch on this screen
    control_taken_back = Signal()
    keyboard_shown = Signal(bool)
    volume_changed = Signal(int)  # « Plus fort » (+1) / « Moins fort » (-1): the clerk's voice

    def __init__(
        self, citizen_only_selectors: tuple[str, ...] = (), files: Callable[[], list[str]] = lambda: []
    ) -> None:
        super().__init__()
        self.form = FormView(files, citizen_only_selectors=citizen_only_selectors)
        self.form.setObjectName("formView")
        self.pointer = PointerOverlay(self.form)
        self.form.clerk_pointer.connect(self.pointer.move_to)
        self.control_banner = QFrame()
        self.control_banner.setObjectName("controlBanner")
        self.control_text = label("bannerText")
        self.take_back = button("takeBackButton")  # white on the blue banner: unmistakably a button
        banner_row = QHBoxLayout(self.control_banner)
        banner_row.addWidget(self.control_text, 1)
        banner_row.addWidget(self.take_back)
        self.control_banner.hide()
        self.consent = QFrame()
        self.consent.setObjectName("confirm")
        self.consent_question = label("subtitle")
        self.consent_hint = label("hint")
        self.consent_listen = ListenButton()
        self.consent_accept = button("acceptControlButton", "primary")
        self.consent_refuse = button("refuseControlButton")
        consent_layout = QVBoxLayout(self.consent)
        consent_layout.setContentsMargins(24, 14, 24, 14)
        consent_layout.setSpacing(8)
        consent_layout.addWidget(self.consent_question)
        consent_layout.addWidget(self.consent_hint)
        consent_layout.addWidget(self.consent_listen, 0, Qt.AlignmentFlag.AlignLeft)
        consent_row = QHBoxLayout()
        consent_row.setSpacing(OPPOSITE_ACTIONS_GAP)  # shaky hands: never the wrong one by a slip
        consent_row.addWidget(self.consent_refuse)
        consent_row.addWidget(self.consent_accept)
        consent_layout.addLayout(consent_row)
        self.consent.hide()
        # The administration's page is written small (14-16 px): the citizen can enlarge it.
        self.zoom_out = button("zoomOutButton")
        self.zoom_in = button("zoomInButton")
        self.zoom_out.clicked.connect(lambda: self.form.zoom(-1))
        self.zoom_in.clicked.connect(lambda: self.form.zoom(+1))
        self.zoom_bar = QWidget()
        zoom_row = QHBoxLayout(self.zoom_bar)
        zoom_row.setContentsMargins(0, 0, 0, 0)
        # Far enough apart (≥ 24 px), and no wider than the form's column at 1280 px with larger
        # text: at 40 px the window grew to 1,282 px.
        zoom_row.setSpacing(ZOOM_GAP)
        zoom_row.addStretch(1)
        zoom_row.addWidget(self.zoom_out)
        zoom_row.addWidget(self.zoom_in)
        self.form_area = QWidget()
        form_layout = QVBoxLayout(self.form_area)
        form_layout.setContentsMargins(0, 0, 0, 0)
        form_layout.addWidget(self.zoom_bar)
        form_layout.addWidget(self.control_banner)
        form_layout.addWidget(self.form, 1)
        form_layout.addWidget(self.consent)
        self.form_area.hide()
        self.consent_accept.clicked.connect(lambda: self.control_answered.emit(True))
        self.consent_refuse.clicked.connect(lambda: self.control_answered.emit(False))
        self.take_back.clicked.connect(self.control_taken_back.emit)
        self.remote = VideoView()
        self.remote.setObjectName("remoteVideo")
        # The clerk never shrinks below a face one can read on a kiosk (the screen audit measures it).
        self.remote.setMinimumSize(CLERK_VIDEO_MIN)
        self.local = VideoView()
        self.local.setObjectName("selfView")
        self.local.setFixedSize(280, 210)
        self.title = ElidedLabel("callTitle")
        self.connecting = label("hint")
        self.muted_badge = label("badge")
        self.mute = button("muteButton")
        self.camera = button("cameraButton")
        self.hang_up = button("hangUpButton", "danger")
        self.documents_button = button("documentsButton")
        self.documents = DocumentsPanel()
        self._last_request: str | None = None
        self._last_scanner = ""
        self._last_page_count = 0
        self._has_documents = False
        self.confirm = QFrame()
        self.confirm.setObjectName("confirm")
        self.confirm_question = label("confirmQuestion")
        self.confirm_listen = ListenButton()
        self.confirm_yes = button("confirmHangUpButton", "danger")
        self.confirm_no = button("cancelHangUpButton", "primary")
        # Right where the finger is: in place of "Terminer" and the buttons above it. "Non" is where
        # "Terminer" was, so that a second touch by mistake cancels rather than ends the call.
        confirm_layout = QVBoxLayout(self.confirm)
        confirm_layout.setContentsMargins(12, 12, 12, 12)
        confirm_layout.addWidget(self.confirm_question)
        confirm_layout.addWidget(self.confirm_listen, 0, Qt.AlignmentFlag.AlignLeft)
        confirm_layout.addWidget(self.confirm_yes)
        confirm_layout.addSpacing(OPPOSITE_ACTIONS_GAP)
        confirm_layout.addWidget(self.confirm_no)
        self.confirm.hide()
        self._confirming = False

        self.side_column = QWidget()
        side = QVBoxLayout(self.side_column)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.local)
        side.addWidget(self.muted_badge)
        side.addStretch(1)
        side.addWidget(self.mute)
        side.addWidget(self.camera)
        side.addWidget(self.documents_button)
        side.addSpacing(20)
        side.addWidget(self.hang_up)
        side.addWidget(self.confirm)
        # Right under the clerk's picture: it is the clerk's voice that gets louder.
        self.volume_down = button("volumeDownButton")
        self.volume_up = button("volumeUpButton")
        self.volume_level = label("volumeLevel", wrap=False)
        self.volume_level.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.volume_down.clicked.connect(self._quieter)
        self.volume_up.clicked.connect(self._louder)
        self.volume = VolumeControl(self.volume_down, self.volume_level, self.volume_up)
        main = self._main_column = QVBoxLayout()
        main.addWidget(self.title)
        main.addWidget(self.remote, 1)
        main.addWidget(self.volume)
        self._side_column_layout = side
        # Scrolls inside the call screen rather than stretching it beyond the kiosk's screen.
        self.documents_scroll = WrappingScrollArea()
        self.documents_scroll.setObjectName("documentsScroll")
        self.documents_scroll.setWidget(self.documents)
        self.documents_scroll.setWidgetResizable(True)
        self.documents_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.documents_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.documents_scroll.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.documents_area = QWidget()
        self.documents_area.setObjectName("documentsArea")
        documents_layout = QVBoxLayout(self.documents_area)
        documents_layout.setContentsMargins(0, 0, 0, 0)
        documents_layout.setSpacing(0)
        documents_layout.addWidget(self.documents_scroll, 1)
        documents_layout.addWidget(self.documents.footer)
        # Any height will do (it scrolls): its contents' height must not push the window past the screen.
        self.documents_area.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.documents_area.hide()
        self.documents_button.clicked.connect(self._open_documents)
        self.documents.closed.connect(self._close_documents)
        main.addWidget(self.connecting)
        # Side by side on a landscape screen; one above the other on a portrait totem.
        layout = self.arrangement = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        layout.addLayout(main, 1)
        # The form and the documents take turns in the same place: papers asked for come first, and
        # the form is back when the panel is closed (both at once left no room for either).
        layout.addWidget(self.form_area, 2)
        layout.addWidget(self.documents_area, 2)
        # The document the clerk sent to print: in the same place, over both while it is shown.
        self.print_panel = PrintPanel()
        self.print_panel.hide()
        layout.addWidget(self.print_panel, 2)
        layout.addWidget(self.side_column)
        # The citizen's keyboard, across the whole width at the bottom, under everything else: it never
        # covers the page (the page gets shorter and the field is brought into what is left of it).
        self.keyboard = OnScreenKeyboard()
        self.keyboard.hide()
        self.keyboard.typed.connect(self.form.citizen_type)
        self.keyboard.key.connect(self.form.citizen_key)
        self.keyboard.close_requested.connect(self.close_keyboard)
        self.form.citizen_field.connect(self._citizen_field)
        self.form.clerk_pressing.connect(self._clerk_pressing)
        self._field_watch = QTimer(self)
        self._field_watch.setInterval(500)
        self._field_watch.timeout.connect(self._watch_field)
        self._reveal = QTimer(self)
        self._reveal.setSingleShot(True)
        self._reveal.setInterval(150)  # once Chromium has the new, shorter view
        self._reveal.timeout.connect(self.form.reveal_field)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(20, 20, 20, 20)
        outer.addLayout(layout, 1)
        outer.addWidget(self.keyboard)

        self._mic_on = True
        self._cam_on = True
        self._compact = False
        self.hang_up.clicked.connect(self._ask_confirmation)
        self.confirm_no.clicked.connect(lambda: self._confirming_shown(False))
        self.confirm_yes.clicked.connect(self._confirmed)
        self.mute.clicked.connect(lambda: self.microphone_toggled.emit(not self._mic_on))
        self.camera.clicked.connect(lambda: self.camera_toggled.emit(not self._cam_on))

    def resizeEvent(self, event: QResizeEvent) -> None:
        follow_orientation(self.arrangement, event.size())
        super().resizeEvent(event)

    def _citizen_field(self, editing: bool, secret: bool) -> None:
        if not editing:
            self.close_keyboard()
        elif self.form_area.isVisible() and not self.consent.isVisible():
            self.open_keyboard(secret)

    def open_keyboard(self, secret: bool) -> None:
        was_open = not self.keyboard.isHidden()
        # While the citizen types, the page and the clerk share the room; the call's buttons come back
        # with "Fermer le clavier" (what leaves first, then what comes).
        self.side_column.hide()
        self.zoom_bar.hide()
        self.volume.hide()
        if self._compact:
            self.title.hide()  # a small screen: the room goes to the page and the keys, the clerk stays seen
        self.keyboard.open_for(secret and not self._compact)  # on a small screen, the keys come first
        self.keyboard_shown.emit(True)
        self._field_watch.start()
        if not was_open:
            self._reveal.start()

    def close_keyboard(self) -> None:
        if self.keyboard.isHidden():
            return
        self._field_watch.stop()
        self._reveal.stop()
        self.keyboard.reset()
        self.keyboard_shown.emit(False)
        self.zoom_bar.setVisible(not self.consent.isVisible())
        self.side_column.show()
        self._show_volume()
        self.title.show()

    def _watch_field(self) -> None:
        # The page may take the focus away (a form sent, a new page): the keyboard goes with it.
        if not self.form.editing()[0]:
            self.close_keyboard()

    def set_compact(self, on: bool) -> None:
        """On a screen smaller than the kiosk's minimum, the essentials first: the clerk, the question
        and the buttons keep their room; the citizen's own picture goes, the clerk's gets smaller."""
        if on != self._compact:
            # The volume goes where the citizen's picture was: under the clerk, it made the clerk's
            # column wider than a small screen leaves it.
            (self._main_column if on else self._side_column_layout).removeWidget(self.volume)
            if on:
                self._side_column_layout.insertWidget(0, self.volume)
            else:
                self._main_column.insertWidget(2, self.volume)
        self._compact = on
        self.remote.setMinimumSize(CLERK_VIDEO_MIN / 1.5 if on else CLERK_VIDEO_MIN)
        if on:
            self.local.hide()
        elif not self._confirming:
            self.local.show()

    def _show_volume(self, asking: bool | None = None) -> None:
        asking = self.consent.isVisible() if asking is None else asking
        hidden = (
            not self.keyboard.isHidden()  # the keys need the room
            or (asking and self.form.page is not None)  # the question needs the width beside the clerk
            or (self._confirming and self._compact)  # on a small screen, the question needs its column
        )
        self.volume.setVisible(not hidden)

    def _clerk_pressing(self) -> None:
        # The clerk works on the form: the citizen sees it again, and the keyboard goes (the clerk's
        # touch moves the focus away from the field it was opened for).
        self.close_keyboard()
        if not self.documents_area.isHidden():
            self._close_documents()

    def _open_documents(self) -> None:
        self.close_keyboard()
        self.form_area.hide()  # what leaves first, then what comes
        self.documents_area.show()

    def _close_documents(self) -> None:
        self.documents_area.hide()
        self.form_area.setVisible(self.form.page is not None)

    def _quieter(self) -> None:
        self.volume_changed.emit(-1)

    def _louder(self) -> None:
        self.volume_changed.emit(+1)

    def _ask_confirmation(self) -> None:
        self._confirming_shown(True)

    def _confirming_shown(self, on: bool) -> None:
        self._confirming = on
        # What goes away first, then what comes: never both at once, which would ask for more room
        # than the screen has.
        # The self-view makes room for the question for these few seconds.
        leaving = (
            [self.confirm]
            if not on
            else [self.local, self.mute, self.camera, self.hang_up, self.documents_button]
        )
        for widget in leaving:
            widget.hide()
        if on and self._compact:
            self.volume.hide()
        if on:
            self.confirm.show()
        else:
            for widget in (self.mute, self.camera, self.hang_up):
                widget.show()
            self.local.setVisible(not self._compact)
            self._show_volume()
            self.documents_button.setVisible(self._has_documents)

    def _confirmed(self) -> None:
        self._confirming_shown(False)
        self.hang_up_confirmed.emit()

    def reset(self) -> None:
        self.close_keyboard()
        self.remote.clear()
        self.local.clear()
        self._confirming_shown(False)
        self.consent.hide()
        self.control_banner.hide()
        self.pointer.hide()
        self.documents.reset()
        self._close_documents()
        self.print_panel.reset()
        self.print_panel.hide()
        self._last_request, self._last_scanner, self._last_page_count = None, "", 0
        self._last_request = None

    def show_state(self, snapshot: KioskSnapshot, t: Translator) -> None:
        appointment = snapshot.session.appointment
        if appointment is not None:
            self.title.setText(t("call.with", clerk=appointment.clerk_name, service=appointment.service))
        self._mic_on, self._cam_on = snapshot.microphone_on, snapshot.camera_on
        self.local.caption = t("call.self_view")
        self.connecting.setText(t("call.connecting"))
        self.connecting.setVisible(not snapshot.media_flowing)
        self.muted_badge.setText(t("call.muted_badge"))
        self.muted_badge.setVisible(not snapshot.microphone_on)
        self.mute.setText(t("call.mute") if snapshot.microphone_on else t("call.unmute"))
        self.camera.setText(t("call.camera_off") if snapshot.camera_on else t("call.camera_on"))
        self.hang_up.setText(t("call.hang_up"))
        self.confirm_question.setText(t("call.confirm_question"))
        self.confirm_yes.setText(t("call.confirm_yes"))
        self.confirm_no.setText(t("call.confirm_no"))
        self.confirm_listen.setText(t("listen"))
        self.confirm_listen.text_to_read = spoken(self.confirm_question.text())
        self.volume_down.setText(t("volume.down"))
        self.volume_up.setText(t("volume.up"))
        self.volume_level.setText(t("volume.level", level=snapshot.volume, levels=MAX_LEVEL))
        self.volume_down.setEnabled(snapshot.volume > 1)
        self.volume_up.setEnabled(snapshot.volume < MAX_LEVEL)
        self.volume.fit(self.volume.width())  # the words may have changed (another language)
        self.form.refusal_text = lambda what, detail: t(f"form.refused.{what}")
        self.form.recovery_text = lambda key: t(f"form.recovery.{key}")
        self.form.retranslate()
        if self.documents_area.isHidden() or self.form.page is None:
            self.form_area.setVisible(self.form.page is not None)
        clerk = appointment.clerk_name if appointment else ""
        service = appointment.service if appointment else ""
        asking = snapshot.control == "requested"
        if asking and self.form.page is not None and not self.documents_area.isHidden():
            self._close_documents()  # the question about the form is seen with the form
        if asking or self.form.page is None:
            self.close_keyboard()  # the question must be seen whole
        # The question takes the room the zoom buttons had (what leaves first, then what comes).
        if asking:
            self.zoom_bar.hide()
        self.consent.setVisible(asking)
        # The question needs the width beside the clerk for a moment; the volume is back right after.
        self._show_volume(asking)
        if not asking and self.keyboard.isHidden():
            self.zoom_bar.show()
        self.keyboard.translate(t, clerk)
        self.consent_question.setText(t("control.question", clerk=clerk, service=service))
        self.consent_hint.setText(t("control.question_hint"))
        self.consent_accept.setText(t("control.accept"))
        self.consent_refuse.setText(t("control.refuse"))
        self.consent_listen.setText(t("listen"))
        self.consent_listen.text_to_read = spoken(self.consent_question.text(), self.consent_hint.text())
        granted = snapshot.control == "granted"
        self.control_banner.setVisible(granted)
        self.control_text.setText(t("control.banner", clerk=clerk))
        self.zoom_in.setText(t("form.zoom_in"))
        self.zoom_out.setText(t("form.zoom_out"))
        self.take_back.setText(t("control.take_back"))
        if not granted:
            self.pointer.hide()
        self._show_documents(snapshot, t)
        self._show_printing(snapshot, t)

    def _show_printing(self, snapshot: KioskSnapshot, t: Translator) -> None:
        state = snapshot.printing
        shown = state is not None and state.on_screen is not None and snapshot.control != "requested"
        if state is not None:
            self.print_panel.show_state(state, t)
        else:
            self.print_panel.reset()
        if shown and self.print_panel.isHidden():
            self.close_keyboard()
            self.form_area.hide()  # what leaves first, then what comes
            self.documents_area.hide()
            self.print_panel.show()
        elif not shown and not self.print_panel.isHidden():
            self.print_panel.hide()
            self.form_area.setVisible(self.form.page is not None)
        elif shown:  # the form's or the papers' own logic above may have shown them again
            self.form_area.hide()
            self.documents_area.hide()

    def _show_documents(self, snapshot: KioskSnapshot, t: Translator) -> None:
        state = snapshot.documents
        self._has_documents = state is not None
        self.documents_button.setVisible(state is not None and not self._confirming)
        self.documents_button.setText(t("call.documents"))
        if state is None:
            self._close_documents()
            return
        # Opened by what happens, once: the clerk's new request, a scan starting, a new page. Closed
        # by the citizen's "Fermer", it stays closed until something new happens.
        scan_started = state.scanner == "scanning" and self._last_scanner != "scanning"
        new_page = len(state.pages) > self._last_page_count
        news = (state.requested and state.requested != self._last_request) or scan_started or new_page
        if news and snapshot.control != "requested":  # the clerk's question about the form comes first
            self._open_documents()
        self._last_request = state.requested
        self._last_scanner = state.scanner
        self._last_page_count = len(state.pages)
        self.documents.show_state(state, t)


class PointerOverlay(QWidget):
    """The clerk's pointer drawn over the form view, so the citizen sees what is being done."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.position = QPointF()
        self.hide()

    def move_to(self, position: QPointF) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
        self.position = position
        self.show()
        self.raise_()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor("#c9191e"), 4))
        painter.setBrush(QColor(201, 25, 30, 70))
        painter.drawEllipse(self.position, 18, 18)
        painter.end()


class EndedScreen(QWidget):
    MESSAGES: ClassVar[dict[EndReason, str]] = {
        EndReason.CLERK_NO_SHOW: "ended.clerk_no_show",
        EndReason.CALL_FAILED: "ended.call_failed",
        EndReason.CANCELLED: "ended.cancelled",
        EndReason.APPOINTMENT_OVER: "ended.appointment_over",
    }

    # The citizen's one-touch rating (core/session.py CitizenRating): a face, or « Passer » (None).
    rated = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.title = label("title")
        self.message = label("subtitle")
        self.question = label("subtitle")
        self.forget = label("hint")
        self.listen = ListenButton()
        self.faces = RatingFaces()
        self.faces.answered.connect(self.rated)
        self.skip = button("rating_skip")
        self.skip.clicked.connect(lambda: self.rated.emit(None))
        self.rating_hint = label("hint")
        # « Je donne mon avis » (the central's evaluation_url), once the citizen has answered.
        self.link_words = label("hint")
        self.link_code = label("evaluationCode", wrap=False)
        self.link_address = label("hint")
        self._link: str | None = None
        self._compact = False
        self._snapshot_asking = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 10, 40, 10)
        layout.setSpacing(8)  # the question, its faces and « Passer » fit 1280x720 with larger text
        layout.addStretch(1)
        for widget in (self.title, self.message, self.question, self.forget):
            widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(widget)
        layout.addWidget(self.listen, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(8)
        layout.addWidget(self.faces)
        layout.addSpacing(16)  # « Passer » is not one more face
        layout.addWidget(self.skip, 0, Qt.AlignmentFlag.AlignHCenter)
        self.rating_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.rating_hint)
        # The code beside its words, so that it fits under the thanks on a 1280x720 screen.
        self.link_box = QWidget()  # hidden whole, so that it takes no room (nor spacing) without a link
        link_row = QHBoxLayout(self.link_box)
        link_row.setContentsMargins(0, 8, 0, 0)
        link_row.addStretch(1)
        link_row.addWidget(self.link_code)
        link_row.addSpacing(24)
        words = QVBoxLayout()
        words.addStretch(1)
        words.addWidget(self.link_words)
        words.addWidget(self.link_address)
        words.addStretch(1)
        self.link_words.setMaximumWidth(LINK_WORDS_WIDTH)
        link_row.addLayout(words)
        link_row.addStretch(1)
        layout.addWidget(self.link_box)
        layout.addStretch(1)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.faces.fit(event.size().height())
        # Below 1280x720 (the staff are told) the faces and « Passer » first: the hint goes.
        compact = event.size().height() < SMALL_BELOW
        if compact != self._compact and self._link is not None:
            self.link_code.setPixmap(qr_code(self._link, 3 if compact else 5))
            self.forget.setVisible(not compact)  # as show_state decides it (the code is shown: answered)
        self._compact = compact
        if self._snapshot_asking:
            self.rating_hint.setVisible(not self._compact)

    def asking(self, snapshot: KioskSnapshot) -> bool:
        rating = snapshot.session.rating
        return rating is not None and not rating.answered

    def show_state(self, snapshot: KioskSnapshot, t: Translator) -> None:
        self._show_ending(snapshot, t)
        asking = self._snapshot_asking = self.asking(snapshot)
        for widget in (self.question, self.faces, self.skip):
            widget.setVisible(asking)
        self.rating_hint.setVisible(asking and not self._compact)
        reason = snapshot.session.end_reason
        # While the question is asked, only the title and the question: what to do next (an
        # interrupted call's advice) comes with the thanks, once the citizen has answered.
        self.message.setVisible(not asking)
        if snapshot.session.rating is not None and snapshot.session.rating.answered:
            advice = t(self.MESSAGES[reason]) if reason in self.MESSAGES else ""
            self.message.setText(f"{t('rating.thanks')} {advice}".strip())
        answered = snapshot.session.rating is not None and snapshot.session.rating.answered
        link = snapshot.evaluation_url if answered else None
        # Below 1280x720 the code and its words take the place of « Vos informations ont été effacées ».
        self.forget.setVisible(not asking and not (link is not None and self._compact))
        self.link_box.setVisible(link is not None)
        if link is not None:
            self.link_words.setText(t("rating.link"))
            self.link_address.setText(shown_address(link))
            if link != self._link:
                self.link_code.setPixmap(qr_code(link, 3 if self._compact else 5))
        self._link = link
        if asking:
            self.question.setText(t("rating.question"))
            self.faces.show_words(t)
            self.skip.setText(t("rating.skip"))
            self.rating_hint.setText(t("rating.hint"))
            said = [self.title.text(), self.message.text() if self.message.isVisibleTo(self) else ""]
            self.listen.text_to_read = spoken(*said, self.question.text(), faces_to_read(t))
        else:
            words = self.link_words.text() if link is not None else ""
            self.listen.text_to_read = spoken(
                self.title.text(), self.message.text(), self.forget.text(), words
            )

    def _show_ending(self, snapshot: KioskSnapshot, t: Translator) -> None:
        reason = snapshot.session.end_reason
        # An entretien that never took place has not "ended": the title says what happened.
        if reason is EndReason.CALL_FAILED:
            title = "ended.title_interrupted"
        elif reason in self.MESSAGES:
            title = "ended.title_no_meeting"
        else:
            title = "ended.title"
        self.title.setText(t(title))
        self.message.setText(t(self.MESSAGES.get(reason, "ended.thanks")) if reason else t("ended.thanks"))
        self.forget.setText(t("ended.forget"))
        self.listen.setText(t("listen"))
        self.listen.text_to_read = spoken(self.title.text(), self.message.text(), self.forget.text())


class OutOfServiceScreen(QWidget):
    """A reset check failed: the next citizen must not use this kiosk (« never show the next citizen a
    dirty kiosk »). Big and calm, like the ended screen; a line for the staff says what to do. It stays
    until a check passes: for now after a restart (the staff panel will have a button)."""

    def __init__(self) -> None:
        super().__init__()
        self.title = label("title")
        self.message = label("subtitle")
        self.staff = label("hint")
        self.listen = ListenButton()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(60, 60, 60, 60)
        layout.setSpacing(20)
        layout.addStretch(1)
        for widget in (self.title, self.message):
            widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(widget)
        layout.addWidget(self.listen, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)
        self.staff.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.staff)

    def show_state(self, snapshot: KioskSnapshot, t: Translator) -> None:
        self.title.setText(t("out_of_service.title"))
        self.message.setText(t("out_of_service.hint"))
        self.staff.setText(t("out_of_service.staff"))
        self.listen.setText(t("listen"))
        self.listen.text_to_read = spoken(self.title.text(), self.message.text())
