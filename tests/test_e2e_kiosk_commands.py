"""End to end: IT staff ask a real kiosk (the engine with its window, offscreen) for a screenshot through
the reference central; the citizen's screen says so, and the PNG the central serves is the kiosk's
window, at its size."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from kiosk_client.app import build_engine
from kiosk_client.runtime import LoopThread
from kiosk_client.ui.bridge import BridgeVideoSink, EngineBridge
from kiosk_client.ui.i18n import CATALOGUE
from kiosk_client.ui.main_window import KioskWindow

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, kiosk_settings

pytestmark = pytest.mark.e2e


def test_it_staff_get_a_screenshot_of_the_kiosks_own_window(qtbot: QtBot, site: Site, tmp_path: Path) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    engine_loop = LoopThread("engine")
    engine_loop.start()
    bridge = EngineBridge(engine_loop)
    recorder = Recorder()

    def publish(event: Any) -> None:
        recorder(event)
        bridge.publish(event)

    engine = build_engine(
        kiosk_settings(site.url, tmp_path),
        token,
        publish,
        BridgeVideoSink(bridge),
        ended_screen=timedelta(seconds=1),
        heartbeat_s=0.2,  # commands ride on the heartbeat's answer: no 30 s wait in a test
    )
    window = KioskWindow(bridge, engine, "fr")
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    engine_loop.submit(engine.run())
    try:
        # Idle, and the start-up reset check over (a screenshot is refused while it runs).
        qtbot.waitUntil(
            lambda: window.stack.currentWidget() is window.idle and not engine.reset.checking, timeout=15_000
        )
        command = site.admin.send_command(site.kiosk_id, "screenshot")
        notice = window.fleet_commands.notice
        qtbot.waitUntil(notice.isVisible, timeout=10_000)
        assert notice.text() == CATALOGUE["fr"]["command.screenshot_notice"]
        assert (
            notice.text() == "Le service d\u2019assistance regarde l\u2019écran de la borne."
        )  # French typography

        last: list[dict[str, Any]] = []

        def finished() -> bool:
            if last and time.monotonic() - last[0]["_at"] < 0.1:
                return False  # ask the central at most ten times a second
            [listed] = [c for c in site.admin.commands(site.kiosk_id) if c["id"] == command["id"]]
            last[:] = [{**listed, "_at": time.monotonic()}]
            return listed["state"] not in ("pending", "delivered")

        qtbot.waitUntil(finished, timeout=15_000)
        listed = last[0]
        assert listed["state"] == "done", listed
        png = site.admin.screenshot(str(command["id"]))
        image = QImage.fromData(png, "PNG")
        assert not image.isNull()
        ratio = window.devicePixelRatioF()
        assert (image.width(), image.height()) == (
            round(window.width() * ratio),
            round(window.height() * ratio),
        )
        assert (listed["screenshot"]["width"], listed["screenshot"]["height"]) == (
            image.width(),
            image.height(),
        )
        # The picture is the kiosk's idle screen with the notice on it (not a blank or foreign surface).
        colours = {
            image.pixel(x, y) for x in range(0, image.width(), 40) for y in range(0, image.height(), 40)
        }
        assert len(colours) > 2
        assert notice.isVisible()  # it stays a few seconds after the picture
    finally:
        engine_loop.stop()
