"""The last good schedule and config on disk: a restart while the central is down still knows today."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral
from kiosk_client.adapters.local_cache import FileCache
from kiosk_client.core.clock import CentralClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.errors import CentralUnavailable
from kiosk_client.core.models import Appointment, IceServer, RemoteConfig, Schedule

from .kiosk_rig import NoonClock

START = NoonClock().now() + timedelta(hours=1)
SCHEDULE = Schedule(
    "Borne 1",
    "France Services",
    (Appointment("a1", "CAF", "Mme Martin", START, START + timedelta(minutes=30)),),
    '"v1"',
)
CONFIG = RemoteConfig((IceServer(("turn:turn.example.org:443?transport=tcp",), "u", "c"),), 5.0, 60.0, 600.0)


def test_round_trip(tmp_path: Path) -> None:
    cache = FileCache(tmp_path)
    assert cache.load_schedule() is None and cache.load_remote_config() is None
    cache.save_schedule(SCHEDULE)
    cache.save_remote_config(CONFIG)
    again = FileCache(tmp_path)
    assert again.load_schedule() == SCHEDULE
    assert again.load_remote_config() == CONFIG
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_a_corrupted_cache_is_ignored_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "schedule.json").write_text('{"etag": "x", "schedule": {"kiosk": 3')
    (tmp_path / "remote-config.json").write_text('{"poll_interval_seconds": -1}')
    cache = FileCache(tmp_path)
    assert cache.load_schedule() is None and cache.load_remote_config() is None


async def test_restart_offline_with_the_file_cache(tmp_path: Path) -> None:
    FileCache(tmp_path).save_schedule(SCHEDULE)  # written by the previous run
    central = FakeCentral()
    central.failure = CentralUnavailable("connection refused")
    engine = KioskEngine(
        central,
        FakeCallFactory(),
        FileCache(tmp_path),
        CentralClock(NoonClock()),
        lambda e: None,
        rng=random.Random(1),
    )
    task = asyncio.create_task(engine.run())
    try:
        for _ in range(100):
            if engine.snapshot().today:
                break
            await asyncio.sleep(0.02)
        snapshot = engine.snapshot()
        assert [a.id for a in snapshot.today] == ["a1"] and snapshot.site_name == "France Services"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
