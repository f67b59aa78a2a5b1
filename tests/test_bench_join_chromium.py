"""`kiosk-client bench join --clerk chromium`: the join benchmark with the real clerk console in
headless Chromium as the clerk. Checks what it prints, not how fast (the figures are the bench's)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

FIGURES = {
    "benchmark",
    "clerk",
    "appointments",
    "measured",
    "p50_ms",
    "p95_ms",
    "max_ms",
    "kiosk_p50_ms",
    "kiosk_p95_ms",
    "clerk_p50_ms",
    "clerk_p95_ms",
    "goal_p95_ms",
    "elapsed_s",
    "samples_ms",
}


@pytest.mark.timeout(240)
def test_bench_join_with_the_clerk_console_in_chromium_prints_every_figure() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk_client",
            "bench",
            "join",
            "--clerk",
            "chromium",
            "--appointments",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr  # neither the kiosk nor the browser clerk's process failed
    [line] = [line for line in result.stdout.splitlines() if line.strip()]
    figures = json.loads(line)
    assert set(figures) == FIGURES
    assert figures["benchmark"] == "join" and figures["clerk"] == "chromium"
    assert (
        figures["appointments"] == 2 and figures["measured"] == 2
    )  # both calls joined, both sides saw video
    assert len(figures["samples_ms"]) == 2
    numbers = [figures[key] for key in FIGURES if key.endswith("_ms") and key != "samples_ms"]
    for value in [*numbers, *figures["samples_ms"]]:
        assert isinstance(value, int | float) and math.isfinite(value), figures
