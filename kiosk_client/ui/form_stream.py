"""The live form view for the clerk: grabs of the form view, citizen-only fields painted over,
handed to the call's second video track."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWebEngineCore import QWebEngineScript

from .form_view import ALWAYS_CITIZEN_ONLY, CITIZEN_ONLY_MEMORY, FormView

log = logging.getLogger(__name__)

MAX_WIDTH, MAX_HEIGHT = 1280, 800
MASK_MARGIN = 4  # px around each field, for borders and focus rings
MASKS = (
    """(() => {
  const selectors = %s, out = [];
"""
    + CITIZEN_ONLY_MEMORY
    + """
  for (const el of remembered) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth)
      out.push([r.left, r.top, r.width, r.height]);
  }
  return JSON.stringify({rects: out, dpr: devicePixelRatio});
})()"""
)


class FrameOutlet(Protocol):
    def set(self, image: np.ndarray[Any, np.dtype[np.uint8]]) -> None: ...

    def clear(self) -> None: ...


class FormStreamer(QObject):
    def __init__(
        self, form: FormView, outlet: FrameOutlet, fps: int = 20, selectors: tuple[str, ...] = ()
    ) -> None:
        super().__init__(form)
        self._form = form
        self._outlet = outlet
        self._script = MASKS % json.dumps([*ALWAYS_CITIZEN_ONLY, *selectors])
        self._masks: list[list[float]] = []
        self._previous_masks: list[list[float]] = []
        self._masks_generation = -1  # the form view's document generation the masks were measured on
        self._previous_frame: np.ndarray[Any, np.dtype[np.uint8]] | None = None
        self.frames = 0
        self.grab_ms = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / fps))
        self._timer.timeout.connect(self.tick)
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._outlet.clear()

    def _measure_masks(self) -> None:
        page = self._form.page
        if page is None:
            return
        generation = self._form.generation

        def measured(result: object) -> None:
            if (
                page is not self._form.page
                or generation != self._form.generation
                or not isinstance(result, str)
            ):
                return  # measured on a document that is no longer shown
            try:
                data = json.loads(result)
                scale = float(data["dpr"])
                rects = [[float(v) * scale for v in rect] for rect in data["rects"]]
            except (ValueError, KeyError, TypeError):
                return
            self._previous_masks, self._masks = self._masks, rects
            self._masks_generation = generation

        page.runJavaScript(self._script, QWebEngineScript.ScriptWorldId.ApplicationWorld, measured)

    def grab(self) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
        """One masked frame, BGR, at most 1280×800; None while no form is open or not yet measured."""
        view, page = self._form.view, self._form.page
        if view is None or page is None or not view.isVisible():
            return None
        if self._masks_generation != self._form.generation:
            return None  # never send a document before its citizen-only fields are known
        started = time.perf_counter()
        image = view.grab().toImage().convertToFormat(QImage.Format.Format_BGR888)
        painter = QPainter(image)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("black"))
        # Both the newest and the previous measures: a scroll between two measures stays covered.
        for x, y, w, h in [*self._masks, *self._previous_masks]:
            painter.drawRect(
                QRectF(x - MASK_MARGIN, y - MASK_MARGIN, w + 2 * MASK_MARGIN, h + 2 * MASK_MARGIN)
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
        frame = buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()
        self.grab_ms = (time.perf_counter() - started) * 1000
        return frame

    def tick(self) -> None:
        self._measure_masks()
        frame = self.grab()
        if frame is None:
            self._previous_frame = None
            self._outlet.clear()
            return
        # Only changes are handed over: the track repeats the last image by itself, and sends a new
        # one at once, so an unchanged page costs no encoding work and a change is not delayed.
        if self._previous_frame is not None and np.array_equal(frame, self._previous_frame):
            return
        self._previous_frame = frame
        self._outlet.set(frame)
        self.frames += 1
