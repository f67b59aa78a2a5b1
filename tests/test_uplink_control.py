"""The shared uplink estimate against a model of a thin uplink (a bottleneck with a drop-tail queue of
400 ms, FIELD-NETWORKS.md's profiles), and how it shares the estimate out."""

from __future__ import annotations

import random

import pytest

from kiosk_client.core.uplink_control import (
    AUDIO_BPS,
    CAMERA_FLOOR_BPS,
    DOCUMENTS_FLOOR_BPS,
    FORM_FLOOR_BPS,
    UplinkController,
)


def run_link(
    capacity_bps: float, base_rtt_s: float, loss: float, seconds: float, seed: int = 1
) -> tuple[UplinkController, list[float], list[float]]:
    """Sends at the controller's estimate into a bottleneck; reports loss and RTT once a second, as
    RTCP receiver reports do. Returns the controller, the estimates and the RTTs after the first 20 s."""
    rng = random.Random(seed)
    control = UplinkController()
    queue_bits = 0.0
    max_queue_bits = capacity_bps * 0.4
    dt = 0.05
    sent = lost = 0.0
    estimates: list[float] = []
    rtts: list[float] = []
    t = 0.0
    while t < seconds:
        t += dt
        offered = control.estimate * dt
        queue_bits += offered
        drained = capacity_bps * dt
        queue_bits = max(0.0, queue_bits - drained)
        dropped = max(0.0, queue_bits - max_queue_bits)
        queue_bits -= dropped
        sent += offered
        lost += dropped + offered * loss * (0.5 + rng.random())  # random loss, noisy as measured
        if abs(t - round(t)) < dt / 2:  # a report each second
            rtt = base_rtt_s + queue_bits / capacity_bps
            control.on_report(t, lost / sent if sent else 0.0, rtt)
            sent = lost = 0.0
            if t > 20:
                estimates.append(control.estimate)
                rtts.append(rtt)
    return control, estimates, rtts


@pytest.mark.parametrize(
    ("name", "capacity", "rtt", "loss"),
    [("adsl", 800_000, 0.040, 0.005), ("satellite", 2_000_000, 0.600, 0.005)],
)
def test_it_fills_a_thin_uplink_and_keeps_its_queue_short(
    name: str, capacity: int, rtt: float, loss: float
) -> None:
    _, estimates, rtts = run_link(capacity, rtt, loss, seconds=120)
    mean = sum(estimates) / len(estimates)
    assert 0.6 * capacity <= mean <= 1.1 * capacity, (name, mean)
    rtts.sort()
    p95 = rtts[int(len(rtts) * 0.95)]
    assert p95 <= 1.5 * rtt + 0.03, (name, p95)  # the goal: RTT under load ≤ 1.5 × idle


def test_random_loss_below_ten_percent_does_not_collapse_it() -> None:
    _, estimates, _ = run_link(1_500_000, 0.080, 0.02, seconds=90)  # valley 4G
    assert min(estimates) >= 300_000


def test_heavy_loss_brings_it_down_and_it_recovers() -> None:
    control = UplinkController(start_bps=1_000_000)
    for second in range(1, 6):
        control.on_report(float(second), 0.30, 0.05)
    assert control.estimate < 500_000 and control.decreases["loss"] >= 3
    low = control.estimate
    for second in range(6, 40):
        control.on_report(float(second), 0.0, 0.05)
    assert control.estimate > 2 * low


def test_remb_is_a_ceiling_on_the_pictures() -> None:
    control = UplinkController(start_bps=1_000_000)
    control.form_active = True
    control.on_remb(0.0, 300_000)
    shared = control.allocation()
    assert shared.camera_bps + shared.form_bps <= 300_000 and control.estimate == 1_000_000
    control.on_report(1.0, 0.0, 0.04)
    assert control.allocation().camera_bps + control.allocation().form_bps <= 300_000
    control.on_report(7.0, 0.0, 0.04)  # REMB not heard of for 5 s: no longer a ceiling
    assert control.allocation().camera_bps + control.allocation().form_bps > 300_000


def test_voice_first_then_the_form_then_the_camera_then_the_documents() -> None:
    control = UplinkController(start_bps=700_000)
    plain = control.allocation()
    assert plain.audio_bps == AUDIO_BPS and plain.form_bps == 0 and plain.documents_bps == 0
    assert plain.camera_bps == 700_000 - AUDIO_BPS
    control.form_active = True
    with_form = control.allocation()
    assert with_form.form_bps >= FORM_FLOOR_BPS and with_form.camera_bps >= CAMERA_FLOOR_BPS
    assert with_form.audio_bps + with_form.form_bps + with_form.camera_bps <= 700_000
    control.documents_waiting = True
    busy = control.allocation()
    assert busy.documents_bps >= DOCUMENTS_FLOOR_BPS and busy.camera_bps < with_form.camera_bps
    assert busy.audio_bps + busy.form_bps + busy.camera_bps + busy.documents_bps <= 700_000
    # On the thinnest link the camera steps down (pixels and frames) rather than stopping.
    control.estimate = 120_000
    thin = control.allocation()
    assert thin.camera_bps >= CAMERA_FLOOR_BPS and thin.camera.scale == 0.5 and thin.camera.fps == 10
    # Back up only after a few rounds with room to spare (each size change costs a keyframe).
    control.form_active = control.documents_waiting = False
    control.estimate = 400_000
    assert control.allocation().camera.scale == 0.5
    steps = [control.allocation().camera.scale for _ in range(7)]
    assert steps[-1] == 1.0 and steps.count(0.5) >= 2


def test_documents_get_a_real_share_of_an_adsl_uplink() -> None:
    control = UplinkController(start_bps=750_000)
    control.documents_waiting = True
    share = control.allocation()
    # A 128 KB letter in at most about 4 s (Chromium took 3.4 s on this link).
    assert 128 * 1024 * 8 / share.documents_bps <= 4.0
