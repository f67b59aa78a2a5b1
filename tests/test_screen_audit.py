"""`kiosk-client audit screens`: every state rendered and measured; its detectors find what they claim."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from kiosk_client.ui.screen_audit import Findings, _clipped, text_contrast


def test_the_audit_renders_every_state_and_prints_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "screens"
    done = subprocess.run(
        [sys.executable, "-m", "kiosk_client", "audit", "screens", "--json", "--out", str(out),
         "--sizes", "1366x768", "--languages", "fr"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {"screens", "sizes", "offscreen_widgets", "clipped_labels", "min_target_px", "min_gap_px",
                "min_contrast", "min_text_px", "window_larger_than_screen"}  # fmt: skip
    assert expected <= set(result)
    pngs = sorted(p.name for p in out.glob("fr-1366x768-*.png"))
    assert result["screens"] == len(pngs) >= 20 and (out / "contact-sheet.png").stat().st_size > 10_000
    assert {"fr-1366x768-consent.png", "fr-1366x768-hang_up_confirmation.png"} <= set(pngs)
    assert result["sizes"] == ["1366x768"] and result["min_target_px"] > 0 and result["min_text_px"] > 0
    assert result["min_gap_px"] is not None  # the consent and hang-up states show their two answers
    # What this audit holds the kiosk to at the commonest cheap touch screen:
    assert result["window_larger_than_screen"] == 0 and result["offscreen_widgets"] == 0
    assert result["min_clerk_video_px"] >= 180  # the clerk stays a readable face in every state


def test_bad_sizes_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kiosk_client", "audit", "screens", "--sizes", "wide", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "--sizes" in done.stderr


def test_the_detectors(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QLabel, QPushButton

    fits, clipped = QPushButton("OK"), QPushButton("Scanner plusieurs feuilles")
    for button in (fits, clipped):
        qtbot.addWidget(button)
        button.resize(120, 72)
        button.show()
    assert not _clipped(fits) and _clipped(clipped)
    label = QLabel("Un texte bien trop long pour sa boîte")
    qtbot.addWidget(label)
    label.resize(60, 30)
    label.show()
    assert _clipped(label)
    white = np.full((40, 200, 3), 255, np.uint8)
    white[15:25, 20:180] = 0  # black text
    assert abs((text_contrast(white) or 0) - 21.0) < 0.1
    grey = np.full((40, 200, 3), 255, np.uint8)
    grey[15:25, 20:180] = 200
    assert (text_contrast(grey) or 99) < 2
    assert Findings().summary([(1280, 720)])["min_contrast"] is None


def test_below_1280_by_720_the_essentials_stay_on_the_screen(tmp_path: Path, qtbot: QtBot) -> None:
    """A screen smaller than the kiosk's minimum is reported to the staff (test_kiosk_screens); the
    citizen can still answer, scan, send and hang up: those buttons stay on it."""
    from kiosk_client.ui.screen_audit import audit_screens

    essentials = {
        "waiting", "in_call", "consent", "controlled", "keyboard_secret_controlled", "documents_requested",
        "documents_pages", "form_documents_pages", "hang_up_confirmation", "ended_citizen_hung_up",
    }  # fmt: skip
    result = audit_screens(tmp_path, [(1024, 600)], ("fr",), essentials)
    assert result["screens"] == len(essentials)
    assert result["offscreen_widgets"] == 0, result["examples"]["offscreen"]
    assert result["window_larger_than_screen"] == 0, result["examples"]["larger_than_screen"]


STAFF = {
    "staff_pin", "staff_locked", "staff_panel", "staff_walk_in", "staff_walk_in_refused", "staff_devices",
    "staff_devices_loud", "staff_devices_missing", "staff_devices_time_limit", "staff_devices_in_use",
}  # fmt: skip
FORM_FAILURE = {"form_failed", "form_failed_controlled", "larger_text_form_failed"}


def test_the_staff_panel_and_the_form_failure_fit_every_kiosk_screen(tmp_path: Path, qtbot: QtBot) -> None:
    """The staff's screens (PIN pad, lock-out, main page, walk-in code, the device check with its live
    picture and level) at every size of CITIZEN-UX.md, in French and at the smallest in English; the
    citizen's « Réessayer » message at the smallest and the commonest (a form view costs seconds)."""
    from kiosk_client.ui.screen_audit import SIZES, audit_screens

    staff = audit_screens(tmp_path / "staff", list(SIZES), ("fr",), STAFF)
    english = audit_screens(tmp_path / "en", [(1280, 720)], ("en",), STAFF)
    failure = audit_screens(tmp_path / "form", [(1280, 720), (1366, 768)], ("fr",), FORM_FAILURE)
    for figures in (staff, english, failure):
        examples = figures["examples"]
        assert figures["clipped_labels"] == 0, examples["clipped"]
        assert figures["offscreen_widgets"] == 0, examples["offscreen"]
        assert figures["window_larger_than_screen"] == 0, examples["larger_than_screen"]
        assert figures["min_target_px"] >= 64, figures["worst"]["target"]
        assert figures["min_contrast"] >= 4.5, figures["worst"]["contrast"]
        assert figures["min_text_px"] >= 20, figures["worst"]["text"]
    assert staff["screens"] == len(STAFF) * len(SIZES) and failure["screens"] == 2 * len(FORM_FAILURE)
    assert (tmp_path / "staff" / "fr-1366x768-staff_devices.png").exists()


def test_the_audit_finds_a_staff_label_that_does_not_fit(
    tmp_path: Path, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiosk_client.ui import i18n
    from kiosk_client.ui.screen_audit import audit_screens

    words = dict(i18n.CATALOGUE["fr"])
    words["staff.devices.level"] = "{db} dBFS, mesurés sur les dix dernières secondes de son du micro"
    monkeypatch.setitem(i18n.CATALOGUE, "fr", words)
    result = audit_screens(tmp_path, [(1280, 720)], ("fr",), {"staff_devices"})
    assert result["clipped_labels"] + result["window_larger_than_screen"] + result["offscreen_widgets"] > 0
