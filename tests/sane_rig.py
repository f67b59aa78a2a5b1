"""The SANE `test` backend as a real scanner, configured through its own folder (SANE_CONFIG_DIR)."""

from __future__ import annotations

from pathlib import Path

from kiosk_client.adapters.scanner_sane import SaneScanner


def sane_folder(root: Path, *, backends: str = "test", **options: str) -> Path:
    """`options` are test.conf lines (underscores for dashes), e.g. read_status_code='"SANE_STATUS_JAMMED"'."""
    folder = root / "sane.d"
    folder.mkdir(exist_ok=True)
    (folder / "dll.conf").write_text(backends + "\n")
    lines = ["number_of_devices 1", 'test-picture "Color pattern"']
    lines += [f"{key.replace('_', '-')} {value}" for key, value in options.items()]
    (folder / "test.conf").write_text("\n".join(lines) + "\n")
    return folder


def sane_scanner(folder: Path, stall_timeout_s: float = 20.0) -> SaneScanner:
    return SaneScanner(env={"SANE_CONFIG_DIR": str(folder)}, stall_timeout_s=stall_timeout_s)
