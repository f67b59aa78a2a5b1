"""Starting the Qt application around an engine: the loop thread, the bridge, the window."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from ..adapters.media_tracks import LatestFrame
from ..app import form_frames
from ..core.engine import KioskEngine
from ..core.events import KioskEvent, SessionRecord
from ..core.ports import FormViewPort, VideoSink
from ..core.settings import AccessibilitySettings, FormSettings
from ..runtime import LoopThread, shorten_gil_switch_interval
from ..system.kiosk_session import APP_ID
from .bridge import BridgeFormView, BridgeVideoSink, EngineBridge
from .main_window import KioskWindow

log = logging.getLogger(__name__)

FORM_VIEW_CHROMIUM_FLAGS = ("--disable-threaded-scrolling", "--disable-smooth-scrolling")

EngineMaker = Callable[[Callable[[KioskEvent], None], VideoSink, FormViewPort, LatestFrame], KioskEngine]


def prepare_qt_environment() -> None:
    """Offscreen when there is no display; QtWebEngine's sandbox cannot run as root (containers, CI)."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # No remote debugging of the form view, whatever the environment says.
    os.environ.pop("QTWEBENGINE_REMOTE_DEBUGGING", None)
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    if "remote-debugging" in flags:
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = " ".join(
            f for f in flags.split() if "remote-debugging" not in f
        )
    # Scrolling on the page's main thread, in the same animation frame as the form view's masks are
    # measured in: Chromium's compositor would otherwise scroll the picture ahead of the layout the
    # masks were measured on (see form_stream).
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    wanted = [f for f in FORM_VIEW_CHROMIUM_FLAGS if f not in flags.split()]
    if wanted:
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = " ".join([*flags.split(), *wanted])
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "QTWEBENGINE_DISABLE_SANDBOX" not in os.environ:
        log.warning("running as root: QtWebEngine's sandbox is disabled (use a dedicated user in production)")
        os.environ["QTWEBENGINE_DISABLE_SANDBOX"] = "1"
    shorten_gil_switch_interval()


def run_kiosk_app(
    make_engine: EngineMaker,
    *,
    language: str,
    fullscreen: bool,
    exit_after_session: bool = False,
    on_session_finished: Callable[[SessionRecord], None] | None = None,
    max_seconds: float | None = None,
    form_settings: FormSettings | None = None,
    accessibility: AccessibilitySettings | None = None,
) -> int:
    prepare_qt_environment()
    # The kiosk session's compositor knows the kiosk by this (Wayland app_id).
    QApplication.setDesktopFileName(APP_ID)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    loop = LoopThread()
    loop.start()
    bridge = EngineBridge(loop)
    frames = form_frames()
    engine = make_engine(bridge.publish, BridgeVideoSink(bridge), BridgeFormView(bridge), frames)
    window = KioskWindow(
        bridge,
        engine,
        language,
        form_settings or FormSettings(),
        frames,
        accessibility or AccessibilitySettings(),
    )
    if fullscreen:
        window.enter_kiosk_mode()
    else:
        window.resize(1280, 800)
        window.show()

    def finished(record: SessionRecord) -> None:
        if on_session_finished is not None:
            on_session_finished(record)
        if exit_after_session:
            QTimer.singleShot(500, app.quit)

    bridge.session_finished.connect(finished)
    # Qt's loop does not let Python see Ctrl+C: quit on SIGINT/SIGTERM, and wake the interpreter often.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: app.quit())
    wake = QTimer(app)
    wake.start(250)
    wake.timeout.connect(lambda: None)
    if max_seconds is not None:
        QTimer.singleShot(int(max_seconds * 1000), app.quit)
    run = loop.submit(engine.run())

    def engine_stopped(future: object) -> None:
        if not run.cancelled() and run.exception() is not None:
            log.error("engine stopped: %r", run.exception())

    run.add_done_callback(engine_stopped)
    try:
        return app.exec()
    finally:
        loop.stop()
        window.close()
