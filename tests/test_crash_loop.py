"""Crash loops: a kiosk that keeps dying shows « Borne momentanément indisponible » instead of
flapping, tells the central, and a clean stop forgets its crashes."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest

from kiosk_client.adapters.local_cache import FileCache
from kiosk_client.core.crash_loop import CRASH_LIMIT, CRASH_WINDOW_S, RunHistory, on_clean_stop, on_start
from kiosk_client.core.session import Phase

from . import test_engine
from .test_engine import FAST, Harness, schedule_with

harness = test_engine.harness  # the engine rig's fixture

NOW = 1_800_000_000.0


def test_a_start_after_an_unclean_end_counts_a_crash_and_old_ones_are_forgotten() -> None:
    history, looping = on_start(RunHistory((NOW - CRASH_WINDOW_S - 1, NOW - 60), running=True), NOW)
    assert history == RunHistory((NOW - 60, NOW), running=True) and not looping
    history, looping = on_start(RunHistory((NOW - 60,), running=False), NOW)  # stopped cleanly
    assert history.crashes == (NOW - 60,) and not looping


def test_the_limit_within_the_window_is_a_crash_loop_and_a_clean_stop_ends_it() -> None:
    crashes = tuple(NOW - 10 * i for i in range(1, CRASH_LIMIT))
    history, looping = on_start(RunHistory(crashes, running=True), NOW)
    assert looping and len(history.crashes) == CRASH_LIMIT
    assert on_start(on_clean_stop(), NOW + 1) == (RunHistory((), running=True), False)


def test_the_history_survives_a_restart_and_garbage_is_ignored(tmp_path: Path) -> None:
    cache = FileCache(tmp_path)
    assert cache.load_run_history() is None
    cache.save_run_history(RunHistory((NOW,), running=True))
    assert FileCache(tmp_path).load_run_history() == RunHistory((NOW,), running=True)
    for bad in ('{"crashes": "x", "running": true}', '{"crashes": [true], "running": true}', "[1]", "{"):
        (tmp_path / "run-history.json").write_text(bad)
        assert cache.load_run_history() is None, bad


async def test_in_a_crash_loop_no_call_starts_the_central_hears_it_and_a_clean_stop_clears_it(
    harness,
) -> None:
    from kiosk_client.adapters.fakes import FakeCentral, MemoryCache

    now = time.time()
    cache = MemoryCache()
    cache.run_history = RunHistory(tuple(now - 30 * i for i in range(1, CRASH_LIMIT)), running=True)
    central = FakeCentral(schedule_with(0.0), FAST)
    h: Harness = harness(central, cache)
    await h.until(lambda: bool(central.heartbeats) and not h.engine.reset.checking)
    assert h.engine.reset.out_of_service is not None
    assert h.engine.reset.out_of_service.failed_checks == (
        "crash_loop",
    )  # the start-up check passed, still out
    assert h.snapshot.out_of_service
    await asyncio.sleep(0.5)  # the appointment is live: still no call
    assert not central.offers and h.engine.session.phase is not Phase.WAITING_FOR_CLERK
    await h.until(lambda: central.heartbeats[-1].state == "out_of_service")
    assert cache.run_history is not None and cache.run_history.running
    # Staff bring it back (the staff panel's button will do this): released, the next check decides.
    h.engine.reset.hold(None)
    await h.engine._verify_reset("start_up")
    assert h.engine.reset.out_of_service is None
    await h.until(lambda: bool(central.offers))


async def test_a_clean_stop_is_recorded(harness) -> None:
    from kiosk_client.adapters.fakes import FakeCentral, MemoryCache

    cache = MemoryCache()
    h: Harness = harness(FakeCentral(schedule_with(3600), FAST), cache)
    await h.until(lambda: cache.run_history is not None and cache.run_history.running)
    task = next(t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "KioskEngine.run")  # type: ignore[union-attr]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert cache.run_history == RunHistory()


@pytest.mark.e2e
@pytest.mark.long
async def test_a_kiosk_killed_again_and_again_stays_up_out_of_service(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from kiosk_client.adapters.central_http import enroll
    from kiosk_client.central.admin import CentralAdmin
    from kiosk_client.tools.bench_recovery import Supervisor
    from kiosk_client.tools.central_process import CentralProcess

    from .kiosk_rig import wait_for

    with CentralProcess(tmp_path / "central.db") as central:
        admin = CentralAdmin(central.url, central.admin_token)
        admin.configure(poll_interval_seconds=1)
        kiosk_id = admin.create_kiosk("Kiosk", "Site")
        clerk = admin.create_clerk("Clerk", "CAF")
        admin.create_appointment(kiosk_id, clerk, "CAF", datetime.now(UTC) + timedelta(hours=1))
        token = (await enroll(central.url, admin.enrollment_code(kiosk_id))).device_token
        supervisor = Supervisor(central.url, token, tmp_path, restart_s=0.2, forget_crashes=False)
        try:
            supervisor.start()
            for killed in range(CRASH_LIMIT):
                await wait_for(lambda n=killed: len(supervisor.ready) > n, 60)
                supervisor.signal(signal.SIGKILL)
            await wait_for(lambda: len(supervisor.ready) > CRASH_LIMIT, 60)
            state = lambda: next(k for k in admin.kiosks() if k["id"] == kiosk_id)["state"]  # noqa: E731
            await wait_for(lambda: state() == "out_of_service", 20)
            exits = len(supervisor.exits)
            await asyncio.sleep(3)
            assert len(supervisor.exits) == exits and supervisor.process is not None
            assert supervisor.process.poll() is None  # up, steady, not flapping
            history = json.loads((tmp_path / "kiosk" / "cache" / "run-history.json").read_text())
            assert len(history["crashes"]) == CRASH_LIMIT
        finally:
            supervisor.stop()
            admin.close()
    log = (tmp_path / "kiosk.log").read_text(errors="replace")
    assert "out of service until the staff act" in log
