"""The camera through opencv, read on a worker thread; a labelled placeholder when there is none."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..resources import asset_path

log = logging.getLogger(__name__)

Image = np.ndarray[Any, np.dtype[np.uint8]]


def load_card(name: str, width: int, height: int) -> Image:
    """A full-frame card from assets/ (e.g. 'camera-unavailable.png'), letterboxed to the size."""
    canvas = np.full((height, width, 3), (64, 40, 24), dtype=np.uint8)
    path = asset_path(name)
    card = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.exists() else None
    if card is None:
        log.warning("asset %s is missing; sending a plain card", path)
        return canvas
    scale = min(width / card.shape[1], height / card.shape[0])
    w, h = int(card.shape[1] * scale), int(card.shape[0] * scale)
    resized = cv2.resize(card, (w, h), interpolation=cv2.INTER_AREA)
    y, x = (height - h) // 2, (width - w) // 2
    canvas[y : y + h, x : x + w] = resized
    return canvas


class PlaceholderSource:
    """A still, clearly labelled image ("Caméra indisponible") sent when no camera works."""

    def __init__(self, width: int, height: int) -> None:
        self._image = load_card("camera-unavailable.png", width, height)

    def latest(self) -> Image:
        return self._image


class OpenCvCamera:
    """Captures continuously on its own thread; `latest()` never blocks. Falls back to the placeholder
    when the camera cannot be opened or stops delivering (unplugged), and retries opening it."""

    REOPEN_S = 5.0

    def __init__(self, device: int | str, width: int, height: int, fps: int) -> None:
        self._device = device
        self._size = (width, height)
        self._fps = fps
        self._placeholder = PlaceholderSource(width, height)
        self._latest: Image | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.status = "starting"
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def latest(self) -> Image:
        with self._lock:
            return self._latest if self._latest is not None else self._placeholder.latest()

    def frame(self) -> Image | None:
        """The camera's own newest picture, or None (not open yet, missing, stopped delivering)."""
        with self._lock:
            return self._latest

    def _open(self) -> cv2.VideoCapture | None:
        capture = cv2.VideoCapture(self._device)
        if not capture.isOpened():
            capture.release()
            return None
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        capture.set(cv2.CAP_PROP_FPS, self._fps)
        return capture

    def _run(self) -> None:
        while not self._stop.is_set():
            capture = self._open()
            if capture is None:
                if self.status != "missing":
                    log.warning("camera %r cannot be opened; sending the placeholder", self._device)
                self.status = "missing"
                self._stop.wait(self.REOPEN_S)
                continue
            self.status = "ok"
            failures = 0
            while not self._stop.is_set() and failures < 10:
                ok, frame = capture.read()
                if not ok or frame is None:
                    failures += 1
                    time.sleep(0.05)
                    continue
                failures = 0
                if (frame.shape[1], frame.shape[0]) != self._size:
                    frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
                with self._lock:
                    self._latest = np.asarray(frame, dtype=np.uint8)
            capture.release()
            if not self._stop.is_set():
                log.warning("camera %r stopped delivering frames; sending the placeholder", self._device)
                self.status = "failed"
                with self._lock:
                    self._latest = None


def probe_camera(device: int | str | None) -> str:
    """'ok', 'missing' or 'disabled' — without keeping the camera open (its light would stay on)."""
    if device is None:
        return "disabled"
    if isinstance(device, str) and device.startswith("/dev/") and not Path(device).exists():
        return "missing"
    capture = cv2.VideoCapture(device)
    try:
        return "ok" if capture.isOpened() else "missing"
    finally:
        capture.release()
