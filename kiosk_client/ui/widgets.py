"""The widget makers every screen uses: named labels, one-line headings and touch-sized buttons."""

from __future__ import annotations

import re

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QIcon, QPainter, QPen, QPixmap, QPolygonF, QResizeEvent
from PySide6.QtWidgets import QLabel, QPushButton

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


def button(name: str, style: str = "") -> QPushButton:
    widget = QPushButton()
    widget.setObjectName(style or name)
    widget.setProperty("role", name)
    widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return widget


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
