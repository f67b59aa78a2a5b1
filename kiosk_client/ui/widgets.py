"""The widget makers every screen uses: named labels, one-line headings and touch-sized buttons."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QLabel, QPushButton


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
