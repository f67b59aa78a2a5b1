"""« Écouter »: the screen's instruction or question read aloud, in the kiosk's language, through
QtTextToSpeech (speech-dispatcher with espeak-ng's voices on Debian; Qt's silent "mock" engine in
tests). A missing or failing engine is never the citizen's problem: the buttons go, the staff are told.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, QLocale, QObject, Signal
from PySide6.QtTextToSpeech import QTextToSpeech
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

LOCALES = {
    "fr": QLocale(QLocale.Language.French, QLocale.Country.France),
    "en": QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom),
}
BASE_VOLUME = 0.5  # at the default loudness: speech-dispatcher's normal volume (0 on its -100..100)


class ReadAloud(QObject):
    """One voice for the whole window; saying something new stops what was being said."""

    availability_changed = Signal()

    def __init__(
        self,
        engine: str = "speechd",
        rate: float = -0.2,
        *,
        need_voice: bool = True,
        parent: QObject | None = None,
    ) -> None:
        """`need_voice=False` offers the buttons even in a language the engine has no voice for: only
        for the screen audit, which measures the screens of a kiosk whose voices are installed."""
        super().__init__(parent)
        self._rate = rate
        self._need_voice = need_voice
        self._gain = 1.0
        self._owner: QWidget | None = None
        self.failed = False  # the engine is configured but does not work: a notice for the staff
        self.tts: QTextToSpeech | None = None
        self._missing_logged: set[str] = set()
        if engine == "none":
            return
        tts = QTextToSpeech(engine, self)
        if tts.state() is QTextToSpeech.State.Error:
            log.warning(
                "read-aloud is off: the text-to-speech engine %r did not start (%s)",
                engine,
                tts.errorString(),
            )
            self.failed = True
            tts.deleteLater()
            return
        self.tts = tts
        tts.errorOccurred.connect(self._engine_failed)

    def _engine_failed(self, reason: QTextToSpeech.ErrorReason, text: str) -> None:
        # A first failure turns read-aloud off for good: better no button than one that does nothing.
        if not self.failed:
            log.warning("read-aloud is off: the text-to-speech engine failed (%s: %s)", reason, text)
        self.failed = True
        self.availability_changed.emit()

    def _locale(self, language: str) -> QLocale | None:
        """The engine's voice for the language: the kiosk's own territory if it has one, any other
        French (or English) otherwise; None when it has no voice in that language."""
        assert self.tts is not None
        wanted = LOCALES[language]
        available = self.tts.availableLocales()
        if wanted in available:
            return wanted
        same = [locale for locale in available if locale.language() == wanted.language()]
        if same:
            return same[0]
        if language not in self._missing_logged:
            self._missing_logged.add(language)
            log.warning("read-aloud has no %s voice: its « Écouter » buttons are hidden", wanted.name())
        return None

    def available(self, language: str) -> bool:
        if self.tts is None or self.failed:
            return False
        return self._locale(language) is not None or not self._need_voice

    def say(self, text: str, language: str, owner: QWidget | None = None) -> None:
        """Read `text` aloud; it stops by itself if `owner` (the button that asked) is hidden."""
        if not self.available(language) or self.tts is None:
            return
        self.stop()
        locale = self._locale(language)
        if locale is not None and self.tts.locale() != locale:
            self.tts.setLocale(locale)
        self.tts.setRate(self._rate)
        self.tts.setVolume(min(1.0, BASE_VOLUME * self._gain))
        self._watch(owner)
        self.tts.say(text)

    def _watch(self, owner: QWidget | None) -> None:
        if self._owner is not None:
            self._owner.removeEventFilter(self)
        self._owner = owner
        if owner is not None:
            owner.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The question was answered, the panel closed, the screen changed: its reading stops with it.
        if watched is self._owner and event.type() is QEvent.Type.Hide:
            self.stop()
        return False

    def speaking(self) -> bool:
        return self.tts is not None and self.tts.state() in (
            QTextToSpeech.State.Speaking,
            QTextToSpeech.State.Synthesizing,
        )

    def stop(self) -> None:
        self._watch(None)
        if self.tts is not None and self.speaking():
            self.tts.stop()

    def set_gain(self, gain: float) -> None:
        """The loudness the citizen chose (« Son + »), for what is read from now on."""
        self._gain = gain
        if self.tts is not None:
            self.tts.setVolume(min(1.0, BASE_VOLUME * gain))
