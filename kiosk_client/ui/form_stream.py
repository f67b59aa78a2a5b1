"""The live form view for the clerk: grabs of the form view, citizen-only fields painted over,
handed to the call's second video track.

A grab is sent only with the masks measured on the very layout it shows. The page paints a token into
a corner stamp in the animation frame where it measured its masks (see form_scripts.MEASURE); each
grab is read for its token and masked with that token's rectangles, or dropped if the token is not
known (yet). Masks measured on an earlier layout are never applied to a later one, so a password field
scrolled into view or moved by the page is never sent in clear.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWebEngineCore import QWebEngineScript

from .form_scripts import MEASURE, with_selectors
from .form_view import FormPage, FormView

log = logging.getLogger(__name__)

MAX_WIDTH, MAX_HEIGHT = 1280, 800
MASK_MARGIN = 4  # px around each field, for borders and focus rings
STAMP_CELLS = 8  # per row
TOKEN_MASK = (1 << 3 * STAMP_CELLS) - 1
KNOWN_TOKENS = 64


@dataclass(frozen=True, slots=True)
class Measure:
    rects: tuple[tuple[float, float, float, float], ...]  # device pixels
    stamp: tuple[float, float, float, float]


class FrameOutlet(Protocol):
    def set(self, image: np.ndarray[Any, np.dtype[np.uint8]]) -> None: ...

    def clear(self) -> None: ...


def read_token(image: QImage, stamp: tuple[float, float, float, float]) -> int | None:
    """The token painted in the stamp: its top row of cells holds three bits each (red, green, blue
    on or off), its bottom row the complement; None when the two rows disagree (the stamp is not where
    it was measured, or it is not there) or the stamp is blank."""
    x, y, width, height = stamp
    if width <= 0 or height <= 0:
        return None
    rows = []
    for row in (int(y + height / 4), int(y + 3 * height / 4)):
        value = 0
        for i in range(STAMP_CELLS):
            column = int(x + (i + 0.5) * width / STAMP_CELLS)
            if not (0 <= column < image.width() and 0 <= row < image.height()):
                return None
            colour = image.pixelColor(column, row)
            bits = (colour.red() >= 128) << 2 | (colour.green() >= 128) << 1 | (colour.blue() >= 128)
            value |= bits << (3 * i)
        rows.append(value)
    token, complement = rows
    if token == 0 or token ^ complement != TOKEN_MASK:
        return None  # 0: the stamp is blank (no measurement running)
    return token


class FormStreamer(QObject):
    def __init__(
        self,
        form: FormView,
        outlet: FrameOutlet,
        fps: int = 20,
        selectors: tuple[str, ...] = (),
        safe_frame_origins: tuple[str, ...] = (),
    ) -> None:
        super().__init__(form)
        self._form = form
        self._outlet = outlet
        self._script = with_selectors(MEASURE, selectors, list(safe_frame_origins))
        self._measures: OrderedDict[int, Measure] = OrderedDict()
        self._latest_stamp: tuple[float, float, float, float] | None = None
        self._generation = -1
        self._pending: QImage | None = None
        self._previous_frame: np.ndarray[Any, np.dtype[np.uint8]] | None = None
        self.frames = 0
        self.dropped = 0  # grabs never sent because their masks were not known
        self.grab_ms = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / fps))
        self._timer.timeout.connect(self.tick)
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._pending = None
        self._outlet.clear()

    def _forget(self) -> None:
        self._measures.clear()
        self._latest_stamp = None
        self._pending = None
        self._previous_frame = None

    def tick(self) -> None:
        view, page = self._form.view, self._form.page
        if view is None or page is None or not view.isVisible():
            self._forget()
            self._outlet.clear()
            return
        generation = self._form.generation
        if generation != self._generation:
            # Another document: nothing measured on the last one applies, and until this one is
            # measured the clerk keeps the last frame sent (the track repeats it), never a new one.
            self._forget()
            self._generation = generation
        started = time.perf_counter()
        if self._pending is not None:
            self.dropped += 1
        self._pending = view.grab().toImage().convertToFormat(QImage.Format.Format_BGR888)
        self.grab_ms = (time.perf_counter() - started) * 1000
        page.runJavaScript(
            self._script,
            QWebEngineScript.ScriptWorldId.ApplicationWorld,
            lambda result: self._measured(page, generation, result),
        )
        self._try_send()

    def _measured(self, page: FormPage, generation: int, result: object) -> None:
        if page is not self._form.page or generation != self._form.generation or not isinstance(result, str):
            return  # measured on a document that is no longer shown
        try:
            data = json.loads(result)
            scale = float(data["dpr"])
            for item in data["measures"]:
                rects = tuple(
                    (float(x) * scale, float(y) * scale, float(w) * scale, float(h) * scale)
                    for x, y, w, h in item["rects"]
                )
                sx, sy, sw, sh = (float(v) * scale for v in item["stamp"])
                self._measures[int(item["token"])] = Measure(rects, (sx, sy, sw, sh))
                self._latest_stamp = (sx, sy, sw, sh)
        except (ValueError, KeyError, TypeError):
            log.warning("the form view's masks could not be read; frames are held back")
            return
        while len(self._measures) > KNOWN_TOKENS:
            self._measures.popitem(last=False)
        self._try_send()

    def _try_send(self) -> None:
        image = self._pending
        if image is None or self._latest_stamp is None:
            return
        token = read_token(image, self._latest_stamp)
        measure = self._measures.get(token) if token is not None else None
        if measure is None:
            return  # its measurement may still be on its way; a newer grab replaces it otherwise
        self._pending = None
        frame = self._masked(image, measure)
        # Only changes are handed over: the track repeats the last image by itself, and sends a new
        # one at once, so an unchanged page costs no encoding work and a change is not delayed.
        if self._previous_frame is not None and np.array_equal(frame, self._previous_frame):
            return
        self._previous_frame = frame
        self._outlet.set(frame)
        self.frames += 1

    @staticmethod
    def _masked(image: QImage, measure: Measure) -> np.ndarray[Any, np.dtype[np.uint8]]:
        painter = QPainter(image)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("black"))
        for x, y, w, h in measure.rects:
            painter.drawRect(
                QRectF(x - MASK_MARGIN, y - MASK_MARGIN, w + 2 * MASK_MARGIN, h + 2 * MASK_MARGIN)
            )
        # The stamp is the kiosk's business, not the clerk's (with a margin: a pixel off is still read).
        sx, sy, sw, sh = measure.stamp
        painter.drawRect(
            QRectF(sx - MASK_MARGIN, sy - MASK_MARGIN, sw + 2 * MASK_MARGIN, sh + 2 * MASK_MARGIN)
        )
        painter.end()
        if image.width() > MAX_WIDTH or image.height() > MAX_HEIGHT:
            image = image.scaled(
                MAX_WIDTH,
                MAX_HEIGHT,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        width, height, stride = image.width(), image.height(), image.bytesPerLine()
        buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * height)
        return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()
