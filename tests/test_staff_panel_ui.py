"""The staff panel on the kiosk's window (offscreen), against the real engine and a fake central: the
hidden gesture, the PIN pad, a lock-out, a walk-in code, out of service and back, closing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, FakeLiveDevices, MemoryCache
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.models import Appointment, RemoteConfig
from kiosk_client.core.session import Phase
from kiosk_client.core.staff_pin import hash_pin
from kiosk_client.runtime import LoopThread
from kiosk_client.ui.bridge import BridgeVideoSink, EngineBridge
from kiosk_client.ui.i18n import Translator
from kiosk_client.ui.main_window import KioskWindow
from kiosk_client.ui.staff_panel import TAPS

PIN = "246810"
FR = Translator("fr")


@pytest.fixture
def kiosk(qtbot: QtBot) -> Iterator[tuple[KioskWindow, KioskEngine, FakeCentral]]:
    central = FakeCentral(
        None,
        RemoteConfig(
            poll_interval_s=0.05, join_before_s=0.3, staff_pin_hash=hash_pin(PIN, iterations=10_000)
        ),
    )
    loop = LoopThread("engine")
    loop.start()
    bridge = EngineBridge(loop)
    engine = KioskEngine(
        central,
        FakeCallFactory(),
        MemoryCache(),
        CentralClock(SystemClock()),
        bridge.publish,
        live_devices=FakeLiveDevices(BridgeVideoSink(bridge)),
    )
    window = KioskWindow(bridge, engine, "fr")
    qtbot.addWidget(window)
    window.resize(1280, 720)
    window.show()
    loop.submit(engine.run())
    qtbot.waitUntil(
        lambda: engine._config.staff_pin_hash is not None and not engine.reset.checking, timeout=10_000
    )
    yield window, engine, central
    loop.stop()


def tap_corner(window: KioskWindow, times: int = TAPS) -> None:
    # To the window's QWindow, as the platform delivers a touch, whichever widget is under it.
    handle = window.windowHandle()
    assert handle is not None
    at = QPointF(20, 20)
    for _ in range(times):
        for kind, buttons in ((QEvent.Type.MouseButtonPress, Qt.MouseButton.LeftButton),
                              (QEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton)):  # fmt: skip
            event = QMouseEvent(
                kind,
                at,
                handle.mapToGlobal(at),
                Qt.MouseButton.LeftButton,
                buttons,
                Qt.KeyboardModifier.NoModifier,
            )
            QApplication.sendEvent(handle, event)


def type_digits(window: KioskWindow, digits: str) -> None:
    for key in digits + "V":
        window.staff_panel.keypad.keys[key].click()


def test_the_corner_gesture_and_the_pin_open_it_and_a_walk_in_code_starts_a_session(
    kiosk: tuple[KioskWindow, KioskEngine, FakeCentral], qtbot: QtBot, tmp_path: Path
) -> None:
    window, engine, central = kiosk
    panel = window.staff_panel
    tap_corner(window, TAPS - 1)
    assert not panel.isVisible()  # four taps are not the gesture
    tap_corner(window, 1)
    assert panel.isVisible() and panel.mode == "pin"
    window.grab().save(str(tmp_path / "staff-pin.png"))
    type_digits(window, PIN)
    qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
    qtbot.waitUntil(lambda: "Version" in panel.info.text(), timeout=5_000)
    window.grab().save(str(tmp_path / "staff-panel.png"))
    start = CentralClock(SystemClock()).now()
    central.walk_in_codes["482913"] = Appointment(
        "w1", "CAF", "Mme Durand", start, start + timedelta(minutes=30)
    )
    panel.walk_in.click()
    assert panel.mode == "code"
    type_digits(window, "482913")
    qtbot.waitUntil(lambda: bool(central.offers), timeout=5_000)
    assert central.offers[0][0] == "w1"
    assert panel.message.text() == FR("staff.walk_in_started")
    panel.close_button.click()
    assert not panel.isVisible()
    qtbot.waitUntil(lambda: not engine.staff.is_open, timeout=2_000)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.waiting, timeout=5_000)


def test_three_wrong_pins_lock_it_and_nothing_opens(
    kiosk: tuple[KioskWindow, KioskEngine, FakeCentral], qtbot: QtBot, tmp_path: Path
) -> None:
    window, engine, _ = kiosk
    panel = window.staff_panel
    tap_corner(window)
    type_digits(window, "0000")
    qtbot.waitUntil(lambda: panel.message.text() == FR("staff.pin_wrong", remaining="2"), timeout=5_000)
    type_digits(window, "1111")
    qtbot.waitUntil(lambda: panel.message.text() == FR("staff.pin_wrong", remaining="1"), timeout=5_000)
    type_digits(window, "2222")
    qtbot.waitUntil(lambda: panel.message.text() == FR("staff.pin_locked", minutes="1"), timeout=5_000)
    type_digits(window, PIN)  # the right one, too late
    qtbot.wait(500)
    assert panel.mode == "pin" and not engine.staff.is_open
    window.grab().save(str(tmp_path / "staff-locked.png"))


def test_out_of_service_from_the_panel_shows_the_screen_and_back(
    kiosk: tuple[KioskWindow, KioskEngine, FakeCentral], qtbot: QtBot
) -> None:
    window, engine, central = kiosk
    panel = window.staff_panel
    tap_corner(window)
    type_digits(window, PIN)
    qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
    qtbot.waitUntil(lambda: panel.service.text() == FR("staff.out_of_service_button"), timeout=5_000)
    panel.service.click()
    qtbot.waitUntil(lambda: panel.service.text() == FR("staff.back_in_service"), timeout=5_000)
    panel.close_button.click()
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.out_of_service, timeout=5_000)
    qtbot.waitUntil(
        lambda: bool(central.heartbeats) and central.heartbeats[-1].state == "out_of_service", timeout=10_000
    )
    tap_corner(window)
    type_digits(window, PIN)
    qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
    qtbot.waitUntil(lambda: panel.service.text() == FR("staff.back_in_service"), timeout=5_000)
    panel.service.click()
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.idle, timeout=10_000)
    assert engine.session.phase is Phase.IDLE


def live_devices(engine: KioskEngine) -> FakeLiveDevices:
    live = engine._live
    assert isinstance(live, FakeLiveDevices)
    return live


def open_device_page(window: KioskWindow, qtbot: QtBot) -> None:
    panel = window.staff_panel
    tap_corner(window)
    type_digits(window, PIN)
    qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
    panel.check.click()
    assert panel.mode == "devices" and panel.pages.currentWidget() is panel.device_page


def test_the_device_page_shows_the_camera_live_and_the_level_and_releases_them_on_back(
    kiosk: tuple[KioskWindow, KioskEngine, FakeCentral], qtbot: QtBot, tmp_path: Path
) -> None:
    window, engine, _ = kiosk
    panel, live = window.staff_panel, live_devices(engine)
    page = panel.device_page
    open_device_page(window, qtbot)
    qtbot.waitUntil(lambda: page.camera.has_picture() and page.camera.video.frames_shown >= 3, timeout=5_000)
    shown = page.camera.video.frames_shown
    qtbot.wait(500)
    assert page.camera.video.frames_shown > shown  # live, not a still
    assert page.camera_state.text() == FR("staff.devices.camera.ok")
    assert page.microphone_hint.text() == FR("staff.devices.microphone.speak")
    assert page.timer_words.text().startswith(FR("staff.devices.remaining", seconds="6")[:20])
    live.level = 0.0005  # a silent room: -66 dBFS, the bar empty
    qtbot.waitUntil(lambda: page.level_bar.filled() == 0.0, timeout=2_000)
    assert page.level_words.text() == FR("staff.devices.level", db="≤ \u221260")
    live.level = 0.5  # someone speaks close to it: -6 dBFS
    qtbot.waitUntil(lambda: page.level_bar.filled() > 0.85, timeout=2_000)
    assert page.level_words.text() == FR("staff.devices.level", db="\u22126")
    window.grab().save(str(tmp_path / "staff-devices.png"))
    page.back.click()
    assert panel.mode == "panel" and not page.camera.video.has_image()  # the picture is gone
    qtbot.waitUntil(lambda: not live.is_open, timeout=2_000)  # the camera's light is off
    assert not engine.live_check_running and panel.isVisible()


def test_closing_the_panel_or_the_time_limit_releases_the_devices(
    kiosk: tuple[KioskWindow, KioskEngine, FakeCentral], qtbot: QtBot
) -> None:
    window, engine, _ = kiosk
    panel, live = window.staff_panel, live_devices(engine)
    page = panel.device_page
    open_device_page(window, qtbot)
    qtbot.waitUntil(lambda: live.is_open and page.camera.has_picture(), timeout=5_000)
    panel.close_button.click()
    qtbot.waitUntil(lambda: not live.is_open, timeout=2_000)
    assert not page.camera.video.has_image()

    engine._live_check_s = 1.0
    open_device_page(window, qtbot)
    qtbot.waitUntil(lambda: page.camera.has_picture(), timeout=5_000)
    qtbot.waitUntil(lambda: not live.is_open, timeout=4_000)  # by itself, nobody touching it
    qtbot.waitUntil(lambda: page.camera.words.text() == FR("staff.devices.ended.time_limit"), timeout=2_000)
    assert not page.camera.video.has_image() and page.timer_words.text() == FR("staff.devices.off")
    engine._live_check_s = 60.0
    page.again.click()  # « Tester de nouveau »: on again, for another minute
    qtbot.waitUntil(lambda: live.is_open and page.camera.has_picture(), timeout=5_000)
    assert live.starts == 3


def test_missing_camera_and_microphone_are_said_calmly(
    kiosk: tuple[KioskWindow, KioskEngine, FakeCentral], qtbot: QtBot, tmp_path: Path
) -> None:
    window, engine, _ = kiosk
    page = window.staff_panel.device_page
    live = live_devices(engine)
    live.devices = {"camera": "missing", "microphone": "missing"}
    open_device_page(window, qtbot)
    qtbot.waitUntil(lambda: page.camera.words.text() == FR("staff.devices.camera.missing"), timeout=5_000)
    qtbot.waitUntil(
        lambda: page.microphone_hint.text() == FR("staff.devices.microphone.missing"), timeout=5_000
    )
    assert not page.camera.has_picture() and not page.level_bar.isVisible()
    qtbot.waitUntil(
        lambda: page.scanner_state.text() == FR("staff.devices.scanner.not_configured"), timeout=5_000
    )
    window.grab().save(str(tmp_path / "staff-devices-missing.png"))
