"""The two widget makers every screen uses: named labels and touch-sized buttons."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton


def label(name: str, text: str = "", wrap: bool = True) -> QLabel:
    widget = QLabel(text)
    # Never rich text: labels show what the clerk and the central send (a document's label, a clerk's
    # name), and Qt would otherwise render any of it that looks like HTML.
    widget.setTextFormat(Qt.TextFormat.PlainText)
    widget.setObjectName(name)
    widget.setWordWrap(wrap)
    return widget


def button(name: str, style: str = "") -> QPushButton:
    widget = QPushButton()
    widget.setObjectName(style or name)
    widget.setProperty("role", name)
    widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return widget
