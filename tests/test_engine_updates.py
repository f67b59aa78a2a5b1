"""Staged updates in the kiosk engine: the idle rule (pure, with a fixed clock), and the engine against a
fake central and the real spool adapter on a scratch folder — it downloads its target, asks the updater
once and only when nobody can be disturbed, says where it is in its heartbeat, and writes the health
mark once its window is up and it reached the central."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk_client.adapters.atomic_file import write_atomically
from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, MemoryCache
from kiosk_client.adapters.update_spool import REQUEST, FileUpdates
from kiosk_client.core import updates
from kiosk_client.core.clock import CentralClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.session import Phase
from kiosk_client.core.updates import KioskActivity, UpdaterReport, install_blocker, settled_status

from .kiosk_rig import NoonClock
from .test_engine import FAST, TIMING, schedule_with

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WHEEL = b"PK\x03\x04 a kiosk-client wheel, as far as the engine is concerned"
SHA = hashlib.sha256(WHEEL).hexdigest()


def activity(**changes: object) -> KioskActivity:
    return replace(KioskActivity(session_idle=True, staff_panel_open=False, resetting=False), **changes)  # type: ignore[arg-type]


def around(start_in: timedelta, length: timedelta = timedelta(minutes=20)) -> tuple[datetime, datetime]:
    return NOW + start_in, NOW + start_in + length


def test_the_idle_rule() -> None:
    assert install_blocker(activity(), NOW) is None
    assert (
        install_blocker(activity(appointments=(around(timedelta(minutes=10)),)), NOW)
        == updates.APPOINTMENT_SOON
    )
    assert (
        install_blocker(activity(appointments=(around(timedelta(minutes=19)),)), NOW)
        == updates.APPOINTMENT_SOON
    )
    assert install_blocker(activity(appointments=(around(timedelta(minutes=21)),)), NOW) is None
    # One under way (a citizen late, a walk-in not joined yet) keeps it waiting; one over does not.
    assert (
        install_blocker(activity(appointments=(around(-timedelta(minutes=5)),)), NOW)
        == updates.APPOINTMENT_SOON
    )
    assert install_blocker(activity(appointments=(around(-timedelta(minutes=30)),)), NOW) is None
    assert install_blocker(activity(session_idle=False), NOW) == updates.IN_SESSION
    assert install_blocker(activity(staff_panel_open=True), NOW) == updates.STAFF_PANEL
    assert install_blocker(activity(resetting=True), NOW) == updates.RESETTING


def test_what_the_updater_said_decides_whether_the_kiosk_goes_on() -> None:
    assert settled_status("2.0", "1.0", None) == (None, True)
    assert settled_status("1.0", "1.0", None) == (None, False)  # runs it: nothing to do, nothing to say
    installed = UpdaterReport("installed", "2.0")
    assert settled_status("2.0", "2.0", installed) == (updates.UpdateStatus("installed", "2.0"), False)
    failed = UpdaterReport("failed", "2.0", "rolled back", frozenset({"2.0"}))
    assert settled_status("2.0", "1.0", failed) == (
        updates.UpdateStatus("failed", "2.0", "rolled back"),
        False,
    )
    # A failed version stays failed after the updater did other things; a new target goes on.
    later = UpdaterReport("installed", "1.5", None, frozenset({"2.0"}))
    assert settled_status("2.0", "1.5", later)[1] is False
    assert settled_status("2.1", "1.5", later) == (None, True)
    assert settled_status("2.0", "1.0", UpdaterReport("installing", "2.0")) == (
        updates.UpdateStatus("installing", "2.0"),
        False,
    )


def test_a_request_the_updater_could_not_confirm_is_reported_and_asked_again_later() -> None:
    """Not at every poll (each ask starts the updater): after ASK_AGAIN_AFTER, with the reason said."""
    for state in ("unconfirmed", "refused"):
        report = UpdaterReport(state, "2.0", "central: unreachable", at=NOW)
        said = updates.UpdateStatus(state, "2.0", "central: unreachable")
        assert settled_status("2.0", "1.0", report, NOW + timedelta(minutes=1)) == (said, False)
        assert settled_status("2.0", "1.0", report, NOW + updates.ASK_AGAIN_AFTER) == (said, True)
        assert settled_status("2.1", "1.0", report, NOW) == (None, True)  # another target: at once


@dataclass
class Kiosk:
    central: FakeCentral
    engine: KioskEngine
    spool: FileUpdates

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not met within {within}s; heartbeats: {self.central.heartbeats[-3:]}")
            await asyncio.sleep(0.01)

    def last_update(self) -> dict[str, object] | None:
        return self.central.heartbeats[-1].update if self.central.heartbeats else None

    def request(self) -> dict[str, object] | None:
        path = self.spool.spool / REQUEST
        return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
async def kiosk(tmp_path: Path) -> AsyncIterator[Callable[..., Kiosk]]:
    tasks: list[asyncio.Task[None]] = []

    def start(central: FakeCentral, version: str = "1.0.0") -> Kiosk:
        spool = FileUpdates(
            tmp_path / "spool", tmp_path / "updater" / "status.json", tmp_path / "run" / "healthy"
        )
        engine = KioskEngine(
            central,
            FakeCallFactory(),
            MemoryCache(),
            CentralClock(NoonClock()),
            lambda event: None,
            software_version=version,
            local_timing=TIMING,
            tick_s=0.01,
            rng=random.Random(7),
            heartbeat_s=0.02,
            updates=spool,
        )
        tasks.append(asyncio.create_task(engine.run()))
        return Kiosk(central, engine, spool)

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def central_with_target(
    schedule_in_s: float, sha: str | None = SHA, no_show_after_s: float = 0.6
) -> FakeCentral:
    config = replace(
        FAST, software_target="2.0.0", software_target_sha256=sha, no_show_after_s=no_show_after_s
    )
    central = FakeCentral(schedule_with(schedule_in_s), config)
    central.releases["2.0.0"] = WHEEL
    return central


async def test_idle_it_downloads_its_target_and_asks_the_updater_once(kiosk: Callable[..., Kiosk]) -> None:
    k = kiosk(central_with_target(schedule_in_s=3 * 3600))
    await k.until(lambda: k.request() is not None)
    assert k.request() == {"version": "2.0.0", "sha256": SHA, "wheel": "kiosk_client-2.0.0-py3-none-any.whl"}
    assert (k.spool.spool / "kiosk_client-2.0.0-py3-none-any.whl").read_bytes() == WHEEL
    await k.until(lambda: k.last_update() == {"state": "requested", "version": "2.0.0", "error": None})
    # Many polls later: still one download, and the request was not rewritten.
    written = (k.spool.spool / REQUEST).stat().st_mtime_ns
    polls = k.central.schedule_requests
    await k.until(lambda: k.central.schedule_requests > polls + 10)
    assert k.central.software_downloads == ["2.0.0"]
    assert (k.spool.spool / REQUEST).stat().st_mtime_ns == written

    # The updater takes it and says it is at it; then that it failed: the kiosk says so, asks no more.
    (k.spool.spool / REQUEST).unlink()
    k.spool.status_file.parent.mkdir()
    report = {"state": "failed", "version": "2.0.0", "error": "rolled back", "failed": ["2.0.0"]}
    write_atomically(k.spool.status_file, json.dumps(report).encode())
    await k.until(lambda: k.last_update() == {"state": "failed", "version": "2.0.0", "error": "rolled back"})
    polls = k.central.schedule_requests
    await k.until(lambda: k.central.schedule_requests > polls + 10)
    assert k.request() is None and k.central.software_downloads == ["2.0.0"]


async def test_an_appointment_within_twenty_minutes_keeps_it_waiting(kiosk: Callable[..., Kiosk]) -> None:
    # 18 minutes: the idle screen still (the waiting screen comes 15 minutes before), no install.
    k = kiosk(central_with_target(schedule_in_s=18 * 60))
    await k.until(lambda: k.last_update() == {"state": "waiting_idle", "version": "2.0.0", "error": None})
    assert k.engine.session.phase is Phase.IDLE
    assert install_blocker(k.engine.update_activity(), NoonClock().now()) == updates.APPOINTMENT_SOON
    polls = k.central.schedule_requests
    await k.until(lambda: k.central.schedule_requests > polls + 10)
    assert k.request() is None
    assert k.central.software_downloads == ["2.0.0"]  # downloaded meanwhile, installed later


async def test_a_session_under_way_keeps_it_waiting(kiosk: Callable[..., Kiosk]) -> None:
    k = kiosk(central_with_target(schedule_in_s=0.2, no_show_after_s=60))  # the clerk may take a while
    await k.until(lambda: k.engine.session.phase is not Phase.IDLE)
    await k.until(lambda: k.last_update() == {"state": "waiting_idle", "version": "2.0.0", "error": None})
    assert install_blocker(k.engine.update_activity(), NoonClock().now()) == updates.IN_SESSION
    assert k.request() is None
    # The updater reads this right before it would restart the kiosk.
    busy = k.spool.health_mark.parent / "busy"
    await k.until(lambda: busy.exists() and busy.read_text() == "in_session", within=2.0)


async def test_a_wheel_that_does_not_match_its_hash_is_not_kept(kiosk: Callable[..., Kiosk]) -> None:
    k = kiosk(central_with_target(schedule_in_s=3 * 3600, sha="ab" * 32))
    await k.until(lambda: (k.last_update() or {}).get("state") == "download_failed")
    assert "SHA-256" in str(k.last_update()["error"])  # type: ignore[index]
    assert k.request() is None and not list(k.spool.spool.glob("*.whl"))


async def test_no_target_or_no_release_means_nothing_to_do(kiosk: Callable[..., Kiosk]) -> None:
    k = kiosk(central_with_target(schedule_in_s=3 * 3600, sha=None))  # a target not uploaded yet
    await k.until(lambda: len(k.central.heartbeats) > 5)
    assert k.last_update() is None and k.central.software_downloads == [] and k.request() is None


async def test_the_health_mark_waits_for_the_window_and_the_central(kiosk: Callable[..., Kiosk]) -> None:
    k = kiosk(FakeCentral(schedule_with(3600), FAST), version="2.0.0")
    await k.until(lambda: k.central.schedule_requests > 2)
    assert not k.spool.health_mark.exists()
    k.engine.window_shown()
    assert json.loads(k.spool.health_mark.read_text())["version"] == "2.0.0"
