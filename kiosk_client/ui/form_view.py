"""The embedded form view: the administration's web site, locked down.

Each session gets a fresh off-the-record profile, destroyed at the end (clearing cookies is not
enough: localStorage would survive). Navigation goes only to the session's allowed origins; pop-ups,
downloads, printing, permissions (camera, location…), the context menu and devtools are refused, and
each refusal is shown. The file chooser never opens the disk.

The page heals itself: when its render process dies (crashed, killed) or a failed load leaves it
empty, the form view reloads the last page the navigation policy allowed, a bounded number of times
(core.page_recovery), tells the citizen, and says so on `recovered` / `recovery_failed` (the window
tells the clerk).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QEventLoop, QObject, QPoint, QPointF, QRect, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWebEngineCore import (
    QWebEngineDownloadRequest,
    QWebEngineFileSystemAccessRequest,
    QWebEnginePage,
    QWebEnginePermission,
    QWebEngineProfile,
    QWebEngineScript,
    QWebEngineSettings,
)
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from ..core.control_protocol import (
    ZOOM_LEVELS,
    InputMessage,
    KeyInput,
    NavigateInput,
    PointerInput,
    TextInput,
    ZoomInput,
)
from ..core.navigation import NavigationPolicy
from ..core.page_recovery import (
    DEFAULT_ATTEMPTS,
    DEFAULT_WINDOW_S,
    FormPageLost,
    FormPageRecovered,
    PageIncident,
    RendererRecoveryTiming,
    RetryBudget,
)
from ..core.remote_control import address_without_secrets
from .form_input import FENCE_NUMBERS, inject_fence, inject_key, inject_pointer, inject_text
from .form_scripts import (
    FOCUS_GUARD,
    INPUT_FENCE,
    OPEN_SHADOW_ROOTS,
    PAGE_CONTENT,
    REVEAL_FOCUSED,
    WATCH,
    watched_attributes,
    with_selectors,
)
from .widgets import button, label

log = logging.getLogger(__name__)


@dataclass
class _GuardedInput:
    """A key or text of the clerk's waiting for its fence and the check of the focused field."""

    message: InputMessage
    admitted: Callable[[], bool]
    done: Done
    page: QWebEnginePage
    target: QWidget
    guard: str  # the check, with the number of the fence sent last for this input
    deadline: float  # time.monotonic() after which the page is busy
    fenced_at: float = 0.0  # time.monotonic() when that fence was sent


Done = Callable[[str | None, str], None]  # (refusal code or None, reason)

LOCKED_ATTRIBUTES = {
    QWebEngineSettings.WebAttribute.JavascriptCanOpenWindows: False,
    QWebEngineSettings.WebAttribute.JavascriptCanAccessClipboard: False,
    QWebEngineSettings.WebAttribute.JavascriptCanPaste: False,
    QWebEngineSettings.WebAttribute.LocalContentCanAccessFileUrls: False,
    QWebEngineSettings.WebAttribute.LocalContentCanAccessRemoteUrls: False,
    QWebEngineSettings.WebAttribute.NavigateOnDropEnabled: False,
    QWebEngineSettings.WebAttribute.FullScreenSupportEnabled: False,
    QWebEngineSettings.WebAttribute.PluginsEnabled: False,
    QWebEngineSettings.WebAttribute.ScreenCaptureEnabled: False,
    QWebEngineSettings.WebAttribute.AllowRunningInsecureContent: False,
    QWebEngineSettings.WebAttribute.HyperlinkAuditingEnabled: False,
    QWebEngineSettings.WebAttribute.WebRTCPublicInterfacesOnly: True,
}


class FormPage(QWebEnginePage):
    refused = Signal(str, str)  # what, detail
    alerted = Signal(str)

    def __init__(
        self,
        profile: QWebEngineProfile,
        policy: NavigationPolicy,
        files: Callable[[], list[str]],
        parent: QObject,
    ) -> None:
        super().__init__(profile, parent)
        self.policy = policy
        self._files = files
        self.last_allowed: str | None = None  # the last main-frame address the policy let through
        for attribute, on in LOCKED_ATTRIBUTES.items():
            self.settings().setAttribute(attribute, on)
        self.permissionRequested.connect(self._deny_permission)
        self.fileSystemAccessRequested.connect(self._deny_file_system)
        self.fullScreenRequested.connect(lambda request: request.reject())
        self.registerProtocolHandlerRequested.connect(lambda request: request.reject())
        self.printRequested.connect(lambda: self.refused.emit("print", ""))
        self.printRequestedByFrame.connect(lambda frame: self.refused.emit("print", ""))

    def _deny_file_system(self, request: QWebEngineFileSystemAccessRequest) -> None:
        request.reject()
        self.refused.emit("filesystem", "")

    def _deny_permission(self, permission: QWebEnginePermission) -> None:
        permission.deny()
        self.refused.emit("permission", str(permission.permissionType().name))

    def acceptNavigationRequest(
        self, url: QUrl | str, type: QWebEnginePage.NavigationType, isMainFrame: bool
    ) -> bool:
        text = url.toString() if isinstance(url, QUrl) else str(url)
        if not isMainFrame and text in ("about:blank", "about:srcdoc"):
            return True  # empty frames that pages build themselves
        verdict = self.policy.check(text)
        if not verdict.allowed:
            log.info("navigation refused: %s", verdict.reason)
            self.refused.emit("navigation", verdict.reason)
            return False
        if isMainFrame:
            self.last_allowed = text
        return True

    def createWindow(self, type: QWebEnginePage.WebWindowType) -> QWebEnginePage:
        self.refused.emit("popup", "")
        return None  # type: ignore[return-value]  # no new window: Qt treats None as a refusal

    def chooseFiles(
        self,
        mode: QWebEnginePage.FileSelectionMode,
        oldFiles: Sequence[str],
        acceptedMimeTypes: Sequence[str],
    ) -> list[str]:
        # Never the disk: only the documents this session's citizen scanned and sent (SessionFiles).
        files = self._files()
        if not files:
            self.refused.emit("file_chooser", "")
        return files

    def javaScriptAlert(self, securityOrigin: QUrl | str, msg: str) -> None:
        # A modal box would freeze a remotely driven session (the clerk cannot see it): show it inline.
        self.alerted.emit(msg[:300])

    def javaScriptConsoleMessage(
        self, level: QWebEnginePage.JavaScriptConsoleMessageLevel, message: str, line: int, source: str
    ) -> None:
        pass  # page logs are the site's business, and may hold citizens' data


TERMINATIONS = {
    QWebEnginePage.RenderProcessTerminationStatus.CrashedTerminationStatus: PageIncident.CRASHED,
    QWebEnginePage.RenderProcessTerminationStatus.KilledTerminationStatus: PageIncident.KILLED,
    QWebEnginePage.RenderProcessTerminationStatus.AbnormalTerminationStatus: PageIncident.ABNORMAL,
}


@dataclass
class _Recovery:
    """A recovery under way: from the first incident until a reload brings the page back."""

    cause: PageIncident
    incident_at: float
    attempt: int = 0
    reload_at: float = 0.0
    url: str = ""


class FormView(QWidget):
    """Holds at most one session's page at a time."""

    refused = Signal(str, str)
    page_changed = Signal(str, str)  # url, title
    clerk_pointer = Signal(QPointF)  # where the clerk's pointer is, in the view's pixels
    resized = Signal(int, int)  # the page's size: the clerk's pointer coordinates are fractions of it
    # After the citizen's own touch on the page (never the clerk's injected input): whether a text field
    # now has the focus, and whether it is secret (a password). Asked twice, the later answer wins:
    # Chromium moves the focus a little after the touch.
    citizen_field = Signal(bool, bool)
    clerk_pressing = Signal()  # emitted before the clerk's press or click reaches the page
    zoomed = Signal(float)  # the page's zoom changed (the citizen's buttons or the clerk's zoom)
    # FormPageRecovered: the page is back after its renderer died or it stayed blank.
    recovered = Signal(object)
    # FormPageLost: given up after the retry budget; a message with "Réessayer" replaces the page.
    recovery_failed = Signal(object)

    # A failed load that left the page empty for this long is reloaded (a refused navigation or a
    # failed link keeps the page it was on: that is not blank, and is not reloaded).
    BLANK_AFTER_MS = 3000
    PROBE_TIMEOUT_MS = 2000  # a page that does not answer within this is not showing anything either
    RELOAD_TIMEOUT_MS = 20_000  # a reload that has not finished by then failed as well
    RETRY_ATTEMPTS = DEFAULT_ATTEMPTS
    RETRY_WINDOW_S = DEFAULT_WINDOW_S
    # A key or a text waits for the inputs sent before it (form_scripts.INPUT_FENCE) this long at most.
    FENCE_TIMEOUT_S = 4.0  # under the engine's 5 s for one input; a loaded renderer took over 2 s in CI
    FENCE_POLL_MS = 1
    FENCE_RESEND_S = 0.1

    def __init__(
        self, files: Callable[[], list[str]] = lambda: [], citizen_only_selectors: Sequence[str] = ()
    ) -> None:
        super().__init__()
        self._files = files
        self._guard = with_selectors(FOCUS_GUARD, tuple(citizen_only_selectors))
        self._watch = with_selectors(
            WATCH, tuple(citizen_only_selectors), watched_attributes(tuple(citizen_only_selectors))
        )
        self.view: QWebEngineView | None = None
        self.page: FormPage | None = None
        self.profile: QWebEngineProfile | None = None
        self._retired: list[QWebEngineProfile] = []
        # Increases whenever the page may show a different document: anything measured on the page
        # (citizen-only fields to mask) is valid only for the generation it was measured in.
        self.generation = 0
        self.notice = QLabel()
        self.notice.setTextFormat(Qt.TextFormat.PlainText)  # a page's alert() text, shown as it is
        self.notice.setObjectName("badge")
        self.notice.setWordWrap(True)
        self.notice.hide()
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.notice.hide)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.notice)
        self.refused.connect(self._show_refusal)
        self.refusal_text: Callable[[str, str], str] = lambda what, detail: what
        # The citizen's words about a reload (keys "reloaded", "failed", "retry"), from the call screen.
        self.recovery_text: Callable[[str], str] = lambda key: key
        # Public: a benchmark that kills the renderer more often than a kiosk ever should may give it
        # a larger budget (core.page_recovery.RetryBudget); reset with each session.
        self.retry_budget = RetryBudget(self.RETRY_ATTEMPTS, self.RETRY_WINDOW_S)
        self._start_url = ""
        self._fence = 0
        self._focus_may_move = False  # a key or a press of the clerk's since the last fenced check
        self._recovery: _Recovery | None = None
        self.lost: FormPageLost | None = None  # given up: the message is shown in place of the page
        self._blank_timer = self._single_shot(self.BLANK_AFTER_MS, self._probe_content)
        self._probe_timer = self._single_shot(self.PROBE_TIMEOUT_MS, self._probe_unanswered)
        self._reload_timer = self._single_shot(self.RELOAD_TIMEOUT_MS, self._reload_timed_out)
        self._probe_id = 0
        self._tried_since_lost = False  # a load was asked for (the clerk's navigate) since giving up
        self.failure = QFrame()
        self.failure.setObjectName("confirm")
        self.failure_text = label("confirmQuestion")
        self.retry = button("retryFormButton", "primary")
        self.retry.clicked.connect(self._citizen_retries)
        failure_layout = QVBoxLayout(self.failure)
        failure_layout.setContentsMargins(24, 24, 24, 24)
        failure_layout.addStretch(1)
        failure_layout.addWidget(self.failure_text)
        failure_layout.addWidget(self.retry, 0, Qt.AlignmentFlag.AlignLeft)
        failure_layout.addStretch(1)
        self.failure.hide()
        self._layout.addWidget(self.failure, 1)
        self._field_checks: list[QTimer] = []
        for delay in self.FIELD_CHECK_DELAYS_MS:
            timer = QTimer(self)
            timer.setSingleShot(True)
            timer.setInterval(delay)
            timer.timeout.connect(self._check_citizen_field)
            self._field_checks.append(timer)

    def _single_shot(self, interval_ms: int, slot: Callable[[], None]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(interval_ms)
        timer.timeout.connect(slot)
        return timer

    def start_session(self, start_url: str, policy: NavigationPolicy) -> None:
        self.end_session()
        self._start_url = start_url
        profile = QWebEngineProfile()  # no storage name: off the record, in memory only
        assert profile.isOffTheRecord()
        profile.downloadRequested.connect(self._refuse_download)
        page = FormPage(profile, policy, self._files, self)
        for name, source, world in (
            ("kiosk-open-shadow-roots", OPEN_SHADOW_ROOTS, QWebEngineScript.ScriptWorldId.MainWorld),
            ("kiosk-citizen-only-watch", self._watch, QWebEngineScript.ScriptWorldId.ApplicationWorld),
            ("kiosk-input-fence", INPUT_FENCE, QWebEngineScript.ScriptWorldId.ApplicationWorld),
        ):
            script = QWebEngineScript()
            script.setName(name)
            script.setSourceCode(source)
            script.setWorldId(world)
            script.setInjectionPoint(QWebEngineScript.InjectionPoint.DocumentCreation)
            script.setRunsOnSubFrames(True)
            page.scripts().insert(script)
        page.refused.connect(self.refused)
        page.alerted.connect(lambda text: self._show_notice(text))
        view = QWebEngineView(self)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)  # no "Inspect", no "Save as"
        view.setPage(page)
        view.installEventFilter(self)
        for child in view.findChildren(QWidget):  # the widget Chromium draws in, which takes the touches
            child.installEventFilter(self)
        page.loadStarted.connect(self._new_generation)
        page.urlChanged.connect(self._new_generation)
        page.urlChanged.connect(lambda url: self.page_changed.emit(url.toString(), page.title()))
        page.titleChanged.connect(lambda title: self.page_changed.emit(page.url().toString(), title))
        page.loadStarted.connect(lambda: self._load_started(page))
        page.loadFinished.connect(lambda ok: self._load_finished(page, ok))
        page.renderProcessTerminated.connect(lambda status, code: self._renderer_ended(page, status, code))
        self._layout.addWidget(view, 1)
        self.view, self.page, self.profile = view, page, profile
        self._new_generation()
        view.load(QUrl(start_url))

    def navigate(self, url: str) -> bool:
        """Load a URL only if the policy allows it: `load()` runs javascript: URLs without asking
        acceptNavigationRequest, so the check must come first."""
        if self.page is None:
            return False
        verdict = self.page.policy.check(url)
        if not verdict.allowed:
            self.refused.emit("navigation", verdict.reason)
            return False
        self.page.load(QUrl(url))
        return True

    FIELD_CHECK_DELAYS_MS = (120, 400)
    CITIZEN_TOUCH_ENDS = (QEvent.Type.MouseButtonRelease, QEvent.Type.TouchEnd)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view:
            if event.type() == QEvent.Type.Resize:
                self.resized.emit(self.view.width(), self.view.height())
            elif event.type() == QEvent.Type.ChildAdded:
                child = event.child()  # type: ignore[attr-defined]
                if isinstance(child, QWidget):
                    child.installEventFilter(self)
        elif event.type() in self.CITIZEN_TOUCH_ENDS and event.spontaneous():
            # Spontaneous: it came from the screen (the citizen's finger); the clerk's input is sent
            # by the kiosk itself and is never spontaneous, so the clerk can never open the keyboard.
            self._check_field_soon()
        return False

    def _check_field_soon(self) -> None:
        for timer in self._field_checks:
            timer.start()

    def editing(self) -> tuple[bool, bool]:
        """(a text field has the focus, it is secret), as Chromium tells Qt's input method: this sees
        into closed shadow roots and cross-origin frames, which the page scripts cannot."""
        target = self.input_target()
        if target is None or not target.isVisible():
            return (False, False)
        enabled = bool(target.inputMethodQuery(Qt.InputMethodQuery.ImEnabled))
        hints = target.inputMethodQuery(Qt.InputMethodQuery.ImHints)
        secret = bool(int(hints or 0) & Qt.InputMethodHint.ImhHiddenText.value) if enabled else False
        return (enabled, secret)

    def field_rect(self) -> QRect | None:
        """Where the text cursor of the focused field is, in the view's pixels."""
        target = self.input_target()
        rect = target.inputMethodQuery(Qt.InputMethodQuery.ImCursorRectangle) if target else None
        if not isinstance(rect, QRect) or target is None or self.view is None:
            return None
        return rect.translated(target.mapTo(self.view, QPoint(0, 0)))

    def reveal_field(self) -> None:
        """Scrolls the focused field to the middle of the view (which the keyboard has just made shorter)."""
        if self.page is not None:
            self.page.runJavaScript(REVEAL_FOCUSED, QWebEngineScript.ScriptWorldId.ApplicationWorld)

    def citizen_type(self, text: str) -> None:
        """What the citizen typed on the on-screen keyboard, into the focused field (no consent to
        check: it is the citizen's own hand)."""
        target = self._focused_target()
        if target is not None:
            inject_text(target, text)

    def citizen_key(self, key: str) -> None:
        target = self._focused_target()
        if target is not None:
            inject_key(target, KeyInput(seq=0, key=key))
            self._check_field_soon()  # "Suivant" reaches another field (secret or not), "Valider" none

    def _focused_target(self) -> QWidget | None:
        target = self.input_target()
        if target is not None and self.view is not None and not self.view.hasFocus():
            self.view.setFocus(Qt.FocusReason.OtherFocusReason)
        return target

    def _check_citizen_field(self) -> None:
        editing, secret = self.editing()
        self.citizen_field.emit(editing, secret)

    def _new_generation(self, *_: object) -> None:
        self.generation += 1

    ZOOMS = ZOOM_LEVELS  # administration sites use 14-16 px text; the clerk's zoom has the same levels

    def zoom(self, step: int) -> float:
        """Makes the page larger (step > 0) or smaller, within ZOOMS; returns the new factor. Each
        session starts at 100 % (a new view)."""
        view = self.view
        if view is None:
            return 1.0
        current = min(range(len(self.ZOOMS)), key=lambda i: abs(self.ZOOMS[i] - view.zoomFactor()))
        return self.set_zoom(self.ZOOMS[max(0, min(len(self.ZOOMS) - 1, current + step))])

    def set_zoom(self, factor: float) -> float:
        """One of ZOOMS. The view keeps its size: the clerk's pointer fractions and the grabs sent to
        the clerk are of the view, not of the page, so they still match after a zoom."""
        view = self.view
        if view is None:
            return 1.0
        factor = min(self.ZOOMS, key=lambda z: abs(z - factor))
        if factor != view.zoomFactor():
            view.setZoomFactor(factor)
            self.zoomed.emit(factor)
        return factor

    def zoom_factor(self) -> float:
        return self.view.zoomFactor() if self.view is not None else 1.0

    def page_size(self) -> tuple[int, int]:
        """The page's size in pixels (the view's, without the notice above it)."""
        return (self.view.width(), self.view.height()) if self.view is not None else (0, 0)

    def input_target(self) -> QWidget | None:
        if self.view is None:
            return None
        return self.view.focusProxy() or self.view

    def apply(self, message: InputMessage, admitted: Callable[[], bool], done: Done) -> None:
        """Deliver one accepted input to the page if `admitted()` (the citizen's consent) still holds at
        the moment of injection; `done` says whether it was applied or refused."""
        target = self.input_target()
        if target is None or self.page is None:
            done("no_form", "the form view is not open")
            return
        if self._recovery is not None:
            # The page is dead or reloading: an input would land nowhere, and an ack would lie.
            done("no_form", "the form page is being reloaded after an incident on the kiosk")
            return
        if self.lost is not None and not isinstance(message, NavigateInput):
            done("no_form", "the form page could not be shown again; navigate to try again")
            return
        if not admitted():
            done("not_granted", "the citizen took control back")
            return
        if isinstance(message, PointerInput):
            if message.action in ("press", "click", "double_click"):
                self.clerk_pressing.emit()
                self._focus_may_move = True
            self.clerk_pointer.emit(inject_pointer(target, message))
            done(None, "")
        elif isinstance(message, ZoomInput):
            self.set_zoom(message.level)
            done(None, "")
        elif isinstance(message, NavigateInput):
            ok = self.navigate(message.url)
            done(None, "") if ok else done("not_allowed", "this site is not allowed for this appointment")
        else:
            if self.view is not None and not self.view.hasFocus():
                # Keys and text go to the focused element of a focused page; so does the fence.
                self.view.setFocus(Qt.FocusReason.OtherFocusReason)
            pending = _GuardedInput(
                message, admitted, done, self.page, target, "", time.monotonic() + self.FENCE_TIMEOUT_S
            )
            if self._focus_may_move:
                # A key or a press of the clerk's went just before: the check must see the focus
                # where it put it. (After text or a pointer move, the check runs at once, as
                # before the fence: a page that moves the focus itself as text is typed is not
                # covered.)
                self._send_fence(pending)
            else:
                pending.guard = self._guard.replace("FENCE", "fence ? fence.last : -1", 1)
            self._focus_may_move = isinstance(message, KeyInput)
            self._guard_input(pending)

    def _send_fence(self, pending: _GuardedInput) -> None:
        self._fence = (self._fence + 1) % FENCE_NUMBERS
        inject_fence(pending.target, self._fence)
        pending.guard = self._guard.replace("FENCE", str(self._fence), 1)
        pending.fenced_at = time.monotonic()

    # Methods and one plain object, not two closures that call each other: such a pair is a
    # reference cycle holding Qt wrappers, freed by Python's cycle collector in whatever thread runs
    # it (the engine's, a server's), and a Qt wrapper freed outside the Qt thread can crash.
    def _guard_input(self, pending: _GuardedInput) -> None:
        if pending.page is not self.page:
            pending.done("no_form", "the session ended")
            return
        pending.page.runJavaScript(
            pending.guard,
            QWebEngineScript.ScriptWorldId.ApplicationWorld,
            lambda result: self._guarded(pending, result),
        )

    def _guarded(self, pending: _GuardedInput, result: object) -> None:
        # The page answered later, maybe after a take-back: consent is checked again here.
        done, message = pending.done, pending.message
        if pending.page is not self.page:
            done("no_form", "the session ended")
        elif not pending.admitted():
            done("not_granted", "the citizen took control back")
        elif result == "pending":
            now = time.monotonic()
            if now > pending.deadline:
                done("busy", "the page did not take the previous input in time; send it again")
                return
            if now - pending.fenced_at > self.FENCE_RESEND_S:
                # A fence whose keys did not all arrive (the first keys after the view took focus
                # can be lost) never completes: a new one does, and it follows every input before.
                self._send_fence(pending)
            QTimer.singleShot(self.FENCE_POLL_MS, self, lambda: self._guard_input(pending))
        elif result == "ok":
            if self.view is not None and not self.view.hasFocus():
                self.view.setFocus(Qt.FocusReason.OtherFocusReason)
            if isinstance(message, TextInput):
                inject_text(pending.target, message.text)
            elif isinstance(message, KeyInput):
                inject_key(pending.target, message)
            done(None, "")
        elif result == "citizen_only":
            done("citizen_only_field", "only the citizen may fill this field")
        else:
            done("citizen_only_field", "this field cannot be checked, so only the citizen may fill it")

    def end_session(self) -> None:
        """Destroy the page, the view, then the profile: nothing of this session remains."""
        view, page, profile = self.view, self.page, self.profile
        self.view = self.page = self.profile = None
        self.notice.hide()
        for timer in (*self._field_checks, self._blank_timer, self._probe_timer, self._reload_timer):
            timer.stop()
        self._recovery = None
        self.lost = None
        self.failure.hide()
        self.retry_budget.reset()  # the next citizen's page starts with the whole budget
        if view is None or page is None or profile is None:
            return
        self._layout.removeWidget(view)
        view.hide()
        # A profile must outlive its pages: release it only once the page is gone.
        self._retired.append(profile)
        page.destroyed.connect(lambda: self._release(profile))
        page.deleteLater()
        view.deleteLater()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.end_session()
        super().closeEvent(event)

    def _release(self, profile: QWebEngineProfile) -> None:
        if profile in self._retired:
            self._retired.remove(profile)
            profile.deleteLater()

    def sessions_released(self) -> bool:
        """True once every ended session's page and profile are destroyed."""
        return self.page is None and not self._retired

    def _refuse_download(self, download: QWebEngineDownloadRequest) -> None:
        download.cancel()
        self.refused.emit("download", "")

    def _show_refusal(self, what: str, detail: str) -> None:
        self._show_notice(self.refusal_text(what, detail))

    def _show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.show()
        self._notice_timer.start(5000)

    # ----------------------------------------------------------------- self-healing

    def kill_renderer(self) -> float:
        """Kills the page's render process (SIGKILL) as a crash would, and returns `time.monotonic()`
        just before the kill: for `kiosk-client bench recovery` and the tests, which then wait for
        `recovered` and subtract (FormPageRecovered.back_at - this). Raises ProcessLookupError when
        the page has no renderer (no session, or one already dead)."""
        pid = self.page.renderProcessPid() if self.page is not None else 0
        if pid <= 0:
            raise ProcessLookupError("the form view has no render process")
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        return killed_at

    def recovering(self) -> bool:
        """A reload after an incident is under way."""
        return self._recovery is not None

    def _load_started(self, page: FormPage) -> None:
        if page is self.page:
            self._blank_timer.stop()  # a new load: judged when it finishes
            self._probe_timer.stop()
            self._tried_since_lost = self.lost is not None

    def _load_finished(self, page: FormPage, ok: bool) -> None:
        if page is not self.page:
            return
        if not ok:
            # Refused, failed or stopped: maybe the page it was on is still there (a refused link),
            # maybe nothing is. Looked at in a moment, once Chromium has shown what it will show.
            # (Once given up, the message stays until a load succeeds: nothing to look at.)
            if self.lost is None:
                self._blank_timer.start()
            return
        self._blank_timer.stop()
        self._probe_timer.stop()
        if self.lost is not None:
            self._show_page_again()  # the clerk's navigation (or a late load) brought a page back
        recovery, self._recovery = self._recovery, None
        if recovery is None:
            return
        self._reload_timer.stop()
        event = FormPageRecovered(
            recovery.cause,
            recovery.attempt,
            recovery.incident_at,
            recovery.reload_at,
            time.monotonic(),
            recovery.url,
        )
        log.warning(
            "form page back after %s (reload %d) in %.2f s: %s",
            event.cause.value,
            event.attempt,
            event.seconds,
            address_without_secrets(event.url),
        )
        self._show_notice(self.recovery_text("reloaded"))
        self.recovered.emit(event)

    def _renderer_ended(
        self, page: FormPage, status: QWebEnginePage.RenderProcessTerminationStatus, code: int
    ) -> None:
        if page is not self.page:
            return  # a page being destroyed with its session
        cause = TERMINATIONS.get(status)
        if cause is None:
            log.info("the form page's renderer exited normally")
            return
        log.warning("the form page's renderer ended: %s (exit code %d)", cause.value, code)
        self._new_generation()  # its document is gone: nothing measured on it applies any more
        self._page_failed(cause)

    def _probe_content(self) -> None:
        page = self.page
        if page is None or self.lost is not None:
            return
        self._probe_id += 1
        probe = self._probe_id

        def answered(result: object) -> None:
            if page is not self.page or probe != self._probe_id or not self._probe_timer.isActive():
                return
            self._probe_timer.stop()
            if result != "content":
                log.warning("the form page is blank after a failed load (%s)", result)
                self._page_failed(PageIncident.BLANK)

        self._probe_timer.start()
        page.runJavaScript(PAGE_CONTENT, QWebEngineScript.ScriptWorldId.ApplicationWorld, answered)

    def _probe_unanswered(self) -> None:
        if self.page is not None:
            log.warning("the form page did not answer after a failed load")
            self._page_failed(PageIncident.BLANK)

    def _reload_timed_out(self) -> None:
        if self.page is not None and self._recovery is not None:
            log.warning("the form page's reload did not finish in time")
            self._page_failed(self._recovery.cause)

    def _page_failed(self, cause: PageIncident) -> None:
        """The page is gone (dead renderer) or shows nothing: reload it if the budget allows, else give
        up and say so. Everything the page held is lost either way."""
        page = self.page
        if page is None:
            return
        if self.lost is not None and not self._tried_since_lost:
            # Given up already, and nobody tried again since: another death of a renderer nobody asked
            # for (Chromium may start more than one for a navigation) is no news for the clerk.
            return
        for timer in (self._blank_timer, self._probe_timer, self._reload_timer):
            timer.stop()
        now = time.monotonic()
        recovery = self._recovery or _Recovery(cause, now)
        url = self._reload_url(page)
        if url is None and cause is PageIncident.BLANK and self._recovery is None:
            # Nothing the policy allows was ever shown (a start page outside the allowed sites): not
            # a page to heal, and reloading what was refused would only be refused again.
            log.info("the form page is blank, with no allowed address to reload")
            return
        attempt = self.retry_budget.take() if self.lost is None and url is not None else None
        if attempt is None or url is None:
            self._give_up(recovery, now)
            return
        recovery.attempt, recovery.reload_at, recovery.url = attempt, now, url
        self._recovery = recovery
        log.warning("reloading the form page (%d of %d)", attempt, self.retry_budget.attempts)
        self._reload_timer.start()
        # load(), not reload(): a reload would post a form again (a crash just after "Envoyer" must
        # not send the citizen's application twice); the address goes through the policy again.
        page.load(QUrl(url))

    def _reload_url(self, page: FormPage) -> str | None:
        """The page the citizen was on, if the policy allows it; else the last address it allowed;
        else the appointment's start page if allowed; else none."""
        for candidate in (page.url().toString(), page.last_allowed, self._start_url):
            if candidate and page.policy.check(candidate).allowed:
                return candidate
        return None

    def _give_up(self, recovery: _Recovery, now: float) -> None:
        self._recovery = None
        self._tried_since_lost = False
        event = FormPageLost(recovery.cause, self.retry_budget.used(), recovery.incident_at, now)
        log.error(
            "the form page could not be recovered (%s, %d reloads): given up", event.cause, event.attempts
        )
        self.lost = event
        self.notice.hide()
        if self.view is not None:
            self.view.hide()
        self.failure_text.setText(self.recovery_text("failed"))
        self.retry.setText(self.recovery_text("retry"))
        self.failure.show()
        self.recovery_failed.emit(event)

    def _show_page_again(self) -> None:
        self.lost = None
        self.failure.hide()
        if self.view is not None:
            self.view.show()

    def _citizen_retries(self) -> None:
        """The citizen's touch on "Réessayer": a person asked, so a fresh budget (never a loop: each
        series needs another touch)."""
        page = self.page
        if page is None:
            return
        self.retry_budget.reset()
        lost, self.lost = self.lost, None
        self.failure.hide()
        if self.view is not None:
            self.view.show()
        self._page_failed(lost.cause if lost is not None else PageIncident.BLANK)

    def retranslate(self) -> None:
        """The words of the failure message, in the citizen's language now."""
        self.failure_text.setText(self.recovery_text("failed"))
        self.retry.setText(self.recovery_text("retry"))


def time_renderer_recovery(form: FormView, timeout_s: float = 30.0) -> RendererRecoveryTiming:
    """For `kiosk-client bench recovery`: kills the form view's renderer (SIGKILL) and waits, running
    Qt's event loop on the calling (Qt) thread, until the form view has reloaded the page (its
    `recovered` signal, on the reloaded page's loadFinished(True)). Returns the times, measured from
    just before the kill. Raises ProcessLookupError when the page has no renderer, TimeoutError when
    the page is not back within `timeout_s` (or the form view gave up)."""
    events: list[FormPageRecovered] = []
    loop = QEventLoop()

    def back(event: FormPageRecovered) -> None:
        events.append(event)
        loop.quit()

    form.recovered.connect(back)
    form.recovery_failed.connect(loop.quit)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    try:
        killed_at = form.kill_renderer()
        timer.start(int(timeout_s * 1000))
        loop.exec()
    finally:
        timer.stop()
        form.recovered.disconnect(back)
        form.recovery_failed.disconnect(loop.quit)
    if not events:
        raise TimeoutError(f"the form view was not back within {timeout_s} s")
    return RendererRecoveryTiming(killed_at, events[0])
