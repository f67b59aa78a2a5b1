"""The sound cues in assets/sounds are exactly what scripts/make_sounds.py makes, and are short."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

from kiosk_client.core.cues import Cue
from kiosk_client.resources import asset_path

ROOT = Path(__file__).resolve().parent.parent


def test_every_cue_has_a_short_committed_sound_made_by_the_script(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sounds.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for cue in Cue:
        committed = asset_path(f"sounds/{cue.value}.wav")
        assert committed.read_bytes() == (tmp_path / f"{cue.value}.wav").read_bytes(), cue
        with wave.open(str(committed)) as sound:
            seconds = sound.getnframes() / sound.getframerate()
        assert 0.2 <= seconds <= (1.6 if cue is Cue.TEST else 0.7), (cue, seconds)
