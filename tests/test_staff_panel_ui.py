"""The staff panel on the kiosk's window (offscreen), against the real engine and a fake central: the
hidden gesture, the PIN pad, a lock-out, a walk-in code, out of service and back, closing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, FakeLiveDevices, MemoryCache
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.errors import CentralUnavailable
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
    # The animateur's words, not the engine's states.
    info = panel.info.text().replace("\xa0", " ")
    assert "Session : aucune en cours" in info and "idle" not in info
    assert "caméra : OK, micro : OK" in info, info
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


def walk_in_appointment(ident: str) -> Appointment:
    start = CentralClock(SystemClock()).now()
    return Appointment(ident, "CAF", "Mme Durand", start, start + timedelta(minutes=30))


def open_walk_in_page(window: KioskWindow, qtbot: QtBot) -> None:
    panel = window.staff_panel
    tap_corner(window)
    type_digits(window, PIN)
    qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
    panel.walk_in.click()
    assert panel.mode == "code" and panel.services.isVisible()
    panel._services_timer.setInterval(200)  # the page asks every 5 s; the test cannot wait that long


def shown_services(window: KioskWindow) -> list[str]:
    box = window.staff_panel.services
    return [b.text() for b in box.buttons.values() if b.isVisibleTo(box)]


def test_the_walk_in_page_lists_the_services_with_a_clerk_and_a_touch_starts_the_session(
    kiosk: tuple[KioskWindow, KioskEngine, FakeCentral], qtbot: QtBot, tmp_path: Path
) -> None:
    window, engine, central = kiosk
    central.walk_in_clerks = {
        "CAF": [walk_in_appointment("w1")],
        "CPAM": [],  # nobody available: not offered
        "France Travail": [walk_in_appointment("w2"), walk_in_appointment("w3")],
    }
    panel = window.staff_panel
    open_walk_in_page(window, qtbot)
    assert panel.keypad.isVisible()  # the code's keypad stays, beside the services
    qtbot.waitUntil(
        lambda: (
            shown_services(window)
            == ["CAF\n1 conseiller disponible", "France Travail\n2 conseillers disponibles"]
        ),
        timeout=5_000,
    )
    assert not panel.services.status.isVisible()
    assert panel.services.title.text() == FR("staff.walk_in_services")
    window.grab().save(str(tmp_path / "staff-walk-in.png"))
    # Refreshed while the page is open.
    central.walk_in_clerks["CPAM"].append(walk_in_appointment("w4"))
    qtbot.waitUntil(lambda: len(shown_services(window)) == 3, timeout=5_000)
    assert shown_services(window)[1] == "CPAM\n1 conseiller disponible"
    panel.services.buttons["CAF"].click()
    qtbot.waitUntil(lambda: bool(central.offers), timeout=5_000)
    assert central.offers[0][0] == "w1"
    qtbot.waitUntil(lambda: panel.message.text() == FR("staff.walk_in_started"), timeout=5_000)
    assert panel.mode == "panel" and not panel.services.isVisible()
    assert not panel._services_timer.isActive()  # no more asking once the page is left
    panel.close_button.click()
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.waiting, timeout=5_000)
    assert engine.session.appointment is not None and engine.session.appointment.id == "w1"


def test_the_walk_in_page_says_calmly_when_nobody_is_available_or_something_fails(
    kiosk: tuple[KioskWindow, KioskEngine, FakeCentral], qtbot: QtBot, tmp_path: Path
) -> None:
    window, engine, central = kiosk
    panel = window.staff_panel
    status = panel.services.status
    open_walk_in_page(window, qtbot)
    qtbot.waitUntil(lambda: status.text() == FR("staff.walk_in_services_none"), timeout=5_000)
    assert status.isVisible() and shown_services(window) == []
    window.grab().save(str(tmp_path / "staff-walk-in-none.png"))

    # The central unreachable: said in plain words, and the list comes back by itself.
    central.failure = CentralUnavailable("down")
    qtbot.waitUntil(lambda: status.text() == FR("staff.walk_in.central_unreachable"), timeout=5_000)
    central.failure = None
    central.walk_in_clerks = {"CAF": [walk_in_appointment("w1")]}
    qtbot.waitUntil(lambda: shown_services(window) == ["CAF\n1 conseiller disponible"], timeout=5_000)
    assert not status.isVisible()

    # Taken by another kiosk between the list and the touch: said, nothing starts, the list follows.
    central.walk_in_clerks["CAF"].clear()
    panel._services_timer.stop()  # the touch must meet the list as it was shown
    panel.services.buttons["CAF"].click()
    no_clerk = FR("staff.walk_in.no_clerk_available")
    qtbot.waitUntil(lambda: panel.message.text() == no_clerk, timeout=5_000)
    assert panel.mode == "code" and panel.services.isVisible()
    qtbot.waitUntil(lambda: status.text() == FR("staff.walk_in_services_none"), timeout=5_000)
    assert not central.offers and engine.session.phase is Phase.IDLE
    window.grab().save(str(tmp_path / "staff-walk-in-refused.png"))

    # Out of service: the page says so instead of offering services.
    central.walk_in_clerks = {"CAF": [walk_in_appointment("w2")]}
    panel.close_button.click()
    tap_corner(window)
    type_digits(window, PIN)
    qtbot.waitUntil(lambda: panel.mode == "panel", timeout=5_000)
    panel.service.click()
    qtbot.waitUntil(lambda: panel.service.text() == FR("staff.back_in_service"), timeout=5_000)
    panel.walk_in.click()
    qtbot.waitUntil(lambda: status.text() == FR("staff.walk_in.out_of_service"), timeout=5_000)
    assert shown_services(window) == []


def test_the_walk_in_page_in_english(qtbot: QtBot) -> None:
    from kiosk_client.core.engine import WalkInServices
    from kiosk_client.core.models import WalkInService
    from kiosk_client.ui.staff_panel import WalkInServicesBox

    box = WalkInServicesBox()
    en = Translator("en")
    box.show_services(WalkInServices(), en)
    assert box.status.text() == "No clerk is available at the moment. The list updates by itself."
    box.show_services(WalkInServices((WalkInService("CAF", 1), WalkInService("CPAM", 3))), en)
    assert [b.text() for b in box.buttons.values()] == ["CAF\n1 clerk available", "CPAM\n3 clerks available"]
    assert box.title.text() == "Or a service with a clerk available:"
    # A very long name from the central is cut, never stretching the page; the button says it all.
    box.show_services(WalkInServices((WalkInService("Caisse " * 40, 1),)), en)
    [long] = box.buttons.values()
    assert long.text().split("\n")[0].endswith("…") and long.toolTip() == "Caisse " * 40
    box.deleteLater()


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_the_walk_in_page_fits_big_and_readable_at_kiosk_sizes(
    kiosk: tuple[KioskWindow, KioskEngine, FakeCentral], qtbot: QtBot, tmp_path: Path, size: tuple[int, int]
) -> None:
    """Measured as `kiosk-client audit screens` measures the citizen's screens: nothing off the screen or
    cut, touch targets and text large enough, text contrasted. PNGs in the test's tmp_path."""
    from kiosk_client.ui.screen_audit import Findings, measure

    window, _, central = kiosk
    window.resize(*size)
    central.walk_in_clerks = {
        "CAF — allocations familiales": [walk_in_appointment("w1")],
        "CPAM": [walk_in_appointment("w2"), walk_in_appointment("w3")],
        "France Travail": [walk_in_appointment("w4")],
    }
    open_walk_in_page(window, qtbot)
    qtbot.waitUntil(lambda: len(shown_services(window)) == 3, timeout=5_000)
    findings = Findings()
    measure(window, "listed", size, findings).save(str(tmp_path / f"walk-in-{size[0]}x{size[1]}.png"))
    central.walk_in_clerks = {}
    status = window.staff_panel.services.status
    qtbot.waitUntil(lambda: status.text() == FR("staff.walk_in_services_none"), timeout=5_000)
    measure(window, "none", size, findings).save(str(tmp_path / f"walk-in-none-{size[0]}x{size[1]}.png"))
    assert findings.offscreen == [] and findings.clipped == [] and findings.larger_than_screen == []
    # The panel's own widgets (the idle screen under it is measured by the screens' audit).
    panel = {window.staff_panel.objectName()} | {
        w.objectName() for w in window.staff_panel.findChildren(QWidget) if w.objectName()
    }

    def ours(values: list[tuple[float, str]]) -> list[float]:
        return [value for value, where in values if where.split("/", 1)[1] in panel]

    assert min(ours(findings.targets)) >= 72, findings.targets
    assert min(ours(findings.text_px)) >= 22, findings.text_px
    assert min(ours(findings.contrasts)) >= 4.5, findings.contrasts


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
