"""No scanner: the citizen holds the page up to the camera; the kiosk waits for a steady sheet,
flattens it and takes it as a page."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from kiosk_client.adapters.camera_page import CameraPages, NoPageSeen
from kiosk_client.adapters.outbox import EncryptedOutbox
from kiosk_client.adapters.page_imaging import OpenCvPageProcessor, estimate_skew, gray_of, to_array
from kiosk_client.core.document_desk import DocumentDesk
from kiosk_client.core.errors import NoScanner
from kiosk_client.core.scanning import RawPage, ScanRequest, ScanSource
from kiosk_client.tools.sample_pages import text_page

from .kiosk_rig import wait_for
from .sane_rig import sane_folder, sane_scanner


def held_page(shift: int = 0) -> np.ndarray:
    """A 1280×720 camera picture (BGR) of a letter held up, tilted, in front of a dark wall."""
    frame = np.full((720, 1280, 3), 60, np.uint8)
    sheet = cv2.cvtColor(
        cv2.resize(text_page(), (420, 594), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR
    )
    corners = np.array([[0, 0], [419, 0], [419, 593], [0, 593]], np.float32)
    held = np.array([[440, 70], [850, 95], [870, 690], [420, 660]], np.float32) + shift
    cv2.warpPerspective(sheet, cv2.getPerspectiveTransform(corners, held), (1280, 720), frame,
                        borderMode=cv2.BORDER_TRANSPARENT)  # fmt: skip
    return frame


async def test_a_steady_sheet_becomes_an_upright_a4_page() -> None:
    frames = itertools.chain([np.full((720, 1280, 3), 60, np.uint8)] * 2, itertools.repeat(held_page()))
    pages: list[RawPage] = []
    camera = CameraPages(lambda: next(frames), interval_s=0.01)
    assert await camera.scan(ScanRequest(ScanSource.CAMERA), pages.append) == 1
    (page,) = pages
    assert page.channels == 3 and page.height / page.width == pytest.approx(297 / 210, rel=0.08)
    assert page.dpi == 75  # a webcam sees a sheet at ~50 dpi; 75 is the floor the imaging expects
    assert abs(estimate_skew(gray_of(to_array(page)))) <= 0.5


async def test_a_moving_sheet_is_waited_for_and_nothing_is_taken_from_an_empty_picture() -> None:
    moving = itertools.cycle([held_page(0), held_page(40)])  # the hand shakes: never steady
    with pytest.raises(NoPageSeen):
        await CameraPages(lambda: next(moving), timeout_s=0.5, interval_s=0.01).scan(
            ScanRequest(), lambda p: None
        )
    wall = np.full((720, 1280, 3), 60, np.uint8)
    with pytest.raises(NoPageSeen):
        await CameraPages(lambda: wall, timeout_s=0.3, interval_s=0.01).scan(ScanRequest(), lambda p: None)


async def test_no_working_camera_is_said_plainly() -> None:
    camera = CameraPages(lambda: None)
    assert await camera.devices() == []
    with pytest.raises(NoScanner):
        await camera.scan(ScanRequest(ScanSource.CAMERA), lambda p: None)


async def test_the_desk_takes_camera_pages_when_asked(tmp_path: Path) -> None:
    frame: dict[str, Any] = {"now": held_page()}
    desk = DocumentDesk(
        "appt-1",
        sane_scanner(sane_folder(tmp_path, backends="")),  # no scanner attached
        OpenCvPageProcessor(),
        EncryptedOutbox(tmp_path / "outbox", b"k" * 32, reserve_bytes=0),
        lambda state: None,
        camera=CameraPages(lambda: frame["now"], interval_s=0.01),
    )
    assert desk.scan(ScanSource.FLATBED)
    await wait_for(lambda: desk.state.scanner == "idle")
    assert desk.state.scan_error == "no_scanner"  # then the citizen is offered the camera
    assert desk.scan(ScanSource.CAMERA)
    assert desk.state.scan_source == "camera"
    await wait_for(lambda: desk.state.scanner == "idle", 10)
    assert desk.state.scan_error is None and len(desk.state.pages) == 1
    await desk.close()
    await asyncio.sleep(0)
