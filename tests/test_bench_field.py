"""`bench field` for real, short: the kiosk and the clerk console, then two Chromium peers, on an
emulated ADSL link with one short cut; every figure there for both sides, and sane."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from kiosk_client.tools.bench_field import bench_field
from kiosk_client.tools.bench_field_figures import FIGURES, render
from kiosk_client.tools.link_emulator import PROFILES

from .field_rig import ROOT_REASON

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason=ROOT_REASON),
    # Not skipped without Chromium: scripts/bootstrap.sh installs it, and a missing browser must fail.
]

# ADSL with one 2 s cut 2 s into the documents: the cut path (documents across it, recovery) at a
# fraction of the real profile's two minutes. The batch is small for the same reason.
SHORT_CUT = dataclasses.replace(PROFILES["adsl"], name="adsl-short-cut", cuts=((2.0, 2.0),))


@pytest.mark.long
def test_bench_field_gives_every_figure_for_the_kiosk_and_for_chromium() -> None:
    result = bench_field(SHORT_CUT, 8.0, letter_bytes=64 * 1024, batch_bytes=192 * 1024)
    line = json.dumps(result)
    assert "\n" not in line
    print(line)
    kiosk, chromium = result["kiosk"], result["chromium"]
    for side in (kiosk, chromium):
        for key, _, _ in FIGURES:
            if key != "recovery_60s_cut_s":  # one cut only here
                assert side.get(key) is not None, key
        assert 0 < side["join_ms"] < 5000
        assert 5 <= side["clerk_fps"] <= 25 and 5 <= side["kiosk_fps"] <= 25
        assert side["clerk_freezes_per_min"] >= 0 and side["kiosk_freezes_per_min"] >= 0
        assert 35 <= side["rtt_p50_ms"] <= side["rtt_p95_ms"] <= 1000  # 40 ms link, queues ≤ 400 ms each way
        assert 0 < side["letter_s"] < 60 and 0 < side["batch_s"] < 90
        assert 0 < side["recovery_10s_cut_s"] < 30
        assert side["documents_lost"] == 0
    assert set(result["ratio"]) >= {"join_ms", "letter_s", "batch_s"}
    assert set(result["goals"]) == {
        "call_drops", "clerk_freezes", "kiosk_freezes", "letter", "batch", "recovery_10s_cut", "documents_lost"
    }  # fmt: skip
    assert "Chromium" in render(result)
