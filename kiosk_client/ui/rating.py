"""The one-touch rating on the ended screen: five large faces, from very bad to very good, each with its
word, and « Passer ». The engine times the question out by itself (core/session.py), so an absent
citizen never holds up the next one; this widget only shows it and says which face was touched."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QToolButton, QWidget

from ..core.session import FACES
from .i18n import Translator
from .theme import BLUE

FACE_GAP = 24  # px between two faces: a shaky finger never touches the neighbour
FACE_ICON = 72  # px
FACE_ICON_LARGE = 120  # px, on screens of LARGE_FROM px and more
FACE_WIDTH_LARGE = 200  # px
LARGE_FROM = 900  # px of height for the ended screen
ROW_MIN_WIDTH = 192  # px: the stylesheet's 170 px, its padding and its border
ROW_PADDING = 22  # px
COLUMN_WIDTH = 460  # px, each face on a line of its own
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
        row = QHBoxLayout(self)  # the faces in the middle, however wide the screen
        row.setContentsMargins(0, 0, 0, 0)
        self.grid = QGridLayout()
        row.addStretch(1)
        row.addLayout(self.grid)
        row.addStretch(1)
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
        self._row_width = 0  # a face's least width in a row (larger on large screens)
        self._arrange(len(FACES))

    def fit(self, screen_height: int) -> None:
        """Larger faces where the screen has the room (1080 px and more: 1080p, a portrait totem)."""
        large = screen_height >= LARGE_FROM
        icon = FACE_ICON_LARGE if large else FACE_ICON
        for face, button in self.buttons.items():
            if button.iconSize().width() != icon:
                button.setIcon(face_icon(face, icon))
                button.setIconSize(QSize(icon, icon))
        self._row_width = FACE_WIDTH_LARGE if large else 0
        if self._columns > 1:
            for button in self.buttons.values():
                button.setMinimumWidth(self._row_width)
        self.updateGeometry()

    def _arrange(self, columns: int) -> None:
        """In a row, or on a narrow screen (a portrait totem) in a column, from very bad at the top
        to very good at the bottom, each word beside its face: the scale reads the same either way."""
        if columns == self._columns:
            return
        self._columns = columns
        style = (
            Qt.ToolButtonStyle.ToolButtonTextUnderIcon
            if columns > 1
            else Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        )
        for button in self.buttons.values():
            self.grid.removeWidget(button)
            button.setToolButtonStyle(style)
            button.setMinimumWidth(COLUMN_WIDTH if columns == 1 else self._row_width)
        for i, face in enumerate(FACES):
            self.grid.addWidget(self.buttons[face], i // columns, i % columns)
        self.updateGeometry()

    def one_row_width(self) -> int:
        """The width of the faces in a row (measured as they would be in one)."""
        widths = []
        for b in self.buttons.values():
            text = b.fontMetrics().horizontalAdvance(b.text())
            content = max(b.iconSize().width(), text) + ROW_PADDING
            widths.append(max(content, self._row_width, ROW_MIN_WIDTH))
        return sum(widths) + FACE_GAP * (len(FACES) - 1)

    def _columns_for(self, width: int) -> int:
        return len(FACES) if self.one_row_width() <= width else 1

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange(self._columns_for(event.size().width()))

    def minimumSizeHint(self) -> QSize:
        # A column fits where a row does not: never wider than that.
        hints = [b.sizeHint() for b in self.buttons.values()]
        rows = len(FACES) if self._columns == 1 else 1
        height = max(h.height() for h in hints) * rows + FACE_GAP * (rows - 1)
        return QSize(COLUMN_WIDTH, height)

    def sizeHint(self) -> QSize:
        return QSize(self.one_row_width(), self.minimumSizeHint().height())

    def show_words(self, t: Translator) -> None:
        for face, button in self.buttons.items():
            button.setText(t(f"rating.face.{face}"))
        self._arrange(self._columns_for(self.width()))


def faces_to_read(t: Translator) -> str:
    """What « Écouter » says after the question: the choices, in order."""
    return t("rating.read_choices", faces=", ".join(t(f"rating.face.{face}") for face in FACES))
