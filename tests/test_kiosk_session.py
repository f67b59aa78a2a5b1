"""The kiosk session for real: sway's headless backend with the kiosk (the demo, full screen) as its only
client. A screenshot (grim) shows the kiosk and nothing else; the keys that leave or close an app
elsewhere (wtype) leave it in place, the only client, full screen."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from kiosk_client.system.kiosk_session import APP_ID, BACKGROUND

pytestmark = [pytest.mark.e2e, pytest.mark.long]

WIDTH, HEIGHT = 1280, 720
# sway refuses to run as root: as root, the session runs as uid 1000 in a user namespace whose uid
# 1000 is root outside (so it can still read the virtual environment under /root).
AS_USER = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]

ESCAPE_KEYS = {
    "Alt+F4": ["-M", "alt", "-k", "F4", "-m", "alt"],
    "Ctrl+Q": ["-M", "ctrl", "q", "-m", "ctrl"],
    "Ctrl+W": ["-M", "ctrl", "w", "-m", "ctrl"],
    "Alt+Tab": ["-M", "alt", "-k", "Tab", "-m", "alt"],
    "Super": ["-M", "logo", "-m", "logo"],
    "Super+Return": ["-M", "logo", "-k", "Return", "-m", "logo"],  # sway's default: a terminal
    "Super+Shift+E": ["-M", "logo", "-M", "shift", "e", "-m", "shift", "-m", "logo"],  # sway's: exit
    "Ctrl+Alt+F2": ["-M", "ctrl", "-M", "alt", "-k", "F2", "-m", "alt", "-m", "ctrl"],
    "Ctrl+Alt+BackSpace": ["-M", "ctrl", "-M", "alt", "-k", "BackSpace", "-m", "alt", "-m", "ctrl"],
    "F11": ["-k", "F11"],
    "Escape": ["-k", "Escape"],
}

# How the kiosk's log names them (Qt's), except modifiers pressed alone.
QT_NAMES = ("Alt+F4", "Ctrl+Q", "Ctrl+W", "Alt+Tab", "Meta+Return", "Meta+Shift+E", "Ctrl+Alt+F2")
QT_NAMES += ("Ctrl+Alt+Backspace", "F11", "Esc")


@dataclass
class Session:
    process: subprocess.Popen[bytes]
    runtime: Path
    log: Path

    def env(self) -> dict[str, str]:
        socket = next(self.runtime.glob("sway-ipc.*.sock"))
        display = next(p.name for p in self.runtime.glob("wayland-*") if not p.name.endswith(".lock"))
        return {
            **os.environ,
            "XDG_RUNTIME_DIR": str(self.runtime),
            "SWAYSOCK": str(socket),
            "WAYLAND_DISPLAY": display,
        }

    def run(self, *argv: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*AS_USER, *argv], env=self.env(), capture_output=True, timeout=20)

    def views(self) -> list[dict[str, Any]]:
        done = self.run("swaymsg", "-r", "-t", "get_tree")
        assert done.returncode == 0, done.stderr
        found: list[dict[str, Any]] = []

        def walk(node: dict[str, Any]) -> None:
            if node.get("pid"):
                found.append(node)
            for child in node.get("nodes", []) + node.get("floating_nodes", []):
                walk(child)

        walk(json.loads(done.stdout))
        return found

    def screenshot(self, path: Path) -> np.ndarray:
        done = self.run("grim", str(path))
        assert done.returncode == 0, done.stderr
        image = cv2.imread(str(path))
        assert image is not None
        return image


def require_tools() -> None:
    # Installed by scripts/bootstrap.sh (as root): a missing one is a set-up error, not a skip.
    missing = [t for t in ("sway", "swaymsg", "grim", "wtype", "unshare") if shutil.which(t) is None]
    assert not missing, f"missing {missing}: run scripts/bootstrap.sh as root"


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    require_tools()
    runtime, home = tmp_path / "runtime", tmp_path / "home"
    runtime.mkdir(mode=0o700)
    home.mkdir()
    log = tmp_path / "session.log"
    kiosk = [sys.executable, "-m", "kiosk_client", "-v", "demo", "--fullscreen", "--camera", "none"]
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")},
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        # In the test's user namespace Chromium's sandbox cannot set itself up (on a terminal the kiosk
        # user keeps it).
        "QTWEBENGINE_DISABLE_SANDBOX": "1",
    }
    argv = [sys.executable, "-m", "kiosk_client", "session", "--headless", f"{WIDTH}x{HEIGHT}", "--", *kiosk]
    with open(log, "wb") as out:
        process = subprocess.Popen([*AS_USER, *argv], env=env, stdout=out, stderr=subprocess.STDOUT)
    started = Session(process, runtime, log)
    try:
        yield started
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def wait_for_kiosk(session: Session, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert session.process.poll() is None, session.log.read_text(errors="replace")[-3000:]
        if list(session.runtime.glob("sway-ipc.*.sock")):
            views = session.views()
            mapped = views and views[0].get("app_id") == APP_ID and views[0]["rect"]["width"] == WIDTH
            # Drawn, not only mapped: the engine has published its first state.
            if mapped and "session:" in session.log.read_text(errors="replace"):
                time.sleep(1.0)
                return views[0]
        time.sleep(0.5)
    raise AssertionError(
        "the kiosk never filled the screen:\n" + session.log.read_text(errors="replace")[-3000:]
    )


def background_pixels(image: np.ndarray) -> int:
    r, g, b = (int(BACKGROUND[i : i + 2], 16) for i in (1, 3, 5))
    return int(np.count_nonzero(np.all(np.abs(image.astype(int) - (b, g, r)) <= 2, axis=2)))


def assert_only_the_kiosk(session: Session, kiosk: dict[str, Any], shot: Path) -> None:
    views = session.views()
    assert [(v["pid"], v["app_id"]) for v in views] == [(kiosk["pid"], APP_ID)], views
    assert views[0]["fullscreen_mode"] == 1 and views[0]["focused"], views[0]
    assert views[0]["rect"] == {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT}
    image = session.screenshot(shot)
    assert image.shape[:2] == (HEIGHT, WIDTH)
    assert background_pixels(image) == 0, "the compositor's background shows: something else is on screen"
    assert float(image.std()) > 10, "a blank screen, not the kiosk"


def test_the_kiosk_is_the_only_client_and_no_key_leaves_it(session: Session, tmp_path: Path) -> None:
    kiosk = wait_for_kiosk(session)
    assert_only_the_kiosk(session, kiosk, tmp_path / "before.png")
    for name, keys in ESCAPE_KEYS.items():
        # A new virtual keyboard's first key can arrive before its keymap: a pause first.
        typed = session.run("wtype", "-s", "200", *keys)
        assert typed.returncode == 0, (name, typed.stderr)
        time.sleep(0.4)
        assert session.process.poll() is None, f"{name} ended the session"
        assert_only_the_kiosk(session, kiosk, tmp_path / f"after-{name}.png")
    # The keys did reach the kiosk, which ignored them (not lost on the way; its log may lag a little).
    deadline = time.monotonic() + 15
    while True:
        log = session.log.read_text(errors="replace")
        unseen = [name for name in QT_NAMES if f"a key was ignored: {name}\n" not in log]
        if not unseen or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not unseen, (unseen, log[-3000:])


def test_the_session_ends_with_the_kiosk_so_the_service_manager_starts_a_new_one(tmp_path: Path) -> None:
    require_tools()
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    argv = [
        sys.executable,
        "-m",
        "kiosk_client",
        "session",
        "--headless",
        "640x480",
        "--",
        "sh",
        "-c",
        "exit 7",
    ]
    done = subprocess.run([*AS_USER, *argv], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]  # sway itself exits cleanly…
    assert not list(runtime.glob("wayland-*.lock")), "the compositor is still running"
