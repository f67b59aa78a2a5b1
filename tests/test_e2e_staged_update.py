"""End to end, a staged update: IT staff upload a release to the reference central (loopback) and put a
kiosk in the canary group; the real kiosk engine (its HTTP central adapter, its spool on disk; no
camera or sound card) downloads the wheel, checks it and asks for the install; the updater installs it
in a scratch root and restarts the "session" (injected: the new release's own Python writes the health
mark); the kiosk that comes back on the new version reports it, and the fleet view shows it."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kiosk_client.adapters.central_http import HttpCentral
from kiosk_client.adapters.central_target import CentralSoftwareTarget
from kiosk_client.adapters.fakes import FakeCallFactory
from kiosk_client.adapters.local_cache import FileCache
from kiosk_client.adapters.update_spool import REQUEST, FileUpdates
from kiosk_client.app import build_engine
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.settings import UpdateSettings
from kiosk_client.runtime import LoopThread
from kiosk_client.system.updater import UpdaterPaths, apply_request

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, kiosk_settings
from .test_updater import RestartedKiosk
from .wheel_rig import build_wheel

pytestmark = pytest.mark.e2e


def wait_for(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.05)


def fleet_row(site: Site) -> dict[str, Any]:
    return next(k for k in site.admin.fleet()["kiosks"] if k["id"] == site.kiosk_id)


def test_a_canary_kiosk_installs_its_release_and_the_fleet_sees_it(site: Site, tmp_path: Path) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    wheel = build_wheel(tmp_path / "build", "2.0.0")
    release = site.admin.upload_release("2.0.0", wheel.read_bytes())
    other = site.admin.create_kiosk("Borne 2", "Autre site")
    site.admin.set_software_targets(default=None, canary={"version": "2.0.0", "kiosks": [site.kiosk_id]})

    settings = kiosk_settings(site.url, tmp_path / "data")
    settings = dataclasses.replace(
        settings,
        updates=UpdateSettings(
            status_file=tmp_path / "var/lib/kiosk-updater/status.json",
            health_mark=tmp_path / "run/kiosk-client/healthy",
        ),
    )
    paths = UpdaterPaths(
        project=tmp_path / "opt/kiosk-client",
        spool=settings.update_spool,
        state_dir=settings.updates.status_file.parent,
        health_mark=settings.updates.health_mark,
        base_env=Path(sys.prefix),
    )
    paths.project.mkdir(parents=True)
    paths.current.symlink_to(sys.prefix)  # as installed: the installer's environment

    # The kiosk as it runs on a terminal (build_engine: the real adapters, the spool from settings).
    loop = LoopThread("engine")
    loop.start()
    engine = build_engine(
        settings, token, Recorder(), None, ended_screen=timedelta(seconds=1), heartbeat_s=0.2
    )
    running = loop.submit(engine.run())
    try:
        wait_for(lambda: (paths.spool / REQUEST).exists(), 20, "the kiosk's install request")
        asked = json.loads((paths.spool / REQUEST).read_text())
        assert asked == {"version": "2.0.0", "sha256": release["sha256"], "wheel": wheel.name}
        assert (paths.spool / wheel.name).read_bytes() == wheel.read_bytes()
        wait_for(lambda: (fleet_row(site)["update"] or {}).get("state") == "requested", 10, "requested")
    finally:
        running.cancel()
        loop.stop()

    # The updater, as kiosk-updater.service runs it on the request: it asks the central itself (the
    # kiosk's token) what this kiosk's target is; the session's restart injected.
    kiosk = RestartedKiosk(paths)
    assert (
        apply_request(paths, kiosk, CentralSoftwareTarget(site.url, token), health_timeout_s=30)
        == "installed"
    )
    kiosk.wait()
    assert os.readlink(paths.current) == "releases/2.0.0"
    assert json.loads(paths.health_mark.read_text())["version"] == "2.0.0"

    # The kiosk back on the new version (its own version, the same spool and status): it says so.
    loop = LoopThread("engine-2")
    loop.start()
    updates = FileUpdates(paths.spool, settings.updates.status_file, settings.updates.health_mark)
    clock = CentralClock(SystemClock())
    restarted = KioskEngine(
        HttpCentral(site.url, token, clock),
        FakeCallFactory(),
        FileCache(tmp_path / "data-2"),
        clock,
        lambda event: None,
        software_version="2.0.0",
        rng=random.Random(3),
        heartbeat_s=0.2,
        updates=updates,
    )
    running = loop.submit(restarted.run())
    try:
        wait_for(lambda: fleet_row(site)["software_version"] == "2.0.0", 20, "the new version's heartbeat")
        wait_for(lambda: (fleet_row(site)["update"] or {}).get("state") == "installed", 10, "installed")
        row = fleet_row(site)
        assert (row["software_target"], row["software_target_source"], row["off_target"]) == (
            "2.0.0",
            "canary",
            False,
        )
        assert row["update"] == {"state": "installed", "version": "2.0.0", "error": None}
        view = site.admin.fleet()
        assert view["summary"]["versions"] == {"2.0.0": 1} and view["summary"]["update_failed"] == 0
        # The kiosk outside the canary group has no target: nothing for it.
        assert next(k for k in view["kiosks"] if k["id"] == other)["software_target"] is None
    finally:
        running.cancel()
        loop.stop()
