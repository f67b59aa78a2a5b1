"""Writes the kiosk's sound cues into assets/sounds/ (run once; the WAV files are committed).

    .venv/bin/python scripts/make_sounds.py [--out FOLDER]

Why files made by a script rather than sounds synthesized at start-up: QSoundEffect plays files (a
URL), so start-up synthesis would still write files somewhere, on every start; committed files can be
listened to and reviewed like any other asset, and tests/test_sounds.py checks that this script still
makes exactly them (numpy's sine and rounding are deterministic).

The tones are soft bells in the range older ears hear best (392-1047 Hz: high pitches are the first
lost with age), with a gentle attack and a decay, peaking at -6 dBFS so that « Son + » has room.
"""

from __future__ import annotations

import argparse
import wave
from pathlib import Path

import numpy as np

RATE = 24_000  # plenty for tones under 1.1 kHz, and half the size of 48 kHz files
PEAK = 0.5  # -6 dBFS
SOUNDS = Path(__file__).resolve().parent.parent / "assets" / "sounds"

# Notes (Hz) as (start s, frequency, length s); each cue is short and has its own contour.
G4, A4, C5, D5, E5, G5, C6 = 392.0, 440.0, 523.25, 587.33, 659.25, 783.99, 1046.5
CUES: dict[str, list[tuple[float, float, float]]] = {
    # Someone arrives: three notes rising.
    "clerk_joined": [(0.0, G4, 0.35), (0.12, C5, 0.35), (0.24, E5, 0.4)],
    # A question: the same note twice, then a step up.
    "control_requested": [(0.0, A4, 0.2), (0.15, A4, 0.2), (0.3, E5, 0.35)],
    # « Please look »: two quick high bells.
    "document_requested": [(0.0, D5, 0.25), (0.18, D5, 0.3)],
    # Done: one chord, held a little.
    "document_received": [(0.0, C5, 0.55), (0.0, E5, 0.55), (0.0, G5, 0.55)],
    # « Essayer le son »: a short tune, long enough to judge the loudness.
    "test": [(0.0, C5, 0.4), (0.3, E5, 0.4), (0.6, G5, 0.4), (0.9, C6, 0.6)],
}


def bell(frequency: float, length: float) -> np.ndarray:
    t = np.arange(int(RATE * length)) / RATE
    attack = np.minimum(t / 0.012, 1.0)  # 12 ms: no click
    decay = np.exp(-t * 5.0)
    release = np.minimum((length - t) / 0.03, 1.0)  # fades out instead of stopping dead
    # A little of the octave makes it a bell rather than a test tone.
    tone = np.sin(2 * np.pi * frequency * t) + 0.25 * np.sin(4 * np.pi * frequency * t)
    return tone * attack * decay * release


def render(notes: list[tuple[float, float, float]]) -> np.ndarray:
    end = max(start + length for start, _, length in notes)
    mix = np.zeros(int(RATE * end) + 1)
    for start, frequency, length in notes:
        sound = bell(frequency, length)
        first = int(RATE * start)
        mix[first : first + len(sound)] += sound
    return np.round(mix / np.abs(mix).max() * PEAK * 32767).astype("<i2")


def write(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(RATE)
        file.writeframes(samples.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SOUNDS)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for name, notes in CUES.items():
        write(out / f"{name}.wav", render(notes))
        print(out / f"{name}.wav")


if __name__ == "__main__":
    main()
