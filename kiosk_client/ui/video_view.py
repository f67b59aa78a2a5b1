"""A widget that draws the latest frame, scaled to fit with its aspect ratio kept."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..core.models import RgbImage


def to_qimage(image: RgbImage) -> QImage:
    # QImage does not own the buffer: copy so the bytes may go.
    return QImage(image.data, image.width, image.height, image.width * 3, QImage.Format.Format_RGB888).copy()


class VideoView(QWidget):
    def __init__(self, caption: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self.caption = caption
        self.frames_shown = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def show_image(self, image: QImage) -> None:
        self._image = image
        self.frames_shown += 1
        self.update()

    def clear(self) -> None:
        self._image = None
        self.frames_shown = 0
        self.update()

    def has_image(self) -> bool:
        return self._image is not None

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#101010"))
        if self._image is not None and not self._image.isNull():
            scaled = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(self.rect().center())
            painter.drawImage(target, self._image)
        if self.caption:
            painter.setPen(QColor("white"))
            font = QFont(self.font())
            font.setPixelSize(22)
            painter.setFont(font)
            painter.drawText(
                self.rect().adjusted(10, 6, -10, -6),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                self.caption,
            )
        painter.end()
