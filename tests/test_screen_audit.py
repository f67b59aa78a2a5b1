"""`kiosk-client audit screens`: every state rendered and measured; its detectors find what they claim."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
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
