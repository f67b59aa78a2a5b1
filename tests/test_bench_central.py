"""`kiosk-client bench central` on a small fleet: the load it claims is the load it sent."""

from __future__ import annotations

import subprocess
import sys

from kiosk_client.tools.bench_central import bench_central


def test_a_small_fleet_polls_heartbeats_and_sets_up_every_call() -> None:
    result = bench_central(kiosks=40, calls=4, interval_s=1.0, duration_s=3.0)
    figures = result["configurations"][0]
    assert figures["store"] == "sqlite" and figures["processes"] == 1
    # Every kiosk polls about once a second for three seconds, then its ETag spares the body.
    assert 40 * 2 <= figures["polls"] <= 40 * 4
    statuses = figures["statuses"]
    assert statuses["GET kiosk 304"] >= statuses["GET kiosk 200"] >= 40
    assert statuses["POST kiosk 204"] == figures["polls"]  # one heartbeat per poll
    assert figures["calls"] == 4 and statuses["PUT appointments 201"] == 4  # four offers, four answers
    assert figures["errors"] == {}
    assert 0 < figures["poll_ms"]["p50"] <= figures["poll_ms"]["p95"]
    assert 0 < figures["answer_to_kiosk_ms"]["p95"] < 5000


def test_bad_figures_are_refused_clearly() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kiosk_client", "bench", "central", "--kiosks", "0", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "kiosks >= 1" in done.stderr and not done.stdout
