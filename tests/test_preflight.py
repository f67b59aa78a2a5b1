"""Pre-flight: ten minutes before an appointment the kiosk checks its devices, the central, a TURN
allocation (a real coturn here) and its uplink; the staff see a notice and the central the result."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kiosk_client.adapters.central_http import HttpCentral
from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, FakeRelayProbe, MemoryCache
from kiosk_client.adapters.relay_probe import AioiceRelayProbe
from kiosk_client.central.turn import turn_credentials
from kiosk_client.core.clock import CentralClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.events import Notice
from kiosk_client.core.models import Heartbeat, IceServer, RemoteConfig
from kiosk_client.core.preflight import MIN_UPLINK_KBPS, PreflightResult, due

from .conftest import Site
from .kiosk_rig import NoonClock, enrolled_token
from .test_engine import schedule_with

ALL_OK = {"camera": "ok", "microphone": "ok", "speaker": "ok", "scanner": "not_configured"}


def test_what_puts_an_appointment_at_risk() -> None:
    fine = PreflightResult("a1", 0.0, ALL_OK, "ok", "ok", 1500.0)
    assert not fine.at_risk and fine.problems == ()
    assert not PreflightResult("a1", 0.0, ALL_OK, "ok", "not_configured", 1500.0).at_risk
    risky = PreflightResult(
        "a1", 0.0, {**ALL_OK, "camera": "missing"}, "ok", "failed: refused", MIN_UPLINK_KBPS - 1
    )
    assert risky.problems == ("camera: missing", "relay: failed: refused", "uplink: 399 kbit/s")
    assert PreflightResult("a1", 0.0, ALL_OK, "unreachable (x)", "ok", None).problems == (
        "central: unreachable (x)",
        "uplink: not measured",
    )
    assert risky.to_json()["at_risk"] is True


def test_it_is_due_ten_minutes_before_and_once() -> None:
    now = NoonClock().now()
    schedule = schedule_with(9 * 60, "soon")
    assert due(now, schedule, frozenset(), frozenset()) is not None
    assert due(now, schedule, frozenset(), frozenset({"soon"})) is None
    assert due(now, schedule_with(11 * 60), frozenset(), frozenset()) is None
    assert due(now, schedule_with(-1), frozenset(), frozenset()) is None  # started: too late for it
    assert due(now, None, frozenset(), frozenset()) is None


def engine_with(central: FakeCentral, calls: FakeCallFactory, relay: FakeRelayProbe) -> KioskEngine:
    return KioskEngine(
        central, calls, MemoryCache(), CentralClock(NoonClock()), lambda e: None,
        tick_s=0.01, relay_probe=relay, preflight_every_s=0.05,
    )  # fmt: skip


async def run_until(engine: KioskEngine, done: Callable[[], bool], seconds: float = 5) -> None:
    task = asyncio.create_task(engine.run())
    try:
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline, "condition not met"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_clear_pre_flight_is_reported_in_the_heartbeat() -> None:
    central = FakeCentral(schedule_with(5 * 60), RemoteConfig(poll_interval_s=0.05, join_before_s=1.0))
    relay = FakeRelayProbe("ok")
    engine = engine_with(central, FakeCallFactory(), relay)
    await run_until(engine, lambda: any(h.preflight for h in central.heartbeats))
    [sent] = [h.preflight for h in central.heartbeats if h.preflight]
    assert sent["appointment_id"] == "a1" and sent["at_risk"] is False and sent["relay"] == "ok"
    assert sent["uplink_kbps"] == central.uplink_kbps and relay.attempts == 1
    assert Notice.APPOINTMENT_AT_RISK not in engine.snapshot().notices


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (lambda c, f, r: f.health.update(camera="missing"), "camera: missing"),
        (lambda c, f, r: setattr(r, "outcome", "failed: refused"), "relay: failed: refused"),
        (lambda c, f, r: setattr(c, "uplink_kbps", 150.0), "uplink: 150 kbit/s"),
    ],
    ids=["no_camera", "no_relay", "thin_uplink"],
)
async def test_a_problem_warns_the_staff_and_the_central(
    break_it: Callable[[FakeCentral, FakeCallFactory, FakeRelayProbe], object], problem: str
) -> None:
    central = FakeCentral(schedule_with(5 * 60), RemoteConfig(poll_interval_s=0.05, join_before_s=1.0))
    calls, relay = FakeCallFactory(), FakeRelayProbe("ok")
    break_it(central, calls, relay)
    engine = engine_with(central, calls, relay)
    await run_until(engine, lambda: any(h.preflight for h in central.heartbeats))
    sent = next(h.preflight for h in central.heartbeats if h.preflight)
    assert sent["at_risk"] is True and problem in sent["problems"]  # type: ignore[operator]
    assert Notice.APPOINTMENT_AT_RISK in engine.snapshot().notices
    assert engine.staff_report().preflight == (problem,)


# -- the TURN allocation, against a real coturn on loopback


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[tuple[int, str]]:
    assert shutil.which("turnserver"), "coturn is missing: run scripts/bootstrap.sh as root"
    port, secret = free_port(), "preflight-secret"
    config = tmp_path / "turnserver.conf"
    config.write_text(
        f"listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port={port}\nrealm=kiosk.test\nuse-auth-secret\n"
        f"static-auth-secret={secret}\nfingerprint\nno-cli\nno-tls\nno-dtls\nno-multicast-peers\n"
        f"min-port=50000\nmax-port=50100\npidfile={tmp_path / 'pid'}\nlog-file={tmp_path / 'log'}\nsimple-log\n"
    )
    process = subprocess.Popen(
        ["turnserver", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # ready when it answers a STUN binding (UDP): give it a moment
            time.sleep(0.3)
            if process.poll() is not None:
                raise AssertionError(
                    f"turnserver exited: {(tmp_path / 'log').read_text(errors='replace')[-2000:]}"
                )
            if time.monotonic() > deadline or "listener opened" in (tmp_path / "log").read_text(
                errors="replace"
            ):
                break
        yield port, secret
    finally:
        process.terminate()
        process.wait(5)


async def test_a_turn_allocation_with_good_credentials_succeeds_and_bad_ones_are_told(
    coturn: tuple[int, str],
) -> None:
    port, secret = coturn
    username, password = turn_credentials(secret, int(time.time()) + 600, "kiosk_test")
    url = f"turn:127.0.0.1:{port}?transport=udp"
    probe = AioiceRelayProbe()
    assert await probe.allocate((IceServer((url,), username, password),)) == "ok"
    refused = await probe.allocate((IceServer((url,), username, "wrong"),))
    assert refused.startswith("failed:") and "refused" in refused
    assert await probe.allocate((IceServer(("stun:127.0.0.1:3478",)),)) == "not_configured"
    assert await probe.allocate(()) == "not_configured"


# -- the central's side


async def test_the_central_times_an_upload_and_keeps_the_last_pre_flight(site: Site) -> None:
    token = await asyncio.to_thread(enrolled_token, site.url, site.enrollment_code)
    central = HttpCentral(site.url, token)
    try:
        kbps = await central.measure_uplink(200_000)
        assert kbps > MIN_UPLINK_KBPS  # loopback
        result = PreflightResult("a1", time.time(), ALL_OK, "ok", "ok", kbps)
        await central.send_heartbeat(Heartbeat("idle", None, {"camera": "ok"}, "1.0", result.to_json()))
        await central.send_heartbeat(Heartbeat("idle", None, {"camera": "ok"}, "1.0"))  # keeps the last one
    finally:
        await central.aclose()
    [kiosk] = [k for k in site.admin.kiosks() if k["id"] == site.kiosk_id]
    assert kiosk["preflight"]["appointment_id"] == "a1" and kiosk["preflight"]["at_risk"] is False
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=site.url, headers=headers) as client:
        too_big = await client.post("/api/v1/kiosk/uplink-probe", content=b"x" * (3 * 1024 * 1024))
        assert too_big.status_code == 413
        bad = await client.post(
            "/api/v1/kiosk/heartbeat", json={"state": "idle", "preflight": "everything fine"}
        )
        assert bad.status_code == 400
        refused = await client.post(
            "/api/v1/kiosk/uplink-probe", content=b"x", headers={"Authorization": "Bearer x"}
        )
        assert refused.status_code == 401
