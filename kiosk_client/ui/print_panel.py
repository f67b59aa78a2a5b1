"""The document the clerk sent: its pages shown large, one under the other, « Imprimer » (one touch)
and « Fermer », and how the printing goes in plain words. Renders PrintState; every action is a
signal the window hands to the engine. Nothing is kept once it is closed or the session ends."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QLabel,
    QScroller,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..core.printing import PrintDocument, PrintState, PrintStatus
from .i18n import CATALOGUE, Translator
from .widgets import ListenButton, WrappingScrollArea, button, label, spoken

MAX_PAGE_WIDTH = 1000  # beyond this a page is only larger, not easier to read
PAGE_MARGIN = 48


class PrintPanel(QFrame):
    print_requested = Signal()
    closed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("printPanel")
        self.heading = label("subtitle")
        self.name = label("hint")
        self.listen = ListenButton()
        self.status = label("printStatus")
        self.print_button = button("printButton", "primary")
        self.close_button = button("closePrintButton")
        # The heading and the pages scroll together; what the citizen does (the printing's words,
        # « Imprimer », « Fermer ») stays in view under them whatever the screen and the text size.
        self.pages_column = QVBoxLayout()
        self.pages_column.setSpacing(24)
        column = QWidget()
        column.setObjectName("printPages")
        content = QVBoxLayout(column)
        content.setContentsMargins(0, 0, 0, 0)
        content.addWidget(self.heading)
        content.addWidget(self.name)
        content.addWidget(self.listen, 0, Qt.AlignmentFlag.AlignLeft)
        content.addSpacing(12)
        content.addLayout(self.pages_column)
        content.addStretch(1)
        self.pages = WrappingScrollArea()
        self.pages.setObjectName("printPagesScroll")
        self.pages.setWidget(column)
        self.pages.setWidgetResizable(True)
        self.pages.setFrameShape(QFrame.Shape.NoFrame)
        self.pages.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.pages.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.pages.viewport().installEventFilter(self)
        # A finger drags the pages up and down (a kiosk's touch screen has no wheel).
        QScroller.grabGesture(self.pages.viewport(), QScroller.ScrollerGestureType.TouchGesture)
        # « Fermer » first, then « Imprimer », far apart: what the citizen came for is the big one.
        actions = self.actions_row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        actions.addWidget(self.close_button)
        actions.addStretch(1)
        actions.addWidget(self.print_button, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.status)
        layout.addLayout(actions)
        self.print_button.clicked.connect(self.print_requested.emit)
        self.close_button.clicked.connect(self.closed.emit)
        self._shown: tuple[str, int] | None = None  # (document id, pages) now drawn
        self._pictures: list[tuple[QLabel, QPixmap]] = []
        self._language = ""

    def show_state(self, state: PrintState, t: Translator) -> None:
        doc = state.on_screen
        if doc is None:
            self.reset()
            return
        if self._shown != (doc.id, len(doc.pages)) or t.language != self._language:
            self._show_pages(doc, t)
        self.heading.setText(t("print.heading"))
        self.name.setText(t("print.name", name=doc.name.removesuffix(".pdf"), pages=len(doc.pages)))
        self.status.setText(self._status_text(doc, state.can_print, t))
        self.status.setProperty("problem", doc.status is PrintStatus.FAILED)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        printing = doc.status is PrintStatus.PRINTING
        self.print_button.setVisible(state.can_print)
        self.print_button.setEnabled(not printing)
        self.print_button.setText(t("print.print_again" if doc.printed else "print.print"))
        self.close_button.setText(t("print.close"))
        self.listen.setText(t("listen"))
        self.listen.text_to_read = spoken(self.heading.text(), self.name.text(), self.status.text())

    @staticmethod
    def _status_text(doc: PrintDocument, can_print: bool, t: Translator) -> str:
        if doc.status is PrintStatus.PRINTING:
            return t("print.printing")
        if doc.status is PrintStatus.PRINTED:
            return t("print.printed")
        if doc.status is PrintStatus.FAILED:
            key = f"print.error.{doc.error}"
            return t(key if key in CATALOGUE["fr"] else "print.error.job_failed")  # never a crash
        return t("print.hint") if can_print else t("print.hint_no_printer")

    def _show_pages(self, doc: PrintDocument, t: Translator) -> None:
        self._clear_pages()
        for number, png in enumerate(doc.pages, start=1):
            pixmap = QPixmap()
            pixmap.loadFromData(png)  # PNG from the renderer
            picture = QLabel()
            picture.setObjectName("printPage")
            picture.setTextFormat(Qt.TextFormat.PlainText)
            caption = label("pageNumber", t("print.page", number=number, pages=len(doc.pages)))
            self.pages_column.addWidget(picture, 0, Qt.AlignmentFlag.AlignHCenter)
            self.pages_column.addWidget(caption, 0, Qt.AlignmentFlag.AlignHCenter)
            self._pictures.append((picture, pixmap))
        self._shown = (doc.id, len(doc.pages))
        self._language = t.language
        self._fit_pages()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The pages' room is the viewport's: it narrows when the scroll bar comes, not the panel.
        if watched is self.pages.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_pages()
        return False

    def _fit_pages(self) -> None:
        width = min(self.pages.viewport().width() - PAGE_MARGIN, MAX_PAGE_WIDTH)
        if width <= 0:
            return
        for picture, pixmap in self._pictures:
            if not pixmap.isNull() and picture.pixmap().width() != width:
                picture.setPixmap(pixmap.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation))

    def _clear_pages(self) -> None:
        while self.pages_column.count():
            item = self.pages_column.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.setParent(None)  # gone from the screen now, not at the next event-loop turn
                widget.deleteLater()
        self._pictures.clear()
        self._shown = None

    def pages_shown(self) -> int:
        """How many pages of the clerk's document the panel holds (the reset check wants none)."""
        return len(self._pictures)

    def reset(self) -> None:
        """Nothing of the document stays in the widgets."""
        self._clear_pages()
        self.name.clear()
        self.status.clear()
        self.listen.text_to_read = ""
