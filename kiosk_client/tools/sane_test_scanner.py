"""SANE's virtual "test" scanner, configured through a folder of its own (SANE_CONFIG_DIR): the demo's
scanner when none is attached, and the benchmarks' and tests' real scanner."""

from __future__ import annotations

from pathlib import Path


def sane_test_folder(root: Path, *, backends: str = "test", **options: str) -> Path:
    """Writes root/sane.d for the test backend. `options` are test.conf lines (underscores for
    dashes), e.g. read_status_code='"SANE_STATUS_JAMMED"' for a jam, read_delay="true" for a slow one."""
    folder = root / "sane.d"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dll.conf").write_text(backends + "\n")
    lines = ["number_of_devices 1", 'test-picture "Color pattern"']
    lines += [f"{key.replace('_', '-')} {value}" for key, value in options.items()]
    (folder / "test.conf").write_text("\n".join(lines) + "\n")
    return folder
