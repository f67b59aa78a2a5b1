"""The scanner adapter against the SANE test backend, a real (virtual) scanner driven through
pyinsane2 in the worker process."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from kiosk_client.core.errors import (
    FeederEmpty,
    NoScanner,
    PaperJammed,
    ScannerDisconnected,
    ScannerError,
    ScannerNotResponding,
    SourceUnsupported,
)
from kiosk_client.core.scanning import RawPage, ScanRequest, ScanSource

from .sane_rig import sane_folder, sane_scanner

SLOW = {"read_delay": "true", "read_delay_duration": "20000"}  # 20 ms per buffer read


async def test_lists_the_test_scanner_with_its_flatbed_and_feeder(tmp_path: Path) -> None:
    devices = await sane_scanner(sane_folder(tmp_path)).devices()
    assert [d.id for d in devices] == ["test:0"]
    assert set(devices[0].sources) == {ScanSource.FLATBED, ScanSource.FEEDER}
    assert "frontend-tester" in devices[0].label


async def test_a_feeder_batch_at_300_dpi_arrives_page_by_page(tmp_path: Path) -> None:
    pages: list[RawPage] = []
    scanner = sane_scanner(sane_folder(tmp_path))
    count = await scanner.scan(ScanRequest(ScanSource.FEEDER, dpi=300, colour=False), pages.append)
    assert count == len(pages) == 10  # the test backend's feeder holds 10 sheets
    side = round(200 / 25.4 * 300)  # its largest area is 200 × 200 mm
    assert all((p.width, p.height, p.channels, p.dpi) == (side, side, 1, 300) for p in pages)
    image = np.frombuffer(pages[0].pixels, np.uint8)
    assert image.min() < 50 and image.max() > 200  # the colour pattern, not a blank page


async def test_a_flatbed_scan_in_colour_is_one_rgb_page(tmp_path: Path) -> None:
    pages: list[RawPage] = []
    assert await sane_scanner(sane_folder(tmp_path)).scan(ScanRequest(dpi=100), pages.append) == 1
    image = np.frombuffer(pages[0].pixels, np.uint8).reshape(pages[0].height, pages[0].width, 3)
    differs = np.abs(image[..., 0].astype(int) - image[..., 2].astype(int)) > 50
    assert differs.mean() > 0.1  # really colour


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ('"SANE_STATUS_JAMMED"', PaperJammed),
        ('"SANE_STATUS_NO_DOCS"', FeederEmpty),
        ('"SANE_STATUS_IO_ERROR"', ScannerDisconnected),
    ],
)
async def test_driver_statuses_become_clear_errors(tmp_path: Path, status: str, error: type) -> None:
    scanner = sane_scanner(sane_folder(tmp_path, read_status_code=status))
    with pytest.raises(error) as raised:
        await scanner.scan(ScanRequest(ScanSource.FEEDER, dpi=100), lambda page: None)
    assert raised.value.pages_done == 0


async def test_no_scanner_then_one_plugged_in_later(tmp_path: Path) -> None:
    folder = sane_folder(tmp_path, backends="")
    scanner = sane_scanner(folder)
    assert await scanner.devices() == []
    with pytest.raises(NoScanner):
        await scanner.scan(ScanRequest(), lambda page: None)
    (folder / "dll.conf").write_text("test\n")  # the same kiosk, a scanner now attached
    assert [d.id for d in await scanner.devices()] == ["test:0"]


async def test_a_source_the_device_lacks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceUnsupported):
        await sane_scanner(sane_folder(tmp_path)).scan(ScanRequest(ScanSource.DUPLEX), lambda page: None)


async def test_a_slow_scanner_is_waited_for_while_it_makes_progress(tmp_path: Path) -> None:
    pages: list[RawPage] = []
    scanner = sane_scanner(sane_folder(tmp_path, **SLOW), stall_timeout_s=1.0)
    started = asyncio.get_running_loop().time()
    assert await scanner.scan(ScanRequest(dpi=150, colour=False), pages.append) == 1
    assert asyncio.get_running_loop().time() - started > 1.0  # slower than the stall limit itself


async def test_a_hung_driver_is_killed_and_reported(tmp_path: Path) -> None:
    scanner = sane_scanner(sane_folder(tmp_path, **SLOW), stall_timeout_s=1.0)
    job = asyncio.ensure_future(scanner.scan(ScanRequest(dpi=150, colour=False), lambda page: None))
    await asyncio.sleep(0.8)  # the worker is up and reading (each page takes seconds here)
    pid = scanner.worker_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the driver stops answering, mid-page
    with pytest.raises(ScannerNotResponding):
        await asyncio.wait_for(job, 10)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    # The next job gets a fresh worker and works.
    fast = sane_scanner(sane_folder(tmp_path))
    assert await fast.scan(ScanRequest(dpi=75), lambda page: None) == 1


async def test_a_driver_crash_mid_batch_keeps_the_pages_already_scanned(tmp_path: Path) -> None:
    pages: list[RawPage] = []
    scanner = sane_scanner(sane_folder(tmp_path, **SLOW))

    def on_page(page: RawPage) -> None:
        pages.append(page)
        if len(pages) == 2 and scanner.worker_pid is not None:
            os.kill(scanner.worker_pid, signal.SIGKILL)  # e.g. the scanner unplugged, the driver dies

    with pytest.raises(ScannerError) as raised:
        await scanner.scan(ScanRequest(ScanSource.FEEDER, dpi=75, colour=False), on_page)
    assert raised.value.pages_done == 2 and len(pages) == 2
