"""The kiosk side of `kiosk-client bench control` (see tools/bench_control.py): Qt is needed for the
form view and its streamer, so it lives here."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from ..tools.bench_control import COLOURS, summarise

# A small square where the clerk looks (bench_control_clerk.REGION): a change as small as typing
# makes, so the bench's own measure does not load the kiosk with full-page repaints.
MARKER = """(() => {
  let m = document.getElementById('bench-marker');
  if (!m) {
    m = document.createElement('div');
    m.id = 'bench-marker';
    m.style.cssText = 'position:fixed;left:20px;top:300px;width:100px;height:100px;z-index:99999';
    document.body.appendChild(m);
  }
  m.style.background = '%s';
  return 1;
})()"""


def run_kiosk_side(
    central_url: str,
    token: str,
    clerk_token: str,
    appointment_id: str,
    workdir: Path,
    inputs: int,
    interval_s: float,
    timeout_s: float,
) -> dict[str, Any]:
    """Runs until the clerk process is done; the reference central is the caller's."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from ..app import build_engine, form_frames
    from ..core.control_protocol import InputMessage
    from ..core.navigation import NavigationPolicy
    from ..core.session import Phase
    from ..core.settings import AudioSettings, CameraSettings, Settings
    from ..runtime import LoopThread
    from .app import prepare_qt_environment
    from .bridge import BridgeFormView, EngineBridge
    from .form_stream import FormStreamer
    from .form_view import Done, FormView
    from .main_thread_gc import MainThreadGarbageCollector

    prepare_qt_environment()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    MainThreadGarbageCollector(app)
    start_url = f"{central_url}/demo-form/"
    loop = LoopThread()
    loop.start()
    bridge = EngineBridge(loop)
    frames = form_frames()
    settings = Settings(
        central_url=central_url,
        data_dir=workdir / "kiosk",
        camera=CameraSettings(device=None),
        audio=AudioSettings(None, None),
    )
    engine = build_engine(settings, token, bridge.publish, None, BridgeFormView(bridge), frames)
    form = FormView()
    form.resize(1280, 800)
    form.show()
    streamer = FormStreamer(form, frames)
    injected: dict[int, float] = {}

    def apply(message: InputMessage, admitted: Callable[[], bool], done: Done) -> None:
        def stamped(code: str | None, reason: str) -> None:
            injected[message.seq] = time.time()  # the event has just been delivered to the view
            done(code, reason)

        form.apply(message, admitted, stamped)

    bridge.form_input.connect(apply)
    status: dict[str, Any] = {"granted": False, "form": False}

    def on_state(snapshot: Any) -> None:
        if snapshot.session.phase is Phase.IN_CALL and not status["form"]:
            form.start_session(start_url, NavigationPolicy(snapshot.form_origins))
            status["form"] = True
        if snapshot.control == "requested":
            bridge.submit(lambda: engine.answer_control(True))  # the bench plays the citizen
        if snapshot.control == "granted":
            status["granted"] = True

    bridge.state_changed.connect(on_state)
    loop.submit(engine.run())
    clerk_out = workdir / "clerk.json"
    clerk_process = subprocess.Popen(
        [
            sys.executable, "-m", "kiosk_client.tools.bench_control_clerk", "--central", central_url,
            f"--token={clerk_token}", "--appointment", appointment_id, "--inputs", str(inputs),
            "--interval", str(interval_s), "--out", str(clerk_out), "--save-frame", str(workdir / "clerk-last-frame.png"),
        ]
    )  # fmt: skip
    changes: list[tuple[float, tuple[int, int, int]]] = []
    cpu = psutil.Process()
    window: dict[str, float] = {}

    def change_colour() -> None:
        if clerk_process.poll() is not None:
            if "end" not in window:
                window["end"] = time.monotonic()
                window["cpu"] = cpu.cpu_percent()
            app.quit()
            return
        if not status["granted"] or form.page is None or streamer.frames < 5:
            return
        if "start" not in window:
            window["start"] = time.monotonic()
            cpu.cpu_percent()  # starts the CPU measure
        colour = COLOURS[len(changes) % len(COLOURS)]
        changes.append((time.time(), colour))
        form.page.runJavaScript(MARKER % f"rgb{colour}")

    ticker = QTimer()
    ticker.timeout.connect(change_colour)
    ticker.start(250)
    QTimer.singleShot(int(timeout_s * 1000), app.quit)
    app.exec()
    ticker.stop()
    streamer.stop()
    loop.stop()
    form.end_session()
    if clerk_process.poll() is None:
        clerk_process.kill()
    clerk_process.wait()
    clerk_result = (
        json.loads(clerk_out.read_text()) if clerk_out.exists() else {"sent": {}, "frames": [], "errors": 0}
    )
    return summarise(clerk_result, injected, changes, window, streamer.grab_ms)
