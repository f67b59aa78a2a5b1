"""The SANE `test` backend as a real scanner, configured through its own folder (SANE_CONFIG_DIR)."""

from __future__ import annotations

from pathlib import Path

from kiosk_client.adapters.scanner_sane import SaneScanner
from kiosk_client.tools.sane_test_scanner import sane_test_folder as sane_folder

__all__ = ["sane_folder", "sane_scanner"]


def sane_scanner(folder: Path, stall_timeout_s: float = 20.0) -> SaneScanner:
    return SaneScanner(env={"SANE_CONFIG_DIR": str(folder)}, stall_timeout_s=stall_timeout_s)
