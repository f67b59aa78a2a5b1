"""On an emulated ADSL uplink (800 kbit/s, 40 ms, 0.5 % loss, 400 ms drop-tail queue): while a 3-page
letter goes on the documents channel, the kiosk's shared uplink control keeps the uplink's queue
short, the letter arrives in about Chromium's time, and the clerk keeps seeing the citizen move.

The kiosk's real call (AiortcCall, uplink control as configured by default) with a moving, noisy
synthetic camera; the clerk an aiortc peer on the far side (kiosk_client/tools/bench_uplink.py, which
also runs the clerk in headless Chromium for the figures of the README)."""

from __future__ import annotations

import os

import pytest

from kiosk_client.tools.bench_uplink import LETTER_BYTES, measure
from kiosk_client.tools.link_emulator import FieldLink

from .field_rig import ROOT_REASON

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason=ROOT_REASON),
]

IDLE_RTT_S = 0.040
# The goal: a round trip under load at most 1.5 times the idle one, i.e. half the idle round
# trip of queue (20 ms) for most packets. Without the control the queue sat at 130-310 ms (p50) and
# 240-395 ms (p95) for the same letter; with it 0-20 ms and 10-55 ms (README, "Thin uplinks").
QUEUE_P50_MAX_MS = 0.5 * IDLE_RTT_S * 1000
QUEUE_P95_MAX_MS = 100.0  # a video frame's own burst and the machine's load, far below "off"
# Chromium sent this letter over the same link in 3.4 s (FIELD-NETWORKS.md); the issue allows 1.2 x.
# A little more here: the clerk decodes in this same process, on two shared cores.
LETTER_MAX_S = 1.2 * 3.4 + 1.5


def test_a_letter_over_adsl_keeps_the_uplink_queue_short_and_the_camera_moving() -> None:
    with FieldLink("adsl") as link:
        run = measure(link, "aiortc", uplink_control=None, document_bytes=LETTER_BYTES, settle_s=6.0)
    print(run)
    assert run.uplink_control, "the uplink control is on by default"
    assert run.document_s is not None, "the letter never arrived"
    assert run.document_s <= LETTER_MAX_S
    assert run.queue_ms["p50"] <= QUEUE_P50_MAX_MS
    assert run.queue_ms["p95"] <= QUEUE_P95_MAX_MS
    assert run.dropped == 0  # never the 400 ms queue's tail drop
    # The clerk kept receiving the camera: pictures throughout, no gap of a second.
    assert run.camera["fps"] >= 5 and run.camera["longest_gap_ms"] < 1000
