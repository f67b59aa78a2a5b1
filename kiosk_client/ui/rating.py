"""The one-touch rating on the ended screen: five large faces, from very bad to very good, each with its
word, and « Passer ». The engine times the question out by itself (core/session.py), so an absent
citizen never holds up the next one; this widget only shows it and says which face was touched."""

from __future__ import annotations

import segno
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QToolButton, QWidget

from ..core.session import FACES
from .i18n import Translator
from .theme import BLUE

FACE_GAP = 24  # px between two faces: a shaky finger never touches the neighbour
FACE_ICON = 72  # px
FACE_ICON_LARGE = 120  # px, on screens of LARGE_FROM px and more
LARGE_FROM = 900  # px of height for the ended screen
FACE_ICON_SMALL = 48  # px, below SMALL_BELOW (a window smaller than 1280x720)
SMALL_BELOW = 560  # px of height for the ended screen
FACE_WIDTH = 170  # px, a face's least width in a row (its padding and border apart)
FACE_WIDTH_LARGE = 200  # px, the same on a large screen
TIGHT_WIDTH = 140  # px, on a landscape screen below 1280x720 (the stylesheet's least)
COLUMN_WIDTH = 440  # px, each face on a line of its own (portrait)
FACE_BOX = 22  # px of padding and border around a face's content
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
    """The five faces in a row; on a landscape screen too narrow for it (below 1280x720) a tighter
    row; on a portrait totem a column, from very bad at the top to very good at the bottom, each
    word beside its face: the scale reads the same either way."""

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
            button.setIcon(face_icon(face))
            button.setIconSize(QSize(FACE_ICON, FACE_ICON))
            button.clicked.connect(lambda _=False, f=face: self.answered.emit(f))
            self.buttons[face] = button
        self._large = False
        self._arrangement: tuple[int, int] = (0, 0)  # (columns, a face's least width)
        self._arrange(len(FACES), FACE_WIDTH)

    def fit(self, screen_height: int) -> None:
        """Larger faces where the screen has the room (the ended screen 900 px high and more), smaller
        where it has not (below 1280x720)."""
        large = screen_height >= LARGE_FROM
        icon = FACE_ICON_LARGE if large else FACE_ICON_SMALL if screen_height < SMALL_BELOW else FACE_ICON
        if icon == self.buttons[FACES[0]].iconSize().width():
            return
        self._large = large
        for face, button in self.buttons.items():
            button.setIcon(face_icon(face, icon))
            button.setIconSize(QSize(icon, icon))
        self._arrange(*self._arrangement_for(self.width()))

    def _row_width(self, least: int) -> int:
        """The faces' width in a row, each at least `least` px wide (content; padding and border apart)."""
        widths = [
            max(b.iconSize().width(), b.fontMetrics().horizontalAdvance(b.text()), least) + FACE_BOX
            for b in self.buttons.values()
        ]
        return sum(widths) + FACE_GAP * (len(FACES) - 1)

    def one_row_width(self) -> int:
        return self._row_width(self._arrangement[1] or TIGHT_WIDTH)

    def _arrangement_for(self, width: int) -> tuple[int, int]:
        least = FACE_WIDTH_LARGE if self._large else FACE_WIDTH
        if self._row_width(least) <= width:
            return len(FACES), least
        window = self.window()
        if self._row_width(TIGHT_WIDTH) > width and window.height() > window.width():
            return 1, COLUMN_WIDTH
        return len(FACES), TIGHT_WIDTH

    def _arrange(self, columns: int, least: int) -> None:
        if (columns, least) == self._arrangement:
            return
        self._arrangement = (columns, least)
        style = (
            Qt.ToolButtonStyle.ToolButtonTextUnderIcon
            if columns > 1
            else Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        )
        for button in self.buttons.values():
            self.grid.removeWidget(button)
            button.setToolButtonStyle(style)
            button.setMinimumWidth(least + FACE_BOX)
        for i, face in enumerate(FACES):
            self.grid.addWidget(self.buttons[face], i // columns, i % columns)
        self.updateGeometry()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange(*self._arrangement_for(event.size().width()))

    def minimumSizeHint(self) -> QSize:
        hints = [b.sizeHint() for b in self.buttons.values()]
        rows = len(FACES) if self._arrangement[0] == 1 else 1
        height = max(h.height() for h in hints) * rows + FACE_GAP * (rows - 1)
        return QSize(COLUMN_WIDTH + FACE_BOX, height)

    def sizeHint(self) -> QSize:
        return QSize(self.one_row_width(), self.minimumSizeHint().height())

    def show_words(self, t: Translator) -> None:
        for face, button in self.buttons.items():
            button.setText(t(f"rating.face.{face}"))
        self._arrange(*self._arrangement_for(self.width()))


def faces_to_read(t: Translator) -> str:
    """What « Écouter » says after the question: the choices, in order."""
    return t("rating.read_choices", faces=", ".join(t(f"rating.face.{face}") for face in FACES))


def qr_code(url: str, module_px: int = 5) -> QPixmap:
    """The address as a QR code (error correction M, the quiet zone of four modules included), black
    on white whatever the theme: a phone's camera reads it at arm's length."""
    rows = list(segno.make(url, error="m", micro=False).matrix_iter(scale=1, border=4))
    side = len(rows) * module_px
    pixmap = QPixmap(side, side)
    pixmap.fill(QColor("white"))
    painter = QPainter(pixmap)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("black"))
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark:
                painter.drawRect(x * module_px, y * module_px, module_px, module_px)
    painter.end()
    return pixmap


def shown_address(url: str) -> str:
    """The address as a citizen would type it: without https:// and a final slash."""
    return url.removeprefix("https://").rstrip("/")
