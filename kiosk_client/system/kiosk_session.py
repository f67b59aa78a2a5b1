"""The kiosk session: a Wayland compositor whose only client is the kiosk, and nothing that leaves it.

The compositor is sway, run with a configuration of our own, rather than cage: Debian 12's cage
(0.1.4, wlroots 0.15) implements no virtual-keyboard protocol, so neither the tests (wtype) nor any
on-screen keyboard tool can type into it, and on its headless backend it presents only its first frame,
so no screenshot shows what the citizen sees. sway 1.7, on the same wlroots, does both; given a
configuration without a single key binding it is as closed as cage: every key goes to the kiosk, which
ignores shortcuts (see ui/main_window.py), and there is no command to exit, kill or switch anything.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import KioskError

log = logging.getLogger(__name__)

# The colour behind the kiosk's window: never seen when the kiosk fills the screen, so a screenshot
# showing any of it means something else is on screen (or nothing is).
BACKGROUND = "#0b1e33"
HEADLESS_OUTPUT = "HEADLESS-1"
APP_ID = "fr.franceservices.kiosk"  # the kiosk's Wayland app_id (QGuiApplication.desktopFileName)


class SessionError(KioskError):
    """The kiosk session cannot start (no compositor installed, no runtime folder)."""


@dataclass(frozen=True, slots=True)
class SessionOptions:
    command: tuple[str, ...]  # the kiosk itself, run inside the session
    touch_screen: bool = False  # the pointer is never shown
    headless_size: tuple[int, int] | None = None  # tests and screenshots: no screen, this size
    background: str = BACKGROUND


def sway_config(options: SessionOptions, launcher: Path) -> str:
    """sway's whole configuration (nothing of /etc/sway/config is read: it has bindings)."""
    lines = [
        "# Written by `kiosk-client session`: the kiosk is the only client; there is no key binding.",
        "xwayland disable",
        # Ctrl+Alt+F1…F12 become plain F keys (no VT switching) and Ctrl+Alt+Backspace nothing.
        "input type:keyboard xkb_options srvrkeys:none",
        "default_border none",
        "default_floating_border none",
        "focus_follows_mouse no",
        "mouse_warping none",
        "focus_on_window_activation focus",
        "swaynag_command -",  # a configuration warning must not open a bar over the kiosk
        # Every window the kiosk opens fills the screen; nothing idles the screen off (there is no
        # swayidle, and an inhibitor says so to any that would be added).
        "for_window [all] fullscreen enable",
        "for_window [all] inhibit_idle open",
        f"output * bg {options.background} solid_color",
        "output * dpms on",
    ]
    if options.headless_size is not None:
        width, height = options.headless_size
        lines.append(f"output {HEADLESS_OUTPUT} resolution {width}x{height}")
    if options.touch_screen:
        lines.append("seat * hide_cursor 1")  # hidden a millisecond after any movement
    lines.append(f"exec {shlex.quote(str(launcher))}")
    return "\n".join(lines) + "\n"


def launcher_script(command: Sequence[str]) -> str:
    """Runs the kiosk; when it ends, for whatever reason, the whole session ends with its status, so
    the service manager starts a fresh one (never a compositor with no kiosk in it)."""
    return f"#!/bin/sh\n{shlex.join(command)}\nstatus=$?\nswaymsg exit >/dev/null 2>&1\nexit $status\n"


def session_environment(base: Mapping[str, str], options: SessionOptions) -> dict[str, str]:
    env = dict(base)
    env.update(
        QT_QPA_PLATFORM="wayland",
        QT_WAYLAND_DISABLE_WINDOWDECORATION="1",
        XDG_CURRENT_DESKTOP="sway",
        XDG_SESSION_TYPE="wayland",
    )
    env.pop("DISPLAY", None)  # the kiosk must not open a window on some other X server
    env.pop("WAYLAND_DISPLAY", None)
    if options.headless_size is not None:
        env.update(
            WLR_BACKENDS="headless",
            WLR_RENDERER="pixman",
            WLR_LIBINPUT_NO_DEVICES="1",
            WLR_HEADLESS_OUTPUTS="1",
        )
    return env


def prepare(options: SessionOptions, runtime_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Writes the session's files in the runtime folder; returns sway's command line and environment."""
    sway = shutil.which("sway")
    if sway is None:
        raise SessionError("sway is not installed (Debian: apt install sway)")
    if not runtime_dir.is_dir():
        raise SessionError(f"the runtime folder {runtime_dir} does not exist (XDG_RUNTIME_DIR)")
    folder = runtime_dir / "kiosk-session"
    folder.mkdir(mode=0o700, exist_ok=True)
    launcher = folder / "run-kiosk"
    launcher.write_text(launcher_script(options.command), encoding="utf-8")
    launcher.chmod(0o700)
    config = folder / "sway.conf"
    config.write_text(sway_config(options, launcher), encoding="utf-8")
    env = session_environment(os.environ, options)
    env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return [sway, "--config", str(config)], env


def set_default_audio_devices() -> None:
    """The echo-cancelled nodes the installer sets up become the defaults the kiosk's ALSA "default"
    reaches. Best effort: a kiosk without them still starts (and says so in its self-test)."""
    if shutil.which("pactl") is None:
        return
    for what, node in (("source", "kiosk_ec_source"), ("sink", "kiosk_ec_sink")):
        try:
            subprocess.run(["pactl", f"set-default-{what}", node], check=True, capture_output=True, timeout=5)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("could not make %s the default %s: %s", node, what, exc)


def exec_session(options: SessionOptions, runtime_dir: Path) -> None:
    """Replaces this process by the compositor: under systemd, sway is the service's main process."""
    argv, env = prepare(options, runtime_dir)
    if options.headless_size is None:
        set_default_audio_devices()
    log.info("starting the kiosk session: %s", shlex.join(argv))
    os.execve(argv[0], argv, env)
