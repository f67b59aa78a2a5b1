"""`kiosk-client bench central` on a small fleet, on both configurations (SQLite with one process,
PostgreSQL with two): the load it claims is the load it sent."""

from __future__ import annotations

import subprocess
import sys

from kiosk_client.tools.bench_central import bench_central

from .postgres_rig import postgres_server


def test_a_small_fleet_polls_heartbeats_and_sets_up_every_call_on_both_configurations() -> None:
    postgres_server()  # fails (root, CI) or skips (not root) with its reason when PostgreSQL is missing
    result = bench_central(kiosks=40, calls=4, interval_s=1.0, duration_s=3.0, workers=2, call_processes=2)
    assert result["call_processes"] == 2
    configurations = result["configurations"]
    assert [(c["store"], c["processes"]) for c in configurations] == [("sqlite", 1), ("postgresql", 2)]
    for figures in configurations:
        # Every kiosk polls about once a second for three seconds, then its ETag spares the body.
        assert 40 * 2 <= figures["polls"] <= 40 * 4, figures
        statuses = figures["statuses"]
        assert statuses["GET kiosk 304"] >= statuses["GET kiosk 200"] >= 40
        assert statuses["POST kiosk 204"] == figures["polls"]  # one heartbeat per poll
        assert figures["calls"] == 4 and statuses["PUT appointments 201"] == 4  # four offers, four answers
        assert statuses["GET appointments 200"] == 8  # each clerk saw its offer, each kiosk its answer
        assert figures["errors"] == {}
        assert 0 < figures["poll_ms"]["p50"] <= figures["poll_ms"]["p95"]
        assert 0 < figures["answer_to_kiosk_ms"]["p95"] < 5000
        assert figures["central_cpu_share"] > 0 and figures["load_cpu_share"] > 0
    assert configurations[0]["database_cpu_share"] is None and configurations[1]["database_cpu_share"] > 0


def test_bad_figures_are_refused_clearly() -> None:
    for argv, message in ((["--kiosks", "0"], "kiosks >= 1"), (["--workers", "0"], "workers >= 1")):
        done = subprocess.run(
            [sys.executable, "-m", "kiosk_client", "bench", "central", *argv, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert message in done.stderr and not done.stdout
