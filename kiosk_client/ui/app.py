"""Starting the Qt application around an engine: the loop thread, the bridge, the window."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
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
from ..system.service_manager import ServiceNotifier, Watchdog, service_watchdog
from .bridge import BridgeFormView, BridgeVideoSink, EngineBridge
from .main_thread_gc import MainThreadGarbageCollector
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
    MainThreadGarbageCollector(app)  # before the engine's thread allocates anything
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
    service = _start_service_watchdog(app, loop, bridge)
    # Staged updates: the window is up (as READY=1 says to systemd); with the central reached, the
    # engine writes the health mark the updater waits for before it keeps a new version.
    shown: list[bool] = []

    def window_up() -> None:
        # On the engine's thread, by every state it publishes (as `ready` below): once.
        if not shown:
            shown.append(True)
            engine.window_shown()

    bridge.state_changed.connect(window_up)
    _fault_injection(loop)

    def engine_stopped(future: object) -> None:
        if not run.cancelled() and run.exception() is not None:
            log.error("engine stopped: %r", run.exception())

    run.add_done_callback(engine_stopped)
    try:
        return app.exec()
    finally:
        if service is not None:
            notifier, watchdog = service
            if watchdog is not None:
                watchdog.stop()
            notifier.notify("STOPPING=1")
            notifier.close()
        loop.stop()
        window.close()


def _start_service_watchdog(
    app: QApplication, loop: LoopThread, bridge: EngineBridge
) -> tuple[ServiceNotifier, Watchdog | None] | None:
    """Under systemd: READY=1 once the window is up and the engine runs (its first state), then
    watchdog pings fed by both threads."""
    service = service_watchdog()
    if service is None:
        return None
    notifier, watchdog = service
    if watchdog is not None:
        every_s = watchdog.interval_s / 8
        qt_feed = QTimer(app)
        qt_feed.timeout.connect(lambda: watchdog.alive("qt"))
        qt_feed.start(max(50, int(every_s * 1000)))

        async def engine_feed() -> None:
            while True:
                watchdog.alive("engine")
                await asyncio.sleep(every_s)

        loop.submit(engine_feed())
        watchdog.start()
        log.info("systemd watchdog: %.1f s", watchdog.interval_s)

    sent: list[bool] = []

    def ready() -> None:
        # Called on the engine's thread, by every state it publishes: READY once (disconnecting here
        # raced a second state already on its way, and READY went twice).
        if not sent:
            sent.append(True)
            notifier.notify("READY=1", "STATUS=the kiosk is up")

    bridge.state_changed.connect(ready)
    return service


def _fault_injection(loop: LoopThread) -> None:
    """For `bench recovery` and its tests only, never set on a terminal: SIGUSR2 hangs the Qt thread
    for good (the engine's loop runs on), SIGUSR1 the engine's loop (the screen runs on), as a
    deadlock in either would."""
    if os.environ.get("KIOSK_FAULT_INJECTION") != "1":
        return
    log.warning("fault injection is on (KIOSK_FAULT_INJECTION=1): SIGUSR1/SIGUSR2 hang a thread")

    def hang_forever() -> None:
        while True:
            time.sleep(3600)

    def hang_qt(*_: object) -> None:
        log.error("fault injection: the Qt thread hangs now")
        hang_forever()

    def hang_engine(*_: object) -> None:
        log.error("fault injection: the engine's loop hangs now")
        loop.loop.call_soon_threadsafe(hang_forever)

    signal.signal(signal.SIGUSR2, hang_qt)
    signal.signal(signal.SIGUSR1, hang_engine)
