"""The camera as a last-resort scanner: the citizen holds the page up, the kiosk waits until it sees
the same sheet in a few frames in a row, then flattens it (opencv) and hands it over as a page."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..core.errors import NoScanner, ScannerError
from ..core.scanning import PageSink, RawPage, ScannerInfo, ScanRequest, ScanSource
from .page_imaging import find_page, gray_of, straighten

log = logging.getLogger(__name__)

A4_WIDTH_INCHES = 210 / 25.4
STEADY_FRAMES = 3  # the sheet found this many frames in a row, hardly moving
STEADY_PX = 12.0  # how far a corner may move between those frames (at the camera's resolution)


class NoPageSeen(ScannerError):
    code = "no_page_seen"


class CameraPages:
    """A ScannerPort whose only source is the camera. `frames` gives the newest BGR camera image,
    or None when no real camera is delivering."""

    def __init__(
        self,
        frames: Callable[[], np.ndarray[Any, np.dtype[np.uint8]] | None],
        *,
        timeout_s: float = 20.0,
        interval_s: float = 0.15,
    ) -> None:
        self._frames = frames
        self._timeout_s = timeout_s
        self._interval_s = interval_s

    async def devices(self) -> list[ScannerInfo]:
        return [ScannerInfo("camera", "Caméra", (ScanSource.CAMERA,))] if self._frames() is not None else []

    async def scan(self, request: ScanRequest, on_page: PageSink) -> int:
        deadline = time.monotonic() + self._timeout_s
        previous: np.ndarray[Any, np.dtype[np.float32]] | None = None
        steady = 0
        while time.monotonic() < deadline:
            frame = self._frames()
            if frame is None:
                raise NoScanner("no camera is delivering pictures")
            corners = await asyncio.to_thread(find_page, gray_of(frame))
            if corners is None:
                steady, previous = 0, None
            else:
                moved = (
                    float(np.abs(np.sort(corners, axis=0) - np.sort(previous, axis=0)).max())
                    if previous is not None
                    else 0.0
                )
                steady = steady + 1 if previous is None or moved <= STEADY_PX else 1
                previous = corners
                if steady >= STEADY_FRAMES:
                    on_page(await asyncio.to_thread(_as_page, frame, corners))
                    return 1
            await asyncio.sleep(self._interval_s)
        raise NoPageSeen(f"no sheet held still in front of the camera for {self._timeout_s:.0f} s")


def _as_page(
    frame: np.ndarray[Any, np.dtype[np.uint8]], corners: np.ndarray[Any, np.dtype[np.float32]]
) -> RawPage:
    flat = cv2.cvtColor(straighten(frame, corners), cv2.COLOR_BGR2RGB)
    height, width = flat.shape[:2]
    if width > height:  # held sideways: portrait, as the paper is
        flat = cv2.rotate(flat, cv2.ROTATE_90_CLOCKWISE)
        height, width = width, height
    dpi = max(75, round(width / A4_WIDTH_INCHES))  # the sheet's own width, taken as A4
    return RawPage(width, height, 3, dpi, np.ascontiguousarray(flat).tobytes())
