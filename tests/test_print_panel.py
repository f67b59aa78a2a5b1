"""The document the clerk sent, on the kiosk's screen: its pages large, « Imprimer » big, « Fermer »,
the printing's progress and its failures in plain French (English on request), nothing left once
it is closed. Pages drawn by the real renderer (poppler, out of process) from a real PDF."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.qtbot import QtBot

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, MemoryCache
from kiosk_client.adapters.pdf_poppler import PopplerRenderer
from kiosk_client.core import print_protocol as pp
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.printing import PrintDocument, PrintState, PrintStatus
from kiosk_client.core.session import Phase, Session
from kiosk_client.core.settings import AccessibilitySettings
from kiosk_client.runtime import LoopThread
from kiosk_client.ui.bridge import EngineBridge
from kiosk_client.ui.i18n import CATALOGUE, Translator
from kiosk_client.ui.main_window import KioskWindow
from kiosk_client.ui.print_panel import MAX_PAGE_WIDTH, PAGE_MARGIN, PrintPanel

from .print_rig import LETTER, make_pdf, require_tools
from .test_kiosk_screens import APPOINTMENT, snapshot

# Where the screenshots go (the lead looks at them): KIOSK_SCREENSHOTS, or the test's own folder.
SCREENSHOTS = os.environ.get("KIOSK_SCREENSHOTS")
FR = Translator("fr")


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, ...]:
    require_tools()
    renderer = PopplerRenderer(tmp_path_factory.mktemp("render"))
    return asyncio.run(renderer.render(make_pdf(LETTER), 20))


@pytest.fixture
def window(qtbot: QtBot) -> Iterator[KioskWindow]:
    loop = LoopThread()  # never started: a touch's command waits, none runs
    engine = KioskEngine(
        FakeCentral(), FakeCallFactory(), MemoryCache(), CentralClock(SystemClock()), lambda e: None
    )
    quiet = AccessibilitySettings(speech_engine="none", sound_cues=False)
    w = KioskWindow(EngineBridge(loop), engine, "fr", accessibility=quiet)
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    yield w
    loop.stop()


def in_call(state: PrintState | None, **changes: object) -> object:
    return snapshot(Session(Phase.IN_CALL, APPOINTMENT), media_flowing=True, printing=state, **changes)


def shown(pages: tuple[bytes, ...], **changes: object) -> PrintState:
    doc = PrintDocument("a" * 32, "Attestation CAF.pdf", pages)
    return PrintState(replace(doc, **changes))


def inside_window(window: KioskWindow, widget: object) -> bool:
    top_left = widget.mapTo(window, QPoint(0, 0))  # type: ignore[attr-defined]
    bottom = top_left.y() + widget.height()  # type: ignore[attr-defined]
    right = top_left.x() + widget.width()  # type: ignore[attr-defined]
    return top_left.x() >= 0 and top_left.y() >= 0 and right <= window.width() and bottom <= window.height()


def test_the_document_is_shown_large_and_printed_with_one_touch(
    window: KioskWindow, qtbot: QtBot, pages: tuple[bytes, ...], tmp_path: Path
) -> None:
    panel = window.call.print_panel
    window.show_state(in_call(PrintState()))  # nothing sent yet: nothing shown
    assert panel.isHidden()
    window.show_state(in_call(PrintState(incoming=True)))
    assert panel.isHidden()  # half a document is never shown

    window.show_state(in_call(shown(pages)))
    qtbot.waitUntil(lambda: panel.isVisible(), timeout=2000)
    assert window.call.form_area.isHidden() and window.call.documents_area.isHidden()
    assert panel.heading.text() == "Mme Martin vous envoie un document"
    assert (
        panel.name.text()
        == FR("print.name", name="Attestation CAF", pages=2)
        == "«\u00a0Attestation CAF\u00a0» — 2 page(s)"
    )
    assert panel.print_button.text() == "Imprimer" and panel.print_button.isEnabled()
    assert panel.close_button.text() == "Fermer"
    assert panel.pages_shown() == 2
    first_page = panel._pictures[0][0]
    assert first_page.pixmap().width() >= 560  # large: most of the panel’s width
    assert inside_window(window, panel.print_button) and inside_window(window, panel.close_button)
    assert panel.print_button.height() >= 90  # the one touch that matters is the biggest button
    with qtbot.waitSignal(panel.print_requested, timeout=1000):
        qtbot.mouseClick(panel.print_button, Qt.MouseButton.LeftButton)
    screenshots(window, qtbot, tmp_path, "shown")

    window.show_state(in_call(shown(pages, status=PrintStatus.PRINTING)))
    assert not panel.print_button.isEnabled()
    assert panel.status.text() == FR("print.printing") == "Impression en cours… Restez près de l’imprimante."
    window.show_state(in_call(shown(pages, status=PrintStatus.PRINTED, printed=1)))
    assert panel.status.text().startswith("C’est imprimé ✓")
    assert panel.print_button.text() == "Imprimer encore une fois" and panel.print_button.isEnabled()
    failed = shown(pages, status=PrintStatus.FAILED, error="out_of_paper")
    window.show_state(in_call(failed))
    assert panel.status.text() == FR("print.error.out_of_paper")
    assert panel.status.text().startswith("Il n’y a plus de papier dans l’imprimante.")
    assert panel.status.property("problem") is True
    screenshots(window, qtbot, tmp_path, "out-of-paper")

    window.t = window.t.__class__("en")
    window.show_state(in_call(failed))
    assert panel.heading.text() == "Mme Martin sends you a document"
    assert panel.status.text() == "The printer is out of paper. Please ask the desk."
    assert panel.print_button.text() == "Print"

    # The clerk's question about the form comes first; the document is back after it.
    window.show_state(in_call(shown(pages), control="requested"))
    assert panel.isHidden()
    window.show_state(in_call(shown(pages)))
    assert panel.isVisible()
    # Closed (or the session's end): nothing of it stays in the widgets.
    window.show_state(in_call(PrintState()))
    assert panel.isHidden() and panel.pages_shown() == 0 and window.papers_shown() == []


def test_without_a_printer_the_document_is_shown_and_the_citizen_told(
    window: KioskWindow, pages: tuple[bytes, ...]
) -> None:
    window.show_state(in_call(replace(shown(pages), can_print=False)))
    panel = window.call.print_panel
    assert panel.isVisible() and panel.print_button.isHidden()
    assert panel.status.text() == FR("print.hint_no_printer") and "pas d’imprimante" in panel.status.text()
    assert window.papers_shown() == ["page 1 to print", "page 2 to print"]  # the reset check sees them


def page_fitted(panel: PrintPanel) -> bool:
    fitted = min(panel.pages.viewport().width() - PAGE_MARGIN, MAX_PAGE_WIDTH)
    return bool(panel._pictures[0][0].pixmap().width() == fitted)


def screenshots(window: KioskWindow, qtbot: QtBot, tmp_path: Path, name: str) -> None:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in ((1366, 768), (1920, 1080)):
        window.resize(width, height)
        qtbot.waitUntil(lambda w=width: window.width() == w, timeout=2000)
        panel = window.call.print_panel
        qtbot.waitUntil(lambda p=panel: page_fitted(p), timeout=2000)
        level = window.call.volume.level  # rearranged (two rows) on the next layout pass
        qtbot.waitUntil(lambda v=level: v.width() >= v.sizeHint().width(), timeout=2000)
        assert inside_window(window, panel.print_button), (width, height)
        assert window.grab().save(str(folder / f"print-{name}-{width}x{height}.png"))
    window.resize(1366, 768)


def test_every_printer_failure_has_words_in_both_languages() -> None:
    for language in ("fr", "en"):
        for code in pp.PRINT_FAILURES:
            assert f"print.error.{code}" in CATALOGUE[language], (language, code)
