"""Helpers to run the real kiosk engine (aiortc, httpx) against the reference central in tests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk_client.adapters.central_http import enroll
from kiosk_client.adapters.media_tracks import LatestFrame
from kiosk_client.app import build_engine
from kiosk_client.core.clock import SystemClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.events import KioskEvent, SessionFinished, SessionRecord
from kiosk_client.core.ports import FormViewPort, VideoSink
from kiosk_client.core.settings import AudioSettings, CameraSettings, Settings


def kiosk_settings(url: str, data_dir: Path) -> Settings:
    # No camera or sound card on CI machines: the labelled placeholder and silence are sent.
    return Settings(
        central_url=url,
        data_dir=data_dir,
        fullscreen=False,
        camera=CameraSettings(device=None),
        audio=AudioSettings(microphone=None, speaker=None),
    )


def enrolled_token(url: str, code: str) -> str:
    # On a thread of its own: the caller may already run an event loop (pytest-asyncio, Playwright).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(enroll(url, code)).device_token).result(timeout=30)


class Recorder:
    """Collects the engine's events; thread-safe so Qt and browser tests can wait on it."""

    def __init__(self) -> None:
        self.events: list[KioskEvent] = []
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, event: KioskEvent) -> None:
        with self._lock:
            self.events.append(event)
        if isinstance(event, SessionFinished):
            self.finished.set()

    def records(self) -> list[SessionRecord]:
        with self._lock:
            return [e.record for e in self.events if isinstance(e, SessionFinished)]


def make_engine(
    url: str,
    token: str,
    data_dir: Path,
    publish: Callable[[KioskEvent], None],
    sink: VideoSink | None = None,
    form: FormViewPort | None = None,
    form_frames: LatestFrame | None = None,
    outbox_key: bytes | None = None,
) -> KioskEngine:
    """With `outbox_key`, the kiosk scans (SANE_CONFIG_DIR picks the scanner) and sends documents."""
    settings = kiosk_settings(url, data_dir)
    return build_engine(
        settings,
        token,
        publish,
        sink,
        form,
        form_frames,
        ended_screen=timedelta(seconds=1),
        outbox_key=outbox_key,
    )


def form_field(qtbot: Any, form: Any, element_id: str) -> Any:
    """The value of a field in the kiosk's form view (read as the page sees it)."""
    assert form.page is not None
    result: list[Any] = []
    form.page.runJavaScript(f"String(document.getElementById('{element_id}').value)", 0, result.append)
    qtbot.waitUntil(lambda: bool(result), timeout=5000)
    return result[0]


async def wait_for(predicate: Callable[[], object], seconds: float = 10.0) -> None:
    """Polls `predicate` on the running loop until it holds; fails the test after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {seconds} s")
        await asyncio.sleep(0.01)


def wait_until(predicate: Callable[[], object], seconds: float) -> None:
    """wait_for for tests without an event loop of their own (browser tests, Qt-free threads)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# Engines under test run at noon, plus the time the tests take: an appointment an hour from now is
# still "today" on the idle screen whatever time of day the suite runs (after 23:00 UTC it was
# tomorrow's, and the tests failed).
NOON_SHIFT = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - datetime.now(UTC)


class NoonClock(SystemClock):
    def now(self) -> datetime:
        return super().now() + NOON_SHIFT
