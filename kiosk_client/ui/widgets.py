"""The widget makers every screen uses: named labels, one-line headings and touch-sized buttons."""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFontMetrics, QIcon, QPainter, QPen, QPixmap, QPolygonF, QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QLabel, QPushButton, QScrollArea, QWidget

from .theme import BLUE


def label(name: str, text: str = "", wrap: bool = True) -> QLabel:
    widget = QLabel(text)
    # Never rich text: labels show what the clerk and the central send (a document's label, a clerk's
    # name), and Qt would otherwise render any of it that looks like HTML.
    widget.setTextFormat(Qt.TextFormat.PlainText)
    widget.setObjectName(name)
    widget.setWordWrap(wrap)
    return widget


class ElidedLabel(QLabel):
    """One line, cut with "…" when it does not fit: for a heading whose text comes from the central (a
    clerk's or a service's name can be very long) and must not push the rest of the screen away."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._full = ""

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._fit()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        margins = self.contentsMargins()
        room = max(self.width() - margins.left() - margins.right() - 2 * self.margin() - 24, 0)
        QLabel.setText(
            self, QFontMetrics(self.font()).elidedText(self._full, Qt.TextElideMode.ElideRight, room)
        )


def follow_orientation(arrangement: QBoxLayout, size: QSize) -> bool:
    """Side by side on a landscape screen, one above the other on a portrait totem. True when the
    arrangement has just turned (the caller may move what goes with it)."""
    portrait = size.height() > size.width()
    direction = QBoxLayout.Direction.TopToBottom if portrait else QBoxLayout.Direction.LeftToRight
    if arrangement.direction() == direction:
        return False
    arrangement.setDirection(direction)
    return True


def button(name: str, style: str = "") -> QPushButton:
    widget = QPushButton()
    widget.setObjectName(style or name)
    widget.setProperty("role", name)
    widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return widget


class WrappingScrollArea(QScrollArea):
    """Scrolls a column of wrapped text and buttons. Qt's scroll area gives its widget the height the
    widget asks for at some other width, so at a narrow width wrapped lines overlapped the buttons
    under them: here the widget is given the height its layout needs at the width it really has."""

    def __init__(self) -> None:
        super().__init__()
        self._refit = QTimer(self)  # owned: it dies with the area, never calling into a deleted one
        self._refit.setSingleShot(True)
        self._refit.setInterval(0)
        self._refit.timeout.connect(self._fit)

    def setWidget(self, widget: QWidget) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._refit.start()
        return False

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        widget = self.widget()
        if widget is None:
            return
        width = self.viewport().width()
        height = widget.heightForWidth(width) if widget.hasHeightForWidth() else -1
        height = max(height, widget.minimumSizeHint().height())
        if widget.minimumHeight() != height:
            widget.setMinimumHeight(height)


def speaker_icon(size: int = 40, colour: str = BLUE) -> QIcon:
    """A loudspeaker with two sound waves, drawn (no emoji font is needed on the kiosk)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 40
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(colour))
    painter.drawPolygon(
        QPolygonF(
            [
                QPointF(4 * s, 14 * s),
                QPointF(12 * s, 14 * s),
                QPointF(22 * s, 5 * s),
                QPointF(22 * s, 35 * s),
                QPointF(12 * s, 26 * s),
                QPointF(4 * s, 26 * s),
            ]
        )
    )
    painter.setPen(QPen(QColor(colour), 3 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    for radius in (7, 13):
        box = QRectF(20 * s - radius * s, 20 * s - radius * s, 2 * radius * s, 2 * radius * s)
        painter.drawArc(box, -45 * 16, 90 * 16)
    painter.end()
    return QIcon(pixmap)


class ListenButton(QPushButton):
    """« Écouter », right under the text it reads; `text_to_read` is set by the screen that shows it."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("listenButton")
        self.setProperty("role", "listenButton")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setIcon(speaker_icon())
        self.setIconSize(QSize(40, 40))
        self.text_to_read = ""


def spoken(*parts: str) -> str:
    """Texts shown on several labels as one text to read: each ends a sentence, symbols that a voice
    would spell out (✓, —) are left out."""
    sentences = []
    for part in parts:
        part = re.sub(r"\s*[✓—•]\s*", " ", part).strip()
        if part:
            sentences.append(part if part[-1] in ".?!…:" else part + ".")
    return " ".join(sentences)
