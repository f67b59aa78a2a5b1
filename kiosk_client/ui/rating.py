"""The one-touch rating on the ended screen: five large faces, from very bad to very good, each with its
word, and « Passer ». The engine times the question out by itself (core/session.py), so an absent
citizen never holds up the next one; this widget only shows it and says which face was touched."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QToolButton, QWidget

from ..core.session import FACES
from .i18n import Translator
from .theme import BLUE

FACE_GAP = 24  # px between two faces: a shaky finger never touches the neighbour
FACE_ICON = 88  # px
# How the mouth curves, from a frown to a broad smile.
MOUTHS = {1: -1.0, 2: -0.5, 3: 0.0, 4: 0.5, 5: 1.0}


def face_icon(face: int, size: int = FACE_ICON, colour: str = BLUE) -> QIcon:
    """A face drawn with lines (no emoji font on the kiosk): a circle, two eyes and a mouth."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 100
    pen = QPen(QColor(colour), 6 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    painter.setBrush(QColor("white"))
    painter.drawEllipse(QRectF(5 * s, 5 * s, 90 * s, 90 * s))
    painter.setBrush(QColor(colour))
    for x in (35, 65):
        painter.drawEllipse(QPointF(x * s, 38 * s), 5 * s, 6 * s)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    curve = MOUTHS[face]
    mouth = QPainterPath(QPointF(28 * s, (68 - 6 * curve) * s))
    mouth.quadTo(QPointF(50 * s, (68 + 22 * curve) * s), QPointF(72 * s, (68 - 6 * curve) * s))
    painter.drawPath(mouth)
    painter.end()
    return QIcon(pixmap)


class RatingFaces(QWidget):
    """The five faces in a row, or in two rows (three and two) when a row does not fit the width."""

    answered = Signal(object)  # the face touched, 1 (very bad) … 5 (very good)

    def __init__(self) -> None:
        super().__init__()
        self.buttons: dict[int, QToolButton] = {}
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(FACE_GAP)
        self.grid.setVerticalSpacing(FACE_GAP)
        for face in FACES:
            button = QToolButton()
            button.setObjectName("ratingFace")
            button.setProperty("face", face)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIcon(face_icon(face))
            button.setIconSize(QSize(FACE_ICON, FACE_ICON))
            button.clicked.connect(lambda _=False, f=face: self.answered.emit(f))
            self.buttons[face] = button
        self._columns = 0
        self._arrange(len(FACES))

    def _arrange(self, columns: int) -> None:
        if columns == self._columns:
            return
        self._columns = columns
        for button in self.buttons.values():
            self.grid.removeWidget(button)
        for i, face in enumerate(FACES):
            self.grid.addWidget(self.buttons[face], i // columns, i % columns)

    def one_row_width(self) -> int:
        return sum(b.sizeHint().width() for b in self.buttons.values()) + FACE_GAP * (len(FACES) - 1)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange(len(FACES) if self.one_row_width() <= event.size().width() else 3)

    def minimumSizeHint(self) -> QSize:
        # Three columns fit where five do not: never wider than that.
        widest = max(b.sizeHint().width() for b in self.buttons.values())
        rows = 2 if self._columns == 3 else 1
        height = max(b.sizeHint().height() for b in self.buttons.values()) * rows + FACE_GAP * (rows - 1)
        return QSize(widest * 3 + FACE_GAP * 2, height)

    def show_words(self, t: Translator) -> None:
        for face, button in self.buttons.items():
            button.setText(t(f"rating.face.{face}"))
        self._arrange(len(FACES) if self.one_row_width() <= self.width() else 3)


def faces_to_read(t: Translator) -> str:
    """What « Écouter » says after the question: the choices, in order."""
    return t("rating.read_choices", faces=", ".join(t(f"rating.face.{face}") for face in FACES))
