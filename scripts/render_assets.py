"""Renders the placeholder cards in assets/ (run once; the PNGs are committed).

.venv/bin/python scripts/render_assets.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QApplication

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CARDS = {
    "camera-unavailable.png": ("Caméra indisponible", "Camera unavailable", "#000091"),
    "camera-off.png": ("Caméra coupée", "Camera turned off", "#3a3a3a"),
    "form-unavailable.png": ("Formulaire non affiché", "Form not shown", "#3a3a3a"),
}


def render(name: str, french: str, english: str, background: str) -> None:
    image = QImage(640, 480, QImage.Format.Format_RGB888)
    image.fill(QColor(background))
    painter = QPainter(image)
    painter.setPen(QColor("white"))
    font = QFont("DejaVu Sans")
    font.setPixelSize(44)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(QRect(0, 150, 640, 80), Qt.AlignmentFlag.AlignCenter, french)
    font.setPixelSize(30)
    font.setBold(False)
    painter.setFont(font)
    painter.drawText(QRect(0, 240, 640, 60), Qt.AlignmentFlag.AlignCenter, english)
    painter.end()
    image.save(str(ASSETS / name))


if __name__ == "__main__":
    app = QApplication(sys.argv)
    ASSETS.mkdir(exist_ok=True)
    for file_name, (fr, en, colour) in CARDS.items():
        render(file_name, fr, en, colour)
    print("rendered", ", ".join(CARDS))
