"""What the kiosk session is made of: sway's configuration, the `session` command's checks, the systemd
unit that starts it on boot, and the Debian packages Qt needs on a fresh terminal."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import PySide6
import pytest

from kiosk_client.cli import main
from kiosk_client.system.kiosk_session import (
    SessionError,
    SessionOptions,
    launcher_script,
    prepare,
    session_environment,
    sway_config,
)

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = Path("/run/user/1000/kiosk-session/run-kiosk")


def test_sway_is_given_no_key_binding_and_no_way_out() -> None:
    config = sway_config(SessionOptions(("kiosk",)), LAUNCHER)
    commands = [line.split()[0] for line in config.splitlines() if line and not line.startswith("#")]
    assert not {"bindsym", "bindcode", "bindswitch", "bar", "include", "mode"} & set(commands), config
    assert "input type:keyboard xkb_options srvrkeys:none" in config  # no Ctrl+Alt+F* VT switch
    assert "xwayland disable" in config
    assert "for_window [all] fullscreen enable" in config
    assert "for_window [all] inhibit_idle open" in config
    assert config.splitlines()[-1] == f"exec {LAUNCHER}"
    assert "hide_cursor" not in config and "HEADLESS" not in config


def test_a_touch_screen_hides_the_pointer_and_headless_sets_the_size() -> None:
    config = sway_config(SessionOptions(("kiosk",), touch_screen=True, headless_size=(1366, 768)), LAUNCHER)
    assert "seat * hide_cursor 1" in config
    assert "output HEADLESS-1 resolution 1366x768" in config


def test_the_launcher_ends_the_session_with_the_kiosk() -> None:
    script = launcher_script(["/opt/kiosk client/bin/kiosk-client", "run", "--config", "/etc/k.toml"])
    assert script.splitlines()[1] == "'/opt/kiosk client/bin/kiosk-client' run --config /etc/k.toml"
    assert "swaymsg exit" in script and script.rstrip().endswith("exit $status")


def test_the_kiosk_runs_on_wayland_and_never_on_another_display() -> None:
    base = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-9", "PATH": "/usr/bin"}
    env = session_environment(base, SessionOptions(("kiosk",)))
    assert env["QT_QPA_PLATFORM"] == "wayland" and "DISPLAY" not in env and "WAYLAND_DISPLAY" not in env
    assert "WLR_BACKENDS" not in env  # a real screen: sway finds the DRM device through logind
    headless = session_environment(base, SessionOptions(("kiosk",), headless_size=(800, 600)))
    assert headless["WLR_BACKENDS"] == "headless" and headless["WLR_RENDERER"] == "pixman"


def test_prepare_writes_private_files_or_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="runtime folder"):
        prepare(SessionOptions(("kiosk",)), tmp_path / "absent")
    argv, env = prepare(SessionOptions(("kiosk", "--flag")), tmp_path)
    folder = tmp_path / "kiosk-session"
    assert argv[1:] == ["--config", str(folder / "sway.conf")]
    assert env["XDG_RUNTIME_DIR"] == str(tmp_path)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "run-kiosk").stat().st_mode & 0o777 == 0o700


def test_the_session_command_refuses_bad_input_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert main(["session", "--headless", "big", "--", "true"]) == 2
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err
    assert main(["session", "--headless", "10x10", "--", "true"]) == 2
    broken = tmp_path / "kiosk.toml"
    broken.write_text("[kiosk]\ntouch_screen = 'yes'\n[central]\nurl = 'https://c.example.org'\n")
    assert main(["session", "--config", str(broken)]) == 2
    assert "kiosk.touch_screen: expected true or false" in capsys.readouterr().err
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert main(["session", "--", "true"]) == 1
    assert "XDG_RUNTIME_DIR" in capsys.readouterr().err
    assert not (tmp_path / "kiosk-session").exists()  # nothing written on a refusal


def test_the_boot_unit_passes_systemds_own_check(tmp_path: Path) -> None:
    unit = (ROOT / "installer" / "kiosk-session.service").read_text()
    [exec_start] = re.findall(r"^ExecStart=(.*)$", unit, re.M)
    assert exec_start.split()[1:3] == ["session", "--config"]
    # The unit names the installed path; here it is checked against this checkout's own command.
    local = unit.replace(exec_start.split()[0], str(Path(sys.executable).with_name("kiosk-client")))
    (tmp_path / "kiosk-session.service").write_text(local)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "kiosk-session.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "User=kiosk" in unit and "PAMName=login" in unit and "Restart=always" in unit


def qt_libraries() -> list[Path]:
    """The parts of the PySide6 wheel the kiosk loads (not the whole wheel: Qt3D, SQL drivers…)."""
    qt = Path(PySide6.__file__).parent / "Qt"
    libs = [
        qt / "lib" / f"libQt6{name}.so.6"
        for name in [
            "Core",
            "Gui",
            "Widgets",
            "Network",
            "DBus",
            "OpenGL",
            "WebEngineCore",
            "WebEngineWidgets",
            "Multimedia",
            "TextToSpeech",
            "WaylandClient",
            "XcbQpa",
        ]
    ]
    plugins = [
        p
        for folder in (
            "platforms",
            "wayland-shell-integration",
            "wayland-graphics-integration-client",
            "xcbglintegrations",
            "multimedia",
            "texttospeech",
            "tls",
            "imageformats",
            "platforminputcontexts",
        )
        for p in (qt / "plugins" / folder).glob("*.so")
    ]
    return [*libs, qt / "libexec" / "QtWebEngineProcess", *plugins]


def dependencies(packages: set[str]) -> set[str]:
    """What apt installs with these packages: their dependencies, recursively (from dpkg's own
    records, so no package list is needed)."""
    seen: set[str] = set()
    todo = set(packages)
    while todo:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\t${Depends}, ${Pre-Depends}\n", *sorted(todo)],
            capture_output=True,
            text=True,
        )
        seen |= todo
        todo = set()
        for line in done.stdout.splitlines():
            _, _, depends = line.partition("\t")
            for alternative in re.split(r"[,|]", depends):
                name = alternative.strip().split(" ")[0].split(":")[0]
                if name and name not in seen:
                    todo.add(name)
    return seen - packages


def test_every_library_qt_needs_comes_from_a_package_the_setup_installs() -> None:
    assert shutil.which("dpkg-query") and shutil.which("ldd"), "a Debian system is expected"
    listed = {
        line.strip()
        for line in (ROOT / "installer" / "qt-runtime-packages.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    needed: set[str] = set()
    missing: set[str] = set()
    for lib in qt_libraries():
        out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, timeout=60).stdout
        for line in out.splitlines():
            name, _, where = line.strip().partition(" => ")
            if where.startswith("not found"):
                missing.add(name)
            elif where.startswith("/") and "PySide6" not in where:
                needed.add(os.path.realpath(where.split()[0]))
    # Qt PDF is not shipped with the wheel's WebEngine build here, and the kiosk does not load it.
    assert missing <= {"libQt6Pdf.so.6"}, f"not installed: {sorted(missing)}"
    owners: set[str] = set()
    for path in needed:
        # Debian's merged /usr: dpkg may know the file under /lib.
        candidates = [path, path.replace("/usr/lib/", "/lib/", 1)]
        done = subprocess.run(["dpkg-query", "-S", *candidates], capture_output=True, text=True)
        found = {line.split(":")[0] for line in done.stdout.splitlines() if ":" in line}
        assert found, f"no package owns {path}"
        owners |= found
    installed = listed | dependencies(listed)
    unlisted = sorted(owners - installed)
    assert not unlisted, (
        f"Qt needs these packages, missing from installer/qt-runtime-packages.txt: {unlisted}"
    )
