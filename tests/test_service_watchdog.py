"""The systemd watchdog: sd_notify datagrams, pings only while both the Qt thread and the engine loop
answer, and a hang of either one in the real kiosk process asks for the kill at once."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk_client.system.service_manager import ServiceNotifier, Watchdog, service_watchdog, watchdog_interval
from kiosk_client.tools import bench_recovery
from kiosk_client.tools.recovery_kiosk import TOKEN_ENV

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pings_stop_when_one_part_is_silent_and_the_kill_is_asked_once() -> None:
    sent: list[str] = []
    clock = FakeClock()
    dog = Watchdog(sent.append, 15.0, ("qt", "engine"), clock, hang_after_s=6.0)
    assert dog.tick() and sent == ["WATCHDOG=1"]
    clock.now += 5
    dog.alive("qt")
    dog.alive("engine")
    assert dog.tick()
    clock.now += 4
    dog.alive("engine")  # the Qt thread is silent for 4 s: still fine
    assert dog.tick()
    clock.now += 3  # 7 s now
    dog.alive("engine")
    assert not dog.tick() and dog.stale() == ("qt",)
    assert not dog.tick()
    assert sent == ["WATCHDOG=1"] * 3 + ["WATCHDOG=trigger"]  # asked for once, then silence
    dog.alive("qt")
    assert dog.tick() and sent[-1] == "WATCHDOG=1"


def test_the_hang_limit_never_exceeds_half_the_units_watchdog() -> None:
    assert Watchdog(lambda _: None, 4.0, ("qt",), hang_after_s=6.0).hang_after_s == 2.0


def test_the_environment_decides_and_bad_values_mean_no_watchdog(tmp_path: Path) -> None:
    assert service_watchdog({}) is None
    assert service_watchdog({"NOTIFY_SOCKET": "relative/path"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "15000000"}) == 15.0
    for bad in ("", "zero", "-5", "0"):
        assert watchdog_interval({"WATCHDOG_USEC": bad}) is None
    found = service_watchdog({"NOTIFY_SOCKET": str(tmp_path / "n.sock")})
    assert found is not None and found[1] is None  # notifications, no watchdog
    found[0].close()


@pytest.mark.parametrize("abstract", [False, True])
def test_notifications_reach_the_service_managers_socket(tmp_path: Path, abstract: bool) -> None:
    name = f"@kiosk-test-{os.getpid()}" if abstract else str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name[1:] if abstract else name)
    server.settimeout(5)
    notifier = ServiceNotifier.from_environment({"NOTIFY_SOCKET": name})
    assert notifier is not None
    assert notifier.notify("READY=1", "STATUS=the kiosk is up")
    assert server.recv(1024) == b"READY=1\nSTATUS=the kiosk is up"
    notifier.close()
    server.close()


def test_a_socket_that_is_gone_is_reported_not_raised(tmp_path: Path) -> None:
    notifier = ServiceNotifier(str(tmp_path / "absent.sock"))
    assert not notifier.notify("WATCHDOG=1")
    notifier.close()


def test_the_bench_plays_systemd_with_the_units_own_values() -> None:
    unit = (ROOT / "installer" / "kiosk-session.service").read_text()
    values = dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))
    assert float(values["RestartSec"]) == bench_recovery.RESTART_S
    assert float(values["WatchdogSec"]) == bench_recovery.WATCHDOG_S
    assert values["Type"] == "notify" and values["NotifyAccess"] == "all"


# -- the real kiosk process (Qt offscreen, engine against a closed loopback port)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(0.5)
    yield server, path
    server.close()


def messages_until(server: socket.socket, wanted: str, timeout: float) -> list[tuple[float, str]]:
    got: list[tuple[float, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = server.recv(4096).decode()
        except TimeoutError:
            continue
        got += [(time.monotonic(), line) for line in data.splitlines()]
        if wanted in data:
            return got
    raise AssertionError(f"no {wanted} within {timeout} s; got {got}")


@pytest.mark.e2e
@pytest.mark.parametrize("fault", [signal.SIGUSR2, signal.SIGUSR1], ids=["qt_thread", "engine_loop"])
def test_a_hung_thread_in_the_kiosk_stops_the_pings_and_asks_for_the_kill(
    notify_socket: tuple[socket.socket, Path], tmp_path: Path, fault: signal.Signals
) -> None:
    server, path = notify_socket
    env = {
        **os.environ,
        TOKEN_ENV: "not-enrolled-anywhere",
        "NOTIFY_SOCKET": str(path),
        "WATCHDOG_USEC": "4000000",  # the hang limit is then 2 s
        "KIOSK_FAULT_INJECTION": "1",
        "QT_QPA_PLATFORM": "offscreen",
    }
    command = [sys.executable, "-m", "kiosk_client.tools.recovery_kiosk", "--central", "http://127.0.0.1:9"]
    log = open(tmp_path / "kiosk.log", "wb")  # noqa: SIM115
    kiosk = subprocess.Popen(
        [*command, "--data-dir", str(tmp_path / "kiosk")], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        messages_until(server, "READY=1", 60)
        pings = messages_until(server, "WATCHDOG=1", 10)
        messages_until(server, "WATCHDOG=1", 10)  # regularly
        kiosk.send_signal(fault)
        hung_at = time.monotonic()
        after = messages_until(server, "WATCHDOG=trigger", 10)
        triggered_at = next(t for t, line in after if line == "WATCHDOG=trigger")
        assert triggered_at - hung_at < 4.0
        # Nothing pings once the hang is known, though the other thread (and the watchdog's) run on.
        with pytest.raises(AssertionError):
            messages_until(server, "WATCHDOG=1", 3)
        assert kiosk.poll() is None
        assert pings
    finally:
        kiosk.kill()
        kiosk.wait(10)
        log.close()
    text = (tmp_path / "kiosk.log").read_text(errors="replace")
    assert "the kiosk hangs" in text, text[-2000:]
