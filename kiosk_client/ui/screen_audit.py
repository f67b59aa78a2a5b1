"""`kiosk-client audit screens`: every kiosk state, at every kiosk screen size, in French and English,
rendered to PNG and measured from the real widgets and the rendered pixels.

What it measures, for the citizen in front of a cheap touch screen: widgets off the screen, labels
and buttons whose text does not fit, the smallest touch target, the smallest gap between opposite
actions, the lowest text contrast, the smallest text, and windows larger than their screen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QFontInfo, QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QScrollArea, QWidget

from ..adapters.fakes import FakeCallFactory, FakeCentral, MemoryCache
from ..core.clock import CentralClock, SystemClock
from ..core.document_desk import DocumentsState, PagePreview
from ..core.document_protocol import Manifest
from ..core.document_transfer import Transfer, TransferStatus
from ..core.engine import KioskEngine, LiveCheck, StaffDeviceCheck, StaffReport
from ..core.events import KioskSnapshot, Notice
from ..core.models import Appointment, RgbImage
from ..core.page_recovery import PageIncident
from ..core.printing import PrintDocument, PrintState, PrintStatus
from ..core.session import CitizenRating, EndReason, Phase, Session
from ..core.settings import AccessibilitySettings
from ..core.staff_access import Attempt, Verdict
from ..runtime import LoopThread
from .bridge import EngineBridge
from .form_view import _Recovery
from .i18n import Translator
from .main_window import KioskWindow
from .speech import ReadAloud

log = logging.getLogger(__name__)

SIZES: tuple[tuple[int, int], ...] = ((1280, 720), (1366, 768), (1280, 1024), (1920, 1080), (1080, 1920))
LANGUAGES = ("fr", "en")
THUMB_WIDTH = 320


@dataclass
class Findings:
    screens: int = 0
    offscreen: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    larger_than_screen: list[str] = field(default_factory=list)
    targets: list[tuple[int, str]] = field(default_factory=list)  # (height, where)
    gaps: list[tuple[int, str]] = field(default_factory=list)
    contrasts: list[tuple[float, str]] = field(default_factory=list)
    text_px: list[tuple[int, str]] = field(default_factory=list)
    clerk_video: list[tuple[int, str]] = field(default_factory=list)  # height of the 4:3 picture

    def summary(self, sizes: list[tuple[int, int]]) -> dict[str, Any]:
        def least(values: list[tuple[Any, str]]) -> Any:
            return min(values)[0] if values else None

        def worst(values: list[tuple[Any, str]]) -> str | None:
            return min(values)[1] if values else None

        return {
            "screens": self.screens,
            "sizes": [f"{w}x{h}" for w, h in sizes],
            "offscreen_widgets": len(self.offscreen),
            "clipped_labels": len(self.clipped),
            "min_target_px": least(self.targets),
            "min_gap_px": least(self.gaps),
            "min_contrast": round(least(self.contrasts), 2) if self.contrasts else None,
            "min_text_px": least(self.text_px),
            "window_larger_than_screen": len(self.larger_than_screen),
            "min_clerk_video_px": least(self.clerk_video),
            "worst": {
                "target": worst(self.targets),
                "gap": worst(self.gaps),
                "contrast": worst(self.contrasts),
                "text": worst(self.text_px),
                "clerk_video": worst(self.clerk_video),
            },
            "examples": {
                "offscreen": sorted(set(self.offscreen))[:10],
                "clipped": sorted(set(self.clipped))[:10],
                "larger_than_screen": sorted(set(self.larger_than_screen))[:10],
            },
        }


# --------------------------------------------------------------------------- the states


def _preview() -> bytes:
    ok, encoded = cv2.imencode(".jpg", np.full((400, 283, 3), 240, np.uint8))
    return encoded.tobytes() if ok else b""


def states(now: datetime) -> Iterator[tuple[str, KioskSnapshot, Callable[[KioskWindow], None]]]:
    """(name, snapshot, what the citizen touched) for every state a citizen can see."""
    start = now + timedelta(minutes=4)
    appointment = Appointment(
        "a1", "Caisse d'allocations familiales", "Mme Martin-Dupont", start, start + timedelta(minutes=30)
    )
    # With a form to fill (a blank page stands for the administration's site): the consent question and
    # the "controlled by" banner live beside it.
    with_form = replace(appointment, id="a3", start_url="about:blank")
    later = Appointment(
        "a2", "France Travail", "M. Leroy", start + timedelta(hours=2), start + timedelta(hours=3)
    )

    def snap(session: Session, **changes: Any) -> KioskSnapshot:
        values: dict[str, Any] = {
            "site_name": "France Services de Saint-Amand-en-Puisaye",
            "kiosk_name": "Borne 1",
            "session": session,
            "today": (appointment, later),
            "central_reachable": True,
            "schedule_known": True,
            "notices": frozenset(),
            "microphone_on": True,
            "camera_on": True,
            "media_flowing": True,
            "clock_offset_s": 0.0,
        }
        values.update(changes)
        return KioskSnapshot(**values)

    def nothing(window: KioskWindow) -> None:
        pass

    def hang_up(window: KioskWindow) -> None:
        window.call.hang_up.click()

    in_call = Session(Phase.IN_CALL, appointment)
    pages = tuple(PagePreview(n, _preview(), "gray") for n in range(1, 4))
    manifest = Manifest("0" * 32, "Justificatif de domicile.pdf", "application/pdf", 90_000, 3, "a" * 64)
    yield "idle", snap(Session()), nothing
    yield "idle_staff_notice", snap(Session(), notices=frozenset({Notice.CAMERA_MISSING})), nothing
    yield "upcoming", snap(Session(Phase.UPCOMING, appointment)), nothing
    yield "waiting", snap(Session(Phase.WAITING_FOR_CLERK, appointment)), nothing
    yield "clerk_late", snap(Session(Phase.WAITING_FOR_CLERK, appointment, clerk_late=True)), nothing

    def speaking(window: KioskWindow) -> None:
        window.waiting.microphone_level(0.05)  # about -26 dBFS: a voice at arm's length

    def no_microphone(window: KioskWindow) -> None:
        window.waiting.microphone_level(None)
        assert window.snapshot is not None
        window.show_state(window.snapshot)

    waiting = Session(Phase.WAITING_FOR_CLERK, appointment)
    yield "waiting_check_speaking", snap(waiting), speaking
    yield "waiting_check_no_microphone", snap(waiting), no_microphone
    yield "in_call_louder", snap(in_call, volume=5), nothing
    yield "in_call", snap(in_call), nothing
    yield "in_call_muted", snap(in_call, microphone_on=False, camera_on=False), nothing
    long_names = replace(
        with_form,
        clerk_name="Mme Marie-Françoise de La Tour-d'Auvergne-Lauraguais",
        service="Caisse primaire d'assurance maladie de Saône-et-Loire, antenne de Chalon-sur-Saône",
    )
    yield "long_names_consent", snap(Session(Phase.IN_CALL, long_names), control="requested"), nothing
    yield "in_call_form", snap(Session(Phase.IN_CALL, with_form)), nothing
    yield "consent", snap(Session(Phase.IN_CALL, with_form), control="requested"), nothing
    yield "controlled", snap(Session(Phase.IN_CALL, with_form), control="granted"), nothing
    yield (
        "documents_requested",
        snap(in_call, documents=DocumentsState(requested="justificatif de domicile")),
        nothing,
    )
    form_call = Session(Phase.IN_CALL, with_form)
    yield (
        "form_documents_requested",
        snap(form_call, control="granted", documents=DocumentsState(requested="justificatif de domicile")),
        nothing,
    )
    yield "form_documents_pages", snap(form_call, documents=DocumentsState(pages=pages)), nothing
    yield "documents_scanning", snap(in_call, documents=DocumentsState(scanner="scanning")), nothing
    yield "documents_pages", snap(in_call, documents=DocumentsState(pages=pages)), nothing
    yield (
        "documents_error",
        snap(in_call, documents=DocumentsState(pages=pages, scan_error="paper_jammed")),
        nothing,
    )
    sending = Transfer(manifest, TransferStatus.SENDING, sent=40_000, confirmed=30_000)
    yield "documents_sending", snap(in_call, documents=DocumentsState(transfers=(sending,))), nothing
    received = Transfer(manifest, TransferStatus.RECEIVED, sent=90_000, confirmed=90_000)
    yield "documents_received", snap(in_call, documents=DocumentsState(transfers=(received,))), nothing
    yield "hang_up_confirmation", snap(in_call), hang_up
    letter = PrintDocument("1" * 32, "Attestation de paiement CAF.pdf", (_preview(), _preview()))
    yield "print_shown", snap(in_call, printing=PrintState(letter)), nothing
    no_paper = replace(letter, status=PrintStatus.FAILED, error="out_of_paper")
    yield "print_failed", snap(Session(Phase.IN_CALL, with_form), printing=PrintState(no_paper)), nothing

    def keyboard(secret: bool) -> Callable[[KioskWindow], None]:
        return lambda window: window.call.open_keyboard(secret)

    yield "keyboard", snap(Session(Phase.IN_CALL, with_form)), keyboard(False)
    yield (
        "keyboard_secret_controlled",
        snap(Session(Phase.IN_CALL, with_form), control="granted"),
        keyboard(True),
    )

    def larger(window: KioskWindow) -> None:
        window.toggle_larger_text(True)

    yield "larger_text_waiting", snap(Session(Phase.WAITING_FOR_CLERK, appointment)), larger
    yield "larger_text_in_call", snap(in_call), larger
    yield "larger_text_documents", snap(in_call, documents=DocumentsState(pages=pages)), larger
    yield "larger_text_print", snap(in_call, printing=PrintState(letter)), larger
    yield "larger_text_consent", snap(Session(Phase.IN_CALL, with_form), control="requested"), larger

    def larger_keyboard(window: KioskWindow) -> None:
        larger(window)
        window.call.open_keyboard(True)

    yield "larger_text_keyboard", snap(Session(Phase.IN_CALL, with_form)), larger_keyboard
    for reason in EndReason:
        ended = Session(Phase.ENDED, appointment, end_reason=reason, ended_at=now)
        yield f"ended_{reason.value}", snap(ended), nothing
    # The one-touch rating after a call (five faces or « Passer »), and its « Merci ».
    asked = CitizenRating(asked_at=now)
    rating = Session(Phase.ENDED, appointment, end_reason=EndReason.CLERK_HUNG_UP, ended_at=now, rating=asked)
    yield "rating", snap(rating), nothing
    yield "larger_text_rating", snap(rating), larger
    failed = replace(rating, end_reason=EndReason.CALL_FAILED)
    yield "rating_call_failed", snap(failed), nothing
    thanks = replace(rating, rating=replace(asked, face=5, answered_at=now))
    yield "rating_thanks", snap(thanks), nothing
    link = "https://www.plus.transformation.gouv.fr/"  # « Je donne mon avis »
    yield "rating_thanks_link", snap(thanks, evaluation_url=link), nothing
    yield "larger_text_rating_thanks_link", snap(thanks, evaluation_url=link), larger
    # A reset check failed: the next citizen finds this instead of the idle screen.
    yield "out_of_service", snap(Session(), out_of_service=True), nothing
    yield "larger_text_out_of_service", snap(Session(), out_of_service=True), larger

    # The form page could not be reloaded: the calm message with « Réessayer » in its place.
    def form_failed(window: KioskWindow) -> None:
        form = window.call.form
        now = time.monotonic()
        form._give_up(_Recovery(PageIncident.CRASHED, now), now)

    yield "form_failed", snap(Session(Phase.IN_CALL, with_form)), form_failed
    yield "form_failed_controlled", snap(Session(Phase.IN_CALL, with_form), control="granted"), form_failed

    def larger_form_failed(window: KioskWindow) -> None:
        larger(window)
        form_failed(window)

    yield "larger_text_form_failed", snap(Session(Phase.IN_CALL, with_form)), larger_form_failed
    yield from staff_states(snap(Session()))


def _face() -> RgbImage:
    """A synthetic citizen's face, as the camera would give it (tools/synthetic_face.py)."""
    from ..adapters.live_devices import to_preview
    from ..tools.synthetic_face import face_frames

    return to_preview(face_frames(seconds=0.05)[0])


def staff_states(idle: KioskSnapshot) -> Iterator[tuple[str, KioskSnapshot, Callable[[KioskWindow], None]]]:
    """The staff panel over the idle screen: its PIN pad, a lock-out, its main page, the walk-in code
    page as the animateur types a code, the device check (live picture and level, a missing camera
    and microphone, the time limit)."""

    def pin(window: KioskWindow) -> None:
        panel = window.staff_panel
        panel.open_pin(Translator(window.t.language))
        for key in "246":
            panel.keypad.press(key)

    def locked(window: KioskWindow) -> None:
        pin(window)
        window.staff_panel.show_attempt(Attempt(Verdict.LOCKED, seconds=300))

    report = StaffReport(
        software_version="1.4.0",
        central_reachable=True,
        pin_configured=True,
        devices={"camera": "ok", "microphone": "ok", "speaker": "ok"},
        notices=(),
        out_of_service=(),
        crashes=0,
        preflight=(),
    )

    def opened(window: KioskWindow) -> None:
        pin(window)
        panel = window.staff_panel
        panel.show_attempt(Attempt(Verdict.OPENED))
        panel.show_report(report, window.snapshot)

    def walk_in(window: KioskWindow) -> None:
        opened(window)
        panel = window.staff_panel
        panel.walk_in.click()
        for key in "4829":
            panel.keypad.press(key)

    def walk_in_refused(window: KioskWindow) -> None:
        opened(window)
        window.staff_panel.show_walk_in("walk_in_code_expired")

    def devices(
        live: LiveCheck, frame: bool, level: float | None, ended: str | None = None, scanner: str = "ok"
    ) -> Callable[[KioskWindow], None]:
        def touch(window: KioskWindow) -> None:
            opened(window)
            panel = window.staff_panel
            panel.check.click()
            panel.show_live_check(live)
            health = {"camera": "ok", "microphone": "ok", "speaker": "ok"}
            panel.show_device_check(
                StaffDeviceCheck(health, scanner, _preview() if scanner == "ok" else None)
            )
            if live.refused is None:
                panel.show_check_frame(_face() if frame else None)
                panel.show_check_level(level)
            if ended is not None:
                panel.live_check_ended(ended)

        return touch

    working = LiveCheck({"camera": "ok", "microphone": "ok"})
    yield "staff_pin", idle, pin
    yield "staff_locked", idle, locked
    yield "staff_panel", idle, opened
    yield "staff_walk_in", idle, walk_in
    yield "staff_walk_in_refused", idle, walk_in_refused
    yield "staff_devices", idle, devices(working, True, 0.05)
    yield "staff_devices_loud", idle, devices(working, True, 0.7)
    missing = LiveCheck({"camera": "missing", "microphone": "missing"})
    yield "staff_devices_missing", idle, devices(missing, False, None, scanner="missing")
    yield "staff_devices_time_limit", idle, devices(working, True, 0.05, "time_limit", "blank_page")
    yield "staff_devices_in_use", idle, devices(LiveCheck({}, "in_use"), False, None, scanner="in_use")


# --------------------------------------------------------------------------- the measures


def _inside_scroll_area(widget: QWidget) -> bool:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            return True
        parent = parent.parentWidget()
    return False


def _scroll_viewport(widget: QWidget, window: QWidget) -> QRect | None:
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            viewport = parent.viewport()
            return QRect(viewport.mapTo(window, QPoint(0, 0)), viewport.size())
        parent = parent.parentWidget()
    return None


def _text_of(widget: QWidget) -> str:
    if isinstance(widget, QAbstractButton | QLabel):
        return str(widget.text())
    return ""


def _clipped(widget: QWidget) -> bool:
    text = _text_of(widget)
    if not text:
        return False
    metrics = QFontMetrics(widget.font())
    room = widget.contentsRect()
    if isinstance(widget, QAbstractButton):
        return max(metrics.horizontalAdvance(line) for line in text.splitlines()) > room.width() - 16
    assert isinstance(widget, QLabel)
    if widget.wordWrap():  # a line cut off is at least half a line missing
        return widget.heightForWidth(widget.width()) > widget.height() + metrics.lineSpacing() // 2
    return metrics.horizontalAdvance(text) > room.width() + 1


def _luminance(colour: np.ndarray[Any, np.dtype[np.float64]]) -> float:
    channel = colour / 255.0
    linear = np.where(channel <= 0.03928, channel / 12.92, ((channel + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2])


def text_contrast(image: np.ndarray[Any, np.dtype[np.uint8]]) -> float | None:
    """WCAG contrast between a text widget's background (its commonest colour) and its text (the
    colour furthest from it among the pixels that make up at least 1 % of the rest)."""
    pixels = image.reshape(-1, image.shape[-1])[:, :3].astype(np.uint32)
    # One integer per colour: np.unique over rows (axis=0) took two thirds of the audit's time.
    packed, counts = np.unique(pixels[:, 0] << 16 | pixels[:, 1] << 8 | pixels[:, 2], return_counts=True)
    colours = np.stack([packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF], axis=1)
    if len(colours) < 2:
        return None
    background = colours[np.argmax(counts)].astype(np.float64)
    others = counts.sum() - counts.max()
    candidates = [c.astype(np.float64) for c, n in zip(colours, counts, strict=True) if n >= 0.01 * others]
    candidates = [c for c in candidates if not np.array_equal(c, background)]
    if not candidates:
        return None
    bg = _luminance(background)
    best = max(candidates, key=lambda c: abs(_luminance(c) - bg))
    lighter, darker = sorted((bg, _luminance(best)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _qimage_to_array(image: QImage) -> np.ndarray[Any, np.dtype[np.uint8]]:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


OPPOSITES = (
    ("consent_refuse", "consent_accept"),
    ("confirm_no", "confirm_yes"),
    ("zoom_out", "zoom_in"),
    ("volume_down", "volume_up"),
)


def measure(window: KioskWindow, where: str, screen: tuple[int, int], findings: Findings) -> QImage:
    findings.screens += 1
    picture = window.grab().toImage()
    pixels = _qimage_to_array(picture)
    if window.width() > screen[0] or window.height() > screen[1]:
        findings.larger_than_screen.append(f"{where}: {window.width()}x{window.height()}")
    bounds = QRect(0, 0, min(window.width(), screen[0]), min(window.height(), screen[1]))
    remote = window.call.remote
    if remote.isVisible():  # the clerk, as large as the 4:3 picture drawn in the room it has
        findings.clerk_video.append((min(remote.height(), remote.width() * 3 // 4), where))
    # The staff panel covers the whole window: then only what is on it is on the screen.
    panel = window.staff_panel
    widgets = panel.findChildren(QWidget) if panel.isVisible() else window.findChildren(QWidget)
    for widget in widgets:
        if not widget.isVisible() or not isinstance(widget, QAbstractButton | QLabel):
            continue
        text = _text_of(widget)
        if not text and not isinstance(widget, QAbstractButton):
            continue  # a picture (a page preview, a video frame)
        name = f"{where}/{widget.objectName() or type(widget).__name__}"
        top_left = widget.mapTo(window, QPoint(0, 0))
        rect = QRect(top_left, widget.size())
        if not _inside_scroll_area(widget) and not bounds.contains(rect):
            findings.offscreen.append(name)
        if _clipped(widget):
            findings.clipped.append(f"{name}: {text[:30]!r}")
        if isinstance(widget, QAbstractButton):
            findings.targets.append((widget.height(), name))
        if text:
            findings.text_px.append((QFontInfo(widget.font()).pixelSize(), name))
            visible = rect.intersected(QRect(0, 0, pixels.shape[1], pixels.shape[0]))
            viewport = _scroll_viewport(widget, window)
            if viewport is not None:  # only what shows through a scrolling area is on the screen
                visible = visible.intersected(viewport)
            if visible.width() > 4 and visible.height() > 4:
                crop = pixels[visible.top() : visible.bottom() + 1, visible.left() : visible.right() + 1]
                contrast = text_contrast(crop)
                if contrast is not None:
                    findings.contrasts.append((contrast, name))
    for left_name, right_name in OPPOSITES:
        left, right = getattr(window.call, left_name), getattr(window.call, right_name)
        if left.isVisible() and right.isVisible():
            first = QRect(left.mapTo(window, QPoint(0, 0)), left.size())
            second = QRect(right.mapTo(window, QPoint(0, 0)), right.size())
            # Side by side or one above the other: the distance between their nearest edges.
            horizontal = max(second.left() - first.right(), first.left() - second.right())
            vertical = max(second.top() - first.bottom(), first.top() - second.bottom())
            findings.gaps.append((max(horizontal, vertical) - 1, f"{where}/{left_name}|{right_name}"))
    return picture


def contact_sheet(pictures: list[tuple[str, QImage]], path: Path) -> None:
    columns = 6
    cells = [
        (name, image.scaledToWidth(THUMB_WIDTH, Qt.TransformationMode.SmoothTransformation))
        for name, image in pictures
    ]
    rows = [cells[i : i + columns] for i in range(0, len(cells), columns)]
    heights = [max(image.height() for _, image in row) + 24 for row in rows]
    sheet = QImage(columns * (THUMB_WIDTH + 8), max(sum(heights), 1), QImage.Format.Format_RGB32)
    sheet.fill(QColor("white"))
    painter = QPainter(sheet)
    y = 0
    for row, height in zip(rows, heights, strict=True):
        for column, (name, image) in enumerate(row):
            x = column * (THUMB_WIDTH + 8)
            painter.drawText(x + 2, y + 16, name)
            painter.drawImage(x, y + 20, image)
        y += height
    painter.end()
    sheet.save(str(path))


def audit_screens(
    out: Path,
    sizes: list[tuple[int, int]] | None = None,
    languages: tuple[str, ...] = LANGUAGES,
    only: set[str] | None = None,
) -> dict[str, Any]:
    """Renders every state at every size and language into `out`, returns the figures."""
    sizes = sizes or list(SIZES)
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    out.mkdir(parents=True, exist_ok=True)
    findings = Findings()
    pictures: list[tuple[str, QImage]] = []
    loop = LoopThread("audit")
    engine = KioskEngine(
        FakeCentral(), FakeCallFactory(), MemoryCache(), CentralClock(SystemClock()), lambda e: None
    )
    now = datetime.now(UTC)
    for language in languages:
        for width, height in sizes:
            for name, snapshot, touch in states(now):
                if only is not None and name not in only:
                    continue
                # A fresh window per state, as the state a citizen finds must not depend on the last one.
                # Read-aloud on (Qt's silent engine, offering its buttons in both languages) and cues
                # off: the screens of a kiosk whose voices and speakers work.
                window = KioskWindow(
                    EngineBridge(loop),
                    engine,
                    language,
                    accessibility=AccessibilitySettings(speech_engine="mock", sound_cues=False),
                    speech=ReadAloud("mock", need_voice=False),
                )
                window.resize(width, height)
                window.show()
                app.processEvents()
                window.show_state(snapshot)
                touch(window)
                for _ in range(3):
                    app.processEvents()
                window.resize(width, height)  # a full-screen window on that screen is this size
                app.processEvents()
                where = f"{language}/{width}x{height}/{name}"
                picture = measure(window, where, (width, height), findings)
                file = out / f"{language}-{width}x{height}-{name}.png"
                picture.save(str(file))
                pictures.append((where, picture))
                window.close()
                window.deleteLater()
                app.processEvents()
    contact_sheet(pictures, out / "contact-sheet.png")
    result = findings.summary(sizes)
    result["out"] = str(out)
    return result
