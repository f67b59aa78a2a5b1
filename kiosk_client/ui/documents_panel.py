"""The citizen's papers during the call: what to do, the scanned pages shown large, remove one,
send them to the clerk, and how the sending goes ("Document reçu par votre conseiller ✓").
Renders DocumentsState; every action is a signal the window hands to the engine."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..core.document_desk import DocumentsState, PagePreview
from ..core.document_transfer import Transfer, TransferStatus
from .i18n import Translator
from .widgets import ListenButton, button, label, spoken

THUMB_HEIGHT = 300


class PageTile(QFrame):
    remove = Signal(int)

    def __init__(self, page: PagePreview, t: Translator) -> None:
        super().__init__()
        self.setObjectName("pageTile")
        picture = QLabel()
        picture.setTextFormat(Qt.TextFormat.PlainText)
        picture.setObjectName("pagePicture")
        pixmap = QPixmap()
        pixmap.loadFromData(page.preview, "JPEG")
        picture.setPixmap(pixmap.scaledToHeight(THUMB_HEIGHT, Qt.TransformationMode.SmoothTransformation))
        number = label("pageNumber", t("documents.page", number=page.number))
        remove = button("removePageButton")
        remove.setText(t("documents.remove_page"))
        remove.clicked.connect(lambda: self.remove.emit(page.number))
        layout = QVBoxLayout(self)
        layout.addWidget(picture, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(number, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(remove)


class DocumentsPanel(QFrame):
    scan_requested = Signal(str)  # "flatbed", "feeder" or "camera"
    page_removed = Signal(int)
    clear_requested = Signal()
    send_requested = Signal()
    closed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("documentsPanel")
        self.heading = label("subtitle")
        self.instruction = label("hint")
        self.listen = ListenButton()
        self.status = label("documentsStatus")
        self.scan_flatbed = button("scanFlatbedButton", "primary")
        self.scan_feeder = button("scanFeederButton")
        self.scan_camera = button("scanCameraButton")
        self.clear = button("clearPagesButton")
        self.send = button("sendDocumentButton", "primary")
        self.close_button = button("closeDocumentsButton")
        self.pages_row = QHBoxLayout()
        self.pages_row.addStretch(1)
        strip = QWidget()
        strip.setLayout(self.pages_row)
        self.pages = QScrollArea()
        self.pages.setObjectName("pagesStrip")
        self.pages.setWidget(strip)
        self.pages.setWidgetResizable(True)
        self.pages.setMinimumHeight(THUMB_HEIGHT + 180)
        self.transfers = label("transfers")
        # Side by side when there is room, one under the other when not (a 5:4 kiosk, a portrait totem).
        scan_row = self.scan_row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        scan_row.addWidget(self.scan_flatbed)
        scan_row.addWidget(self.scan_feeder)
        scan_row.addWidget(self.scan_camera)
        # What the citizen does last stays in view whatever the screen: the screen that shows the
        # panel puts this footer under it, outside the part that scrolls.
        self.footer = QFrame()
        self.footer.setObjectName("documentsFooter")
        footer = QVBoxLayout(self.footer)
        footer.setContentsMargins(24, 8, 24, 8)
        footer.addWidget(self.transfers)
        send_row = self.send_row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        send_row.addWidget(self.clear)
        send_row.addStretch(1)
        send_row.addWidget(self.send)
        footer.addLayout(send_row)
        # Its width is what the screen leaves it (one button under the other when that is too little),
        # never what its buttons would like: larger text made it push the window past the screen.
        self.footer.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.footer.installEventFilter(self)
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addLayout(top)
        layout.addWidget(self.instruction)
        layout.addWidget(self.listen, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addLayout(scan_row)
        layout.addWidget(self.status)
        layout.addWidget(self.pages, 1)
        self.scan_flatbed.clicked.connect(lambda: self.scan_requested.emit("flatbed"))
        self.scan_feeder.clicked.connect(lambda: self.scan_requested.emit("feeder"))
        self.scan_camera.clicked.connect(lambda: self.scan_requested.emit("camera"))
        self.clear.clicked.connect(self.clear_requested.emit)
        self.send.clicked.connect(self.send_requested.emit)
        self.close_button.clicked.connect(self.closed.emit)
        self._shown_pages: tuple[PagePreview, ...] = ()
        self._language = ""

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._fit_scan_row(event.size().width())
        super().resizeEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.footer and event.type() == QEvent.Type.Resize:
            layout = self.footer.layout()
            margins = layout.contentsMargins() if layout is not None else None
            room = self.footer.width() - (margins.left() + margins.right() if margins else 0)
            needed = (
                self.clear.sizeHint().width() + self.send.sizeHint().width() + 3 * self.send_row.spacing()
            )
            direction = (
                QBoxLayout.Direction.LeftToRight if room >= needed else QBoxLayout.Direction.TopToBottom
            )
            if self.send_row.direction() != direction:
                self.send_row.setDirection(direction)
        return False

    def _fit_scan_row(self, width: int) -> None:
        buttons = [b for b in (self.scan_flatbed, self.scan_feeder, self.scan_camera) if not b.isHidden()]
        layout = self.layout()
        room = width - (layout.contentsMargins().left() + layout.contentsMargins().right() if layout else 0)
        needed = (
            sum(b.sizeHint().width() for b in buttons) + max(len(buttons) - 1, 0) * self.scan_row.spacing()
        )
        row, column = QBoxLayout.Direction.LeftToRight, QBoxLayout.Direction.TopToBottom
        direction = row if room >= needed else column
        if self.scan_row.direction() != direction:
            self.scan_row.setDirection(direction)

    def show_state(self, state: DocumentsState, t: Translator) -> None:
        scanning = state.scanner == "scanning"
        self.heading.setText(
            t("documents.requested", label=state.requested) if state.requested else t("documents.heading")
        )
        if scanning and state.scan_source == "camera":
            self.instruction.setText(t("documents.holding"))
        elif scanning:
            self.instruction.setText(t("documents.scanning"))
        elif state.pages:
            self.instruction.setText(t("documents.check_pages"))
        else:
            self.instruction.setText(t("documents.how_to"))
        self.status.setText(self._status_text(state, t))
        self.status.setVisible(bool(self.status.text()))
        self.scan_flatbed.setText(t("documents.scan_flatbed"))
        self.scan_feeder.setText(t("documents.scan_feeder"))
        self.scan_camera.setText(t("documents.scan_camera"))
        self.clear.setText(t("documents.clear"))
        self.send.setText(t("documents.send"))
        self.close_button.setText(t("documents.close"))
        self._fit_scan_row(self.width())  # the labels may have changed (another language)
        for widget in (self.scan_flatbed, self.scan_feeder, self.scan_camera):
            widget.setEnabled(not scanning)
        self.send.setEnabled(bool(state.pages) and not scanning)
        self.clear.setVisible(bool(state.pages))
        self.send.setVisible(bool(state.pages))
        self.pages.setVisible(bool(state.pages))
        if state.pages != self._shown_pages or t.language != self._language:
            self._show_pages(state.pages, t)
        self.transfers.setText("\n".join(self._transfer_line(x, t) for x in state.transfers))
        self.transfers.setVisible(bool(state.transfers))
        self.listen.setText(t("listen"))
        self.listen.text_to_read = spoken(
            self.heading.text(), self.instruction.text(), self.status.text(), self.transfers.text()
        )

    def _status_text(self, state: DocumentsState, t: Translator) -> str:
        parts = []
        if state.scan_error:
            parts.append(t(f"documents.error.{state.scan_error}"))
        if state.store_error:
            parts.append(t(f"documents.error.{state.store_error}"))
        if state.blank_pages_dropped:
            parts.append(t("documents.blank_dropped", count=state.blank_pages_dropped))
        return "\n".join(parts)

    @staticmethod
    def _transfer_line(transfer: Transfer, t: Translator) -> str:
        name = transfer.manifest.name.removesuffix(".pdf")
        if transfer.status is TransferStatus.SENDING:
            percent = int(100 * transfer.sent / max(transfer.manifest.size, 1))
            return t("documents.transfer.sending", name=name, percent=percent)
        return t(f"documents.transfer.{transfer.status.value}", name=name)

    def _show_pages(self, pages: tuple[PagePreview, ...], t: Translator) -> None:
        while self.pages_row.count() > 1:
            item = self.pages_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.setParent(None)  # gone from the screen now, not at the next event-loop turn
                widget.deleteLater()
        for page in pages:
            tile = PageTile(page, t)
            tile.remove.connect(self.page_removed.emit)
            self.pages_row.insertWidget(self.pages_row.count() - 1, tile)
        self._shown_pages = pages
        self._language = t.language

    def pages_shown(self) -> int:
        """How many scanned pages the panel shows (the reset check wants none)."""
        return len(self._shown_pages)

    def reset(self) -> None:
        """Nothing of one citizen's papers stays in the widgets."""
        self._show_pages((), Translator("fr"))
        self.transfers.clear()
        self.status.clear()
