"""Short sound cues (assets/sounds, made by scripts/make_sounds.py) played with QSoundEffect.

A kiosk without a working audio output plays nothing, says so once in the log and once to the staff,
and never fails because of it.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtMultimedia import QMediaDevices, QSoundEffect

from ..core.cues import Cue
from ..resources import asset_path

log = logging.getLogger(__name__)

BASE_VOLUME = 0.5  # at the default loudness; « Son + » raises it towards 1.0


class SoundCues(QObject):
    availability_changed = Signal()

    def __init__(
        self, enabled: bool = True, folder: Path | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.enabled = enabled
        self.failed = False  # enabled, but no sound can come out: a notice for the staff
        # Every cue asked for, newest last (bounded: a kiosk runs for months). What tests observe:
        # whether a sound came out of a loudspeaker is not something a test can hear.
        self.requested: deque[Cue] = deque(maxlen=64)
        self._folder = folder or asset_path("sounds")
        self._gain = 1.0
        self._effects: dict[Cue, QSoundEffect] = {}
        if enabled:
            self._load()

    def _load(self) -> None:
        if not QMediaDevices.audioOutputs():
            self._fail("no audio output device")
            return
        for cue in Cue:
            path = self._folder / f"{cue.value}.wav"
            if not path.exists():
                self._fail(f"{path} is missing")
                return
            effect = QSoundEffect(self)
            effect.setSource(QUrl.fromLocalFile(str(path)))
            effect.setVolume(self._volume())
            effect.statusChanged.connect(self._check_status)
            self._effects[cue] = effect

    def _check_status(self) -> None:
        if any(e.status() is QSoundEffect.Status.Error for e in self._effects.values()):
            self._fail("the audio output refused the sounds")

    def _fail(self, why: str) -> None:
        if not self.failed:  # once: a kiosk without speakers would otherwise log at every cue
            log.warning("sound cues are silent: %s", why)
            self.failed = True
            self.availability_changed.emit()

    def _volume(self) -> float:
        return min(1.0, BASE_VOLUME * self._gain)

    def play(self, cue: Cue) -> None:
        if not self.enabled:
            return
        self.requested.append(cue)
        effect = self._effects.get(cue)
        if effect is None or self.failed:
            return
        for other in self._effects.values():  # one at a time: two cues at once are noise
            if other is not effect:
                other.stop()
        effect.play()

    def stop(self) -> None:
        for effect in self._effects.values():
            effect.stop()

    def set_gain(self, gain: float) -> None:
        self._gain = gain
        for effect in self._effects.values():
            effect.setVolume(self._volume())
