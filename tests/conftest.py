from __future__ import annotations

import gc
import os

# Qt offscreen for every test (CI has no display); QtWebEngine's sandbox cannot run as root; the
# form view's Chromium flags, as the kiosk sets them (before QtWebEngine starts).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if hasattr(os, "geteuid") and os.geteuid() == 0:
    os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
from kiosk_client.ui.app import FORM_VIEW_CHROMIUM_FLAGS

os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = " ".join(FORM_VIEW_CHROMIUM_FLAGS)

# QtWebEngine must be loaded before the QApplication exists (pytest-qt creates it lazily).
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import PySide6.QtWebEngineWidgets  # noqa: F401
import pytest
from playwright.sync_api import Browser, sync_playwright

from kiosk_client.central.admin import CentralAdmin, Clerk
from kiosk_client.central.server import CentralThread
from kiosk_client.tools.bench_join_chromium import CHROMIUM, CHROMIUM_ARGS  # one browser set-up

from .field_rig import field  # noqa: F401 - the field-link fixture, for every test module


@pytest.fixture
def central(tmp_path: Path) -> Iterator[CentralThread]:
    """The reference central on loopback, on a thread of its own: on SQLite, or on a PostgreSQL
    database of its own with KIOSK_TEST_CENTRAL_DB=postgresql (the central's tests on that store)."""
    database: Path | str = tmp_path / "central.db"
    if os.environ.get("KIOSK_TEST_CENTRAL_DB") == "postgresql":
        from .postgres_rig import new_database

        database = new_database()
    with CentralThread(database) as server:
        yield server


@pytest.fixture
def admin(central: CentralThread) -> Iterator[CentralAdmin]:
    client = CentralAdmin(central.url, central.admin_token)
    yield client
    client.close()


@dataclass
class Site:
    url: str
    kiosk_id: str
    enrollment_code: str
    clerk: Clerk
    admin: CentralAdmin
    admin_token: str

    def appointment_in(self, seconds: float, minutes: float = 20, service: str = "CAF") -> dict[str, object]:
        start = datetime.now(UTC) + timedelta(seconds=seconds)
        return self.admin.create_appointment(
            self.kiosk_id, self.clerk, service, start, timedelta(minutes=minutes)
        )


@pytest.fixture
def site(central: CentralThread, admin: CentralAdmin) -> Site:
    """A kiosk (not yet enrolled: it has a code) and a clerk on the reference central."""
    admin.configure(join_before_seconds=2, poll_interval_seconds=1, no_show_after_seconds=60)
    kiosk_id = admin.create_kiosk("Borne 1", "France Services de Test")
    clerk = admin.create_clerk("Mme Martin", "CAF")
    return Site(central.url, kiosk_id, admin.enrollment_code(kiosk_id), clerk, admin, central.admin_token)


@pytest.fixture(scope="module")  # not session: Playwright keeps an event loop running while open
def browser() -> Iterator[Browser]:
    # Installed by scripts/bootstrap.sh (Debian's chromium); a missing browser must fail, not skip.
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/bootstrap.sh as root"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def pytest_configure(config: pytest.Config) -> None:
    # As the kiosk runs (ui/main_thread_gc.py): no cycle collection in whatever thread allocates
    # (an engine loop, a central's thread), where freeing a Qt wrapper can crash the process.
    gc.disable()


@pytest.fixture(autouse=True)
def collect_cycles_on_the_main_thread() -> Iterator[None]:
    """Cycle collection, on the main thread, while a test waits on Qt and between tests."""
    from PySide6.QtWidgets import QApplication

    from kiosk_client.ui.main_thread_gc import MainThreadGarbageCollector, collect_if_due

    app = QApplication.instance()
    collector = MainThreadGarbageCollector() if app is not None else None
    yield
    if collector is not None:
        collector.timer.stop()
        collector.deleteLater()
    collect_if_due()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `long` first: with several workers, the minutes they spend waiting on an
    emulated link overlap the rest of the suite instead of trailing after it."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
