"""The kiosk's single full-screen window: one screen per session phase, plus a discreet notice bar
for the animateur."""

from __future__ import annotations

import logging

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeyEvent, QKeySequence, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.cues import Cue, cues_between
from ..core.document_desk import DocumentsState
from ..core.engine import KioskEngine
from ..core.events import KioskSnapshot
from ..core.navigation import NavigationPolicy
from ..core.reset_check import SettingsFound
from ..core.session import Phase
from ..core.settings import AccessibilitySettings, FormSettings
from ..core.staff_access import Attempt, Verdict
from ..core.volume import gain
from .bridge import BridgeCommandScreen, BridgeResetScreen, EngineBridge
from .fleet_commands import FleetCommands
from .form_stream import FormStreamer, FrameOutlet
from .i18n import Translator
from .reset_screen import ScreenReset
from .screens import EndedScreen, IdleScreen, InCallScreen, OutOfServiceScreen, WaitingScreen
from .session_files import SessionFiles
from .sounds import SoundCues
from .speech import ReadAloud
from .staff_panel import CornerTaps, StaffPanel
from .theme import LARGER_TEXT, stylesheet
from .video_view import to_qimage
from .widgets import ListenButton, button, label

log = logging.getLogger(__name__)


async def _is_open(engine: KioskEngine) -> bool:
    return engine.staff.is_open


MIN_SCREEN = (1280, 720)  # the smallest kiosk screen every state is designed and audited for


class CurrentPageStack(QStackedWidget):
    """A stack as large as the screen it shows, not as its largest screen: QStackedWidget's minimum
    is the largest of all its pages, so the in-call screen with its documents panel made the idle
    screen 1,090 px high, for this citizen and every later one."""

    def __init__(self) -> None:
        super().__init__()
        self.currentChanged.connect(self._follow)

    def _follow(self, index: int) -> None:
        for i in range(self.count()):
            page = self.widget(i)
            if page is None:
                continue
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            page.setSizePolicy(policy, policy)
        self.updateGeometry()

    def minimumSizeHint(self) -> QSize:
        current = self.currentWidget()
        return current.minimumSizeHint() if current is not None else super().minimumSizeHint()

    def sizeHint(self) -> QSize:
        current = self.currentWidget()
        return current.sizeHint() if current is not None else super().sizeHint()


class KioskWindow(QMainWindow):
    def __init__(
        self,
        bridge: EngineBridge,
        engine: KioskEngine,
        language: str = "fr",
        form_settings: FormSettings = FormSettings(),  # noqa: B008  # frozen
        form_outlet: FrameOutlet | None = None,
        accessibility: AccessibilitySettings = AccessibilitySettings(),  # noqa: B008  # frozen
        speech: ReadAloud | None = None,
    ) -> None:
        super().__init__()
        self.speech = speech or ReadAloud(accessibility.speech_engine, accessibility.speech_rate)
        self.speech.setParent(self)
        self.sounds = SoundCues(accessibility.sound_cues, parent=self)
        self._reading: tuple[object, ...] | None = None  # what was on screen when reading started
        self.setWindowTitle("Kiosk")
        self.setStyleSheet(stylesheet())
        self.larger_text = False
        self._bridge = bridge
        self._engine = engine
        self.t = Translator(language)
        self._default_language = language
        self.snapshot: KioskSnapshot | None = None
        self._kiosk_mode = False

        self.idle = IdleScreen()
        self.waiting = WaitingScreen()
        self.session_files = SessionFiles()
        self.call = InCallScreen(form_settings.citizen_only_selectors, self.session_files.paths)
        self._form_session: str | None = None
        self.streamer = (
            FormStreamer(
                self.call.form,
                form_outlet,
                selectors=form_settings.citizen_only_selectors,
                safe_frame_origins=form_settings.safe_frame_origins,
            )
            if form_outlet
            else None
        )
        self.ended = EndedScreen()
        self.out_of_service = OutOfServiceScreen()
        self.stack = CurrentPageStack()
        for screen in (self.idle, self.waiting, self.call, self.ended, self.out_of_service):
            self.stack.addWidget(screen)
        self.text_size = button("textSizeButton", "language")
        self.text_size.clicked.connect(self._text_size_touched)
        self.language = button("languageButton", "language")
        self.language.clicked.connect(self.switch_language)
        self.notices: QLabel = label("notices")
        self.notices.hide()
        self._has_notices = False
        self.call.keyboard_shown.connect(self._keyboard_shown)

        top = QHBoxLayout()
        top.addStretch(1)
        top.addWidget(self.text_size)
        top.addWidget(self.language)
        root = QWidget()
        layout = QVBoxLayout(root)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.notices)
        self.setCentralWidget(root)
        for listen in self.findChildren(ListenButton):
            listen.clicked.connect(self._listen_touched)
        self.speech.availability_changed.connect(self._refresh)
        self.sounds.availability_changed.connect(self._refresh)
        self.call.volume_changed.connect(self._volume_touched)
        self.waiting.test_sound_requested.connect(self._test_sound_touched)
        bridge.microphone_level.connect(self._show_microphone_level)

        # The reset check between citizens: the engine asks, this window wipes and looks (Qt thread).
        self.screen_reset = ScreenReset(self, self.call.form, self.session_files, self)
        bridge.reset_requested.connect(self.screen_reset.wipe_and_check)
        engine.attach_screen(BridgeResetScreen(bridge))
        # IT staff's commands (screenshot, reload, restart): the engine asks, this window answers.
        self.fleet_commands = FleetCommands(self, self)
        bridge.command_requested.connect(self.fleet_commands.handle)
        engine.attach_command_screen(BridgeCommandScreen(bridge))
        bridge.state_changed.connect(self.show_state)
        bridge.remote_frame.connect(self._show_remote_frame)
        bridge.local_frame.connect(self._show_local_frame)
        self.call.hang_up_confirmed.connect(lambda: bridge.submit(engine.citizen_hang_up))
        self.ended.rated.connect(lambda face: bridge.submit(lambda: engine.rate_session(face)))
        self.call.microphone_toggled.connect(lambda on: bridge.submit(lambda: engine.set_microphone(on)))
        self.call.camera_toggled.connect(lambda on: bridge.submit(lambda: engine.set_camera(on)))
        self.call.control_answered.connect(
            lambda accept: bridge.submit(lambda: engine.answer_control(accept))
        )
        self.call.control_taken_back.connect(self._take_back_control)
        bridge.form_input.connect(self.call.form.apply)
        bridge.session_document.connect(self.session_files.add)
        papers = self.call.documents
        papers.scan_requested.connect(lambda source: bridge.submit(lambda: engine.scan_document(source)))
        papers.page_removed.connect(lambda number: bridge.submit(lambda: engine.remove_page(number)))
        papers.clear_requested.connect(lambda: bridge.submit(engine.clear_pages))
        papers.send_requested.connect(lambda: bridge.submit(lambda: engine.send_document()))
        self.call.print_panel.print_requested.connect(lambda: bridge.submit(engine.print_document))
        self.call.print_panel.closed.connect(lambda: bridge.submit(engine.close_print))
        form = self.call.form
        form.page_changed.connect(
            lambda url, title: bridge.submit(lambda: engine.form_page_changed(url, title, *form.page_size()))
        )
        form.refused.connect(lambda what, detail: bridge.submit(lambda: engine.form_refused(what, detail)))
        form.resized.connect(lambda w, h: bridge.submit(lambda: engine.form_view_resized(w, h)))
        # The page healed itself (or could not): the clerk is told, over the control channel.
        form.recovered.connect(
            lambda event: bridge.submit(
                lambda: engine.form_page_incident(event.cause.value, "reloaded", event.attempt)
            )
        )
        form.recovery_failed.connect(
            lambda event: bridge.submit(
                lambda: engine.form_page_incident(event.cause.value, "failed", event.attempts)
            )
        )
        # What the citizen sees, for the clerk's console: connected after the slots that show or hide
        # the panel, so each report reads the screen as it is after the touch.
        self._screen_reported: tuple[str, bool, float] | None = None
        form.zoomed.connect(self._report_screen)
        self.call.documents_button.clicked.connect(self._report_screen)
        papers.closed.connect(self._report_screen)
        form.clerk_pressing.connect(self._report_screen)  # the clerk working on the form closes the papers

        self._wire_staff_panel(bridge, engine)

        # Clock and countdown move every second even when the engine has nothing new to say.
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._refresh)
        self._ticker.start()
        self._refresh()

    def _wire_staff_panel(self, bridge: EngineBridge, engine: KioskEngine) -> None:
        """The staff panel over everything; five taps in the top-left corner open its PIN pad."""
        panel = self.staff_panel = StaffPanel(self)
        self.corner_taps = CornerTaps(self)  # on the window's QWindow: see showEvent
        self.corner_taps.triggered.connect(lambda: panel.open_pin(Translator(self._default_language)))

        def report() -> None:
            bridge.ask(engine.staff_status, lambda r: panel.show_report(r, self.snapshot))

        def opened(attempt: Attempt) -> None:
            panel.show_attempt(attempt)
            if attempt.verdict is Verdict.OPENED:
                report()

        panel.unlock_requested.connect(lambda pin: bridge.ask(lambda: engine.staff_unlock(pin), opened))
        panel.walk_in_requested.connect(
            lambda code: bridge.ask(lambda: engine.staff_walk_in(code), panel.show_walk_in)
        )
        panel.walk_in_services_wanted.connect(
            lambda: bridge.ask(engine.staff_walk_in_services, panel.show_walk_in_services)
        )
        panel.walk_in_service_requested.connect(
            lambda service: bridge.ask(
                lambda: engine.staff_walk_in_service(service), panel.show_walk_in_service
            )
        )
        panel.end_requested.connect(lambda: bridge.ask(engine.staff_end_session, panel.show_done))
        panel.rejoin_requested.connect(lambda: bridge.ask(engine.staff_rejoin, panel.show_done))

        def service(out: bool) -> None:
            def done(ok: bool) -> None:
                panel.show_done(ok)
                report()

            bridge.ask(lambda: engine.staff_out_of_service(out), done)

        panel.service_requested.connect(service)
        panel.device_check_requested.connect(
            lambda: bridge.ask(engine.staff_device_check, panel.show_device_check)
        )
        panel.test_sound_requested.connect(self._test_sound_touched)
        # The live device check: the engine opens and releases the devices; the picture and the level
        # come through the bridge, newest only, like the call's self-view.
        panel.live_check_requested.connect(lambda: bridge.ask(engine.staff_live_check, panel.show_live_check))
        panel.live_check_stopped.connect(lambda: bridge.submit(engine.staff_stop_live_check))

        def check_frame() -> None:
            image = bridge.take_check_frame()
            if image is not None:
                panel.show_check_frame(image[0])

        def check_level() -> None:
            level = bridge.take_check_level()
            if level is not None:
                panel.show_check_level(level[0])

        bridge.check_frame.connect(check_frame)
        bridge.check_level.connect(check_level)
        bridge.live_check_ended.connect(panel.live_check_ended)

        def still_open(open_: bool) -> None:
            if not open_:
                panel.close_panel()

        panel.used.connect(lambda: bridge.ask(engine.staff_touch, still_open))
        panel.closed.connect(lambda: bridge.submit(engine.staff_close))
        # Closes by itself when nobody touches it (the engine's idle limit).
        self._staff_watch = QTimer(self)
        self._staff_watch.setInterval(2000)

        def watch() -> None:
            if panel.mode in ("panel", "code", "devices"):
                bridge.ask(lambda: _is_open(engine), still_open)

        self._staff_watch.timeout.connect(watch)
        self._staff_watch.start()

    def _take_back_control(self) -> None:
        # Closed here, on the thread that injects, before the engine even hears of the touch: no
        # input of the clerk's reaches the page after this instant.
        self._engine.consent.close()
        self._bridge.submit(self._engine.take_back_control)

    def _listen_touched(self) -> None:
        listen = self.sender()
        if isinstance(listen, ListenButton) and listen.text_to_read:
            self._reading = self._reading_context(self.snapshot)
            self.speech.say(listen.text_to_read, self.t.language, listen)

    def _volume_touched(self, steps: int) -> None:
        engine = self._engine
        self._bridge.submit(lambda: engine.change_volume(steps))

    def _test_sound_touched(self) -> None:
        self.sounds.play(Cue.TEST)

    def _show_microphone_level(self) -> None:
        level = self._bridge.take_microphone_level()
        if level is not None:
            self.waiting.microphone_level(level[0])
            if self.snapshot is not None and self.waiting.isVisible():
                self.waiting.show_state(self.snapshot, self.t)  # "no microphone" in words

    @staticmethod
    def _reading_context(snapshot: KioskSnapshot | None) -> tuple[object, ...] | None:
        """What a text read aloud belongs to: when it changes, the reading stops (the countdown and
        a sending's percentage do not count)."""
        if snapshot is None:
            return None
        documents = snapshot.documents or DocumentsState()
        return (
            snapshot.session.phase,
            snapshot.session.clerk_late,
            snapshot.session.reconnecting,
            snapshot.session.rating is not None and snapshot.session.rating.answered,
            snapshot.control,
            documents.requested,
            documents.scanner,
            documents.scan_error,
            documents.store_error,
            len(documents.pages),
            tuple(t.status for t in documents.transfers),
            snapshot.printing.document.status if snapshot.printing and snapshot.printing.document else None,
        )

    def _text_size_touched(self) -> None:
        self.toggle_larger_text()

    def toggle_larger_text(self, on: bool | None = None) -> None:
        self.larger_text = (not self.larger_text) if on is None else on
        self.setStyleSheet(stylesheet(LARGER_TEXT if self.larger_text else 1.0))
        self._refresh()

    def switch_language(self) -> None:
        self.speech.stop()  # not the rest of a French sentence in an English voice
        self.t = Translator(self.t.other_language())
        self._refresh()

    def _refresh(self) -> None:
        if self.snapshot is not None:
            self.show_state(self.snapshot)
        self.language.setText(self.t("language.switch"))

    def _keyboard_shown(self, shown: bool) -> None:
        self._show_notices()

    def _show_notices(self) -> None:
        # While the citizen types, the keys and the page need every line of the screen; the staff's
        # sign comes back with "Fermer le clavier".
        self.notices.setVisible(self._has_notices and self.call.keyboard.isHidden())

    def small_screen(self) -> bool:
        long_side, short_side = max(self.width(), self.height()), min(self.width(), self.height())
        return long_side < MIN_SCREEN[0] or short_side < MIN_SCREEN[1]  # a portrait totem is fine

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # On the QWindow (made again when the window's flags change): every press reaches it once,
        # before Qt hands it to the widget under it, the form view's too.
        handle = self.windowHandle()
        if handle is not None:
            handle.installEventFilter(self.corner_taps)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.call.set_compact(self.small_screen())
        if self.staff_panel.isVisible():
            self.staff_panel.setGeometry(self.rect())

    def show_state(self, snapshot: KioskSnapshot) -> None:
        before = self.snapshot
        previous = before.session.phase if before else None
        self.snapshot = snapshot
        phase = snapshot.session.phase
        screen: IdleScreen | WaitingScreen | InCallScreen | EndedScreen | OutOfServiceScreen
        if snapshot.out_of_service and phase is Phase.IDLE:
            screen = self.out_of_service  # a reset check failed: no citizen uses this kiosk
        elif phase is Phase.IDLE:
            screen = self.idle
        elif phase in (Phase.UPCOMING, Phase.WAITING_FOR_CLERK):
            screen = self.waiting
        elif phase is Phase.IN_CALL:
            screen = self.call
        else:
            screen = self.ended
        if phase is Phase.IDLE and previous is Phase.ENDED:
            # The next citizen starts in the kiosk's own language, not in the last citizen's.
            self.t = Translator(self._default_language)
            if self.larger_text:
                self.toggle_larger_text(False)  # and in the kiosk's own text size
        if phase is not previous and phase in (Phase.IDLE, Phase.ENDED, Phase.UPCOMING):
            self.call.reset()  # no image of the last citizen (or clerk) survives the session
            self.waiting.reset()
        if self._reading is not None and self._reading != self._reading_context(snapshot):
            self.speech.stop()  # the screen moved on: so does the voice (and at the session's end)
            self._reading = None
        for cue in cues_between(before, snapshot):
            self.sounds.play(cue)
        self.speech.set_gain(gain(snapshot.volume))
        self.sounds.set_gain(gain(snapshot.volume))
        self._follow_form_session(snapshot)
        appointment = snapshot.session.appointment
        self.t.clerk = appointment.clerk_name if appointment is not None else ""
        screen.show_state(snapshot, self.t)
        self.stack.setCurrentWidget(screen)
        self.language.setVisible(phase is not Phase.IN_CALL)
        self.language.setText(self.t("language.switch"))
        # Larger text needs a screen of the kiosk's minimum size: on a smaller one, the essentials first.
        self.text_size.setVisible(phase is not Phase.IN_CALL and not self.small_screen())
        self.text_size.setText(self.t("text.smaller" if self.larger_text else "text.larger"))
        reading = self.speech.available(self.t.language)
        for listen in self.findChildren(ListenButton):
            listen.setVisible(reading)  # none rather than one that says nothing
        texts = [self.t(f"notice.{n.value}") for n in sorted(snapshot.notices)]
        if self.speech.failed or (self.speech.tts is not None and not reading):
            texts.append(self.t("notice.read_aloud_missing"))
        if self.sounds.failed:
            texts.append(self.t("notice.sounds_missing"))
        if self.small_screen():
            texts.append(self.t("notice.small_screen"))  # for the staff: this kiosk needs a bigger screen
        # Notices are for the staff: in words on the idle screen, while a citizen is there only a
        # discreet sign (the citizen can do nothing about an enrolment or a missing camera).
        self.notices.setText("   •   ".join(texts) if phase is Phase.IDLE else "\u26a0")
        self.notices.setAlignment(
            Qt.AlignmentFlag.AlignLeft if phase is Phase.IDLE else Qt.AlignmentFlag.AlignRight
        )
        self._has_notices = bool(texts)
        self._show_notices()
        self._report_screen()

    def _report_screen(self, *_: object) -> None:
        if self.snapshot is None or self.snapshot.session.phase is not Phase.IN_CALL:
            self._screen_reported = None  # the next call hears it from the start
            return
        facts = (
            self.t.language,
            self.call.documents_area.isVisibleTo(self.call),
            self.call.form.zoom_factor(),
        )
        if facts == self._screen_reported:
            return
        self._screen_reported = facts
        language, documents_open, zoom = facts
        self._bridge.submit(lambda: self._engine.screen_shown(language, documents_open, zoom))

    def _follow_form_session(self, snapshot: KioskSnapshot) -> None:
        """The form lives as long as the appointment's session: a dropped call that reconnects keeps
        the citizen's half-filled form; the end of the session destroys it with its profile."""
        appointment = snapshot.session.appointment
        phase = snapshot.session.phase
        if (
            phase is Phase.IN_CALL
            and appointment is not None
            and appointment.start_url
            and self._form_session != appointment.id
        ):
            self.call.form.start_session(appointment.start_url, NavigationPolicy(snapshot.form_origins))
            self._form_session = appointment.id
        elif phase in (Phase.IDLE, Phase.ENDED, Phase.UPCOMING) and self._form_session is not None:
            self.call.form.end_session()
            self._form_session = None
        if phase in (Phase.IDLE, Phase.ENDED, Phase.UPCOMING):
            self.session_files.clear()

    def back_to_defaults(self) -> None:
        """For the reset check (again, after show_state's own reset at the session's end): the kiosk's
        language and text size, no reading, no picture of anyone on any screen."""
        self.speech.stop()
        self._reading = None
        self.t = Translator(self._default_language)
        if self.larger_text:
            self.toggle_larger_text(False)
        self.call.reset()
        self.waiting.reset()
        self._refresh()

    def screen_settings(self) -> SettingsFound:
        return SettingsFound(
            language=self.t.language,
            default_language=self._default_language,
            larger_text=self.larger_text,
            zoom=self.call.form.zoom_factor(),
        )

    def papers_shown(self) -> list[str]:
        scanned = [f"page {n}" for n in range(1, self.call.documents.pages_shown() + 1)]
        return scanned + [f"page {n} to print" for n in range(1, self.call.print_panel.pages_shown() + 1)]

    def _show_remote_frame(self) -> None:
        image = self._bridge.take_frame("remote")
        if image is not None and self.snapshot is not None and self.snapshot.session.phase is Phase.IN_CALL:
            self.call.remote.show_image(to_qimage(image))

    def _show_local_frame(self) -> None:
        image = self._bridge.take_frame("local")
        if image is None or self.snapshot is None:
            return
        if self.snapshot.session.phase is Phase.IN_CALL:
            self.call.local.show_image(to_qimage(image))
        elif self.snapshot.session.phase is Phase.WAITING_FOR_CLERK:
            self.waiting.self_view.show_image(to_qimage(image))  # « Vous vous voyez ? »

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._kiosk_mode and event.spontaneous():
            # Asked by the compositor (a close shortcut, a stray client): a kiosk does not close.
            log.warning("a request to close the kiosk's window was refused")
            event.ignore()
            return
        self._ticker.stop()
        self.speech.stop()
        self.sounds.stop()
        if self.streamer is not None:
            self.streamer.stop()
        self.call.form.end_session()
        self.session_files.clear()
        super().closeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # A kiosk ignores keyboard shortcuts (no Alt+F4 / Escape exits); the compositor has no binding.
        log.debug("a key was ignored: %s", QKeySequence(event.keyCombination()).toString())

    def enter_kiosk_mode(self) -> None:
        self._kiosk_mode = True
        self.setWindowFlag(Qt.WindowType.FramelessWindowHint, True)
        self.showFullScreen()
