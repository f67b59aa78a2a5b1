"""« Écouter », sound cues, the volume and the waiting check, on the real window: read-aloud goes
through the real QTextToSpeech with Qt's "mock" engine (it "speaks" word by word on a timer, emitting
sayingWord, and has English voices but no French one), cues are observed on the player's record of
what it was asked to play (no test can hear a loudspeaker)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtTextToSpeech import QTextToSpeech
from pytestqt.qtbot import QtBot

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, MemoryCache
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.cues import Cue
from kiosk_client.core.document_desk import DocumentsState
from kiosk_client.core.document_protocol import Manifest
from kiosk_client.core.document_transfer import Transfer, TransferStatus
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.events import KioskSnapshot
from kiosk_client.core.models import Appointment
from kiosk_client.core.session import EndReason, Phase, Session
from kiosk_client.core.settings import AccessibilitySettings
from kiosk_client.core.volume import DEFAULT_LEVEL, MAX_LEVEL
from kiosk_client.runtime import LoopThread
from kiosk_client.ui.bridge import EngineBridge
from kiosk_client.ui.main_window import KioskWindow
from kiosk_client.ui.widgets import ListenButton

NOW = datetime.now(UTC)
APPOINTMENT = Appointment("a1", "CAF", "Mme Martin", NOW + timedelta(minutes=1), NOW + timedelta(minutes=31))
WITH_FORM = replace(APPOINTMENT, start_url="about:blank")
MOCK = AccessibilitySettings(speech_engine="mock", speech_rate=1.0, sound_cues=True)  # fast "speech"


def snapshot(session: Session, **changes: object) -> KioskSnapshot:
    values: dict[str, object] = {
        "site_name": "France Services de Saint-Amand",
        "kiosk_name": "Borne 1",
        "session": session,
        "today": (APPOINTMENT,),
        "central_reachable": True,
        "schedule_known": True,
        "notices": frozenset(),
        "microphone_on": True,
        "camera_on": True,
        "media_flowing": True,
        "clock_offset_s": 0.0,
    }
    values.update(changes)
    return KioskSnapshot(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_window(qtbot: QtBot) -> Iterator[object]:
    # Never started, as in test_kiosk_screens: commands wait, none runs; cancelled at the end.
    loop = LoopThread()
    windows: list[KioskWindow] = []

    def make(language: str = "en", accessibility: AccessibilitySettings = MOCK) -> KioskWindow:
        engine = KioskEngine(
            FakeCentral(), FakeCallFactory(), MemoryCache(), CentralClock(SystemClock()), lambda e: None
        )
        window = KioskWindow(EngineBridge(loop), engine, language, accessibility=accessibility)
        qtbot.addWidget(window)
        window.resize(1280, 800)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.show_state(snapshot(Session()))  # releases a form's web profile
    loop.stop()


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def heard(window: KioskWindow, qtbot: QtBot, listen: ListenButton) -> list[str]:
    """Touch « Listen » and collect what the engine says, word by word, until it is done."""
    tts = window.speech.tts
    assert tts is not None
    said: list[str] = []
    tts.sayingWord.connect(lambda word, _id, _start, _length: said.append(word))
    assert listen.isVisible()
    listen.click()
    assert tts.state() is QTextToSpeech.State.Speaking
    qtbot.waitUntil(lambda: tts.state() is QTextToSpeech.State.Ready, timeout=15_000)
    assert tts.locale().name() == "en_GB"
    return said


def test_listen_reads_each_screens_instruction_and_question_in_english(make_window, qtbot: QtBot) -> None:
    window = make_window("en")
    window.show_state(snapshot(Session()))
    assert heard(window, qtbot, window.idle.listen) == words(
        "France Services de Saint-Amand. For an appointment, please ask at the desk."
    )
    window.show_state(snapshot(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT)))
    said = heard(window, qtbot, window.waiting.check_listen)
    assert said[:8] == words("Can you see yourself? Can you hear me?")
    assert "Try" in said and "microphone" in said
    said = heard(window, qtbot, window.waiting.listen)
    assert said[:5] == words("Mme Martin will join you")
    window.show_state(snapshot(Session(Phase.IN_CALL, WITH_FORM), control="requested"))
    qtbot.waitUntil(lambda: window.call.consent_listen.isVisible())
    assert heard(window, qtbot, window.call.consent_listen) == words(
        "Mme Martin offers to fill in the form for you. Do you agree? "
        "You will see everything that is done. You can take control back at any time."
    )
    window.show_state(snapshot(Session(Phase.IN_CALL, WITH_FORM)))
    window.call.hang_up.click()
    assert heard(window, qtbot, window.call.confirm_listen) == words("Do you really want to end the meeting?")
    window.call.confirm_no.click()
    documents = DocumentsState(requested="proof of address")
    window.show_state(snapshot(Session(Phase.IN_CALL, WITH_FORM), documents=documents))
    said = heard(window, qtbot, window.call.documents.listen)
    assert said[:7] == words("Mme Martin asks for: proof of address.")
    assert "Lay" in said  # and what to do
    ended = Session(Phase.ENDED, APPOINTMENT, end_reason=EndReason.CLERK_HUNG_UP, ended_at=NOW)
    window.show_state(snapshot(ended))
    assert heard(window, qtbot, window.ended.listen)[:4] == words("The meeting has ended")


def test_french_texts_are_read_in_french_and_never_by_an_english_voice(make_window, qtbot: QtBot) -> None:
    window = make_window("fr")
    in_call = Session(Phase.IN_CALL, WITH_FORM)
    window.show_state(snapshot(in_call, control="requested"))
    qtbot.waitUntil(lambda: window.call.consent.isVisible())
    consent = window.call.consent_listen
    assert consent.text_to_read == (
        "Mme Martin propose de remplir le formulaire pour vous. Êtes-vous d\u2019accord\u202f? "
        "Vous verrez tout ce qui est fait. Vous pourrez reprendre la main à tout moment."
    )
    # Qt's mock engine has no French voice: rather than French read in English, no button at all,
    # and a word for the staff (a discreet sign while a citizen is there, words on the idle screen).
    assert not consent.isVisible()
    assert window.notices.isVisible() and window.notices.text() == "\u26a0"
    window.show_state(snapshot(Session()))
    assert "Lecture à voix haute indisponible" in window.notices.text()
    window.switch_language()  # the citizen chooses English: there is a voice for that
    assert window.idle.listen.isVisible()
    assert heard(window, qtbot, window.idle.listen)[-5:] == words("please ask at the desk")


@pytest.mark.parametrize("engine", ["speechd-that-is-not-there", "speechd"])
def test_a_missing_speech_engine_hides_the_buttons_and_tells_the_staff(
    make_window, qtbot: QtBot, engine: str
) -> None:
    if engine == "speechd" and QTextToSpeech("speechd").state() is not QTextToSpeech.State.Error:
        pytest.skip("speech-dispatcher works on this machine")
    window = make_window("fr", AccessibilitySettings(speech_engine=engine, sound_cues=False))
    assert window.speech.failed
    window.show_state(snapshot(Session()))
    assert not window.idle.listen.isVisible()
    assert "Lecture à voix haute indisponible" in window.notices.text()
    window.show_state(snapshot(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT)))
    assert not window.waiting.check_listen.isVisible() and not window.waiting.listen.isVisible()
    assert window.notices.text() == "\u26a0"  # no technical words for the citizen
    window.waiting.listen.click()  # even a touch that got through says nothing and breaks nothing


def test_an_engine_that_fails_later_turns_read_aloud_off(make_window, qtbot: QtBot) -> None:
    window = make_window("en")
    window.show_state(snapshot(Session()))
    assert window.idle.listen.isVisible()
    tts = window.speech.tts
    assert tts is not None
    tts.errorOccurred.emit(QTextToSpeech.ErrorReason.Playback, "the audio device went away")
    assert not window.idle.listen.isVisible()
    assert "Read-aloud unavailable" in window.notices.text()


def test_reading_stops_when_the_screen_moves_on_and_at_the_end_of_the_session(
    make_window, qtbot: QtBot
) -> None:
    window = make_window("en", replace(MOCK, speech_rate=-1.0))  # slow: still speaking when it changes
    tts = window.speech.tts
    assert tts is not None
    asking = snapshot(Session(Phase.IN_CALL, WITH_FORM), control="requested")
    window.show_state(asking)
    qtbot.waitUntil(lambda: window.call.consent_listen.isVisible())
    window.call.consent_listen.click()
    window.show_state(asking)  # the clock ticks: nothing changed, the reading goes on
    assert tts.state() is QTextToSpeech.State.Speaking
    window.show_state(snapshot(Session(Phase.IN_CALL, WITH_FORM), control="granted"))  # answered
    assert tts.state() is QTextToSpeech.State.Ready
    window.call.hang_up.click()
    window.call.confirm_listen.click()
    assert tts.state() is QTextToSpeech.State.Speaking
    window.call.confirm_no.click()  # the question went away: so does its reading
    assert tts.state() is QTextToSpeech.State.Ready
    window.show_state(snapshot(Session(Phase.IN_CALL, WITH_FORM), documents=DocumentsState(requested="x")))
    window.call.documents.listen.click()
    assert tts.state() is QTextToSpeech.State.Speaking
    ended = Session(Phase.ENDED, WITH_FORM, end_reason=EndReason.CLERK_HUNG_UP, ended_at=NOW)
    window.show_state(snapshot(ended))
    assert tts.state() is QTextToSpeech.State.Ready


def test_a_cue_at_each_key_moment_and_none_on_a_repeat(make_window, qtbot: QtBot) -> None:
    window = make_window("fr")
    cues = window.sounds.requested
    window.show_state(snapshot(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT)))
    assert list(cues) == []
    window.waiting.test_sound.click()
    assert list(cues) == [Cue.TEST]
    in_call = Session(Phase.IN_CALL, APPOINTMENT)
    window.show_state(snapshot(in_call, documents=DocumentsState()))
    window.show_state(snapshot(in_call, documents=DocumentsState()))
    window.show_state(snapshot(in_call, documents=DocumentsState(), control="requested"))
    window.show_state(snapshot(in_call, documents=DocumentsState(requested="avis d'imposition")))
    manifest = Manifest("0" * 32, "Avis.pdf", "application/pdf", 1000, 1, "a" * 64)
    received = DocumentsState(transfers=(Transfer(manifest, TransferStatus.RECEIVED),))
    window.show_state(snapshot(in_call, documents=received))
    window.show_state(snapshot(in_call, documents=received))
    assert list(cues) == [
        Cue.TEST,
        Cue.CLERK_JOINED,
        Cue.CONTROL_REQUESTED,
        Cue.DOCUMENT_REQUESTED,
        Cue.DOCUMENT_RECEIVED,
    ]


def test_without_an_audio_output_the_cues_are_silent_said_once_and_told_to_the_staff(
    make_window, qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    from PySide6.QtMultimedia import QMediaDevices

    if QMediaDevices.audioOutputs():
        pytest.skip("this machine has an audio output")
    window = make_window("fr")
    for _ in range(3):
        window.show_state(snapshot(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT)))
        window.waiting.test_sound.click()
    assert window.sounds.failed and list(window.sounds.requested) == [Cue.TEST] * 3
    assert len([r for r in caplog.records if "sound cues are silent" in r.message]) <= 1
    window.show_state(snapshot(Session()))
    assert "Pas de sortie son" in window.notices.text()


def test_the_volume_shows_its_level_in_words_and_reaches_the_voice_and_the_cues(
    make_window, qtbot: QtBot
) -> None:
    window = make_window("fr")
    tts = window.speech.tts
    assert tts is not None
    in_call = Session(Phase.IN_CALL, APPOINTMENT)
    window.show_state(snapshot(in_call))
    call = window.call
    assert call.volume_level.text() == f"Son\u00a0: {DEFAULT_LEVEL} sur {MAX_LEVEL}"
    assert call.volume_down.text() == "Son −" and call.volume_up.text() == "Son +"
    assert call.volume_up.height() >= 64 and call.volume_down.height() >= 64
    normal = tts.volume()
    louder: list[int] = []
    call.volume_changed.connect(louder.append)
    call.volume_up.click()
    call.volume_down.click()
    assert louder == [1, -1]  # to the engine (whose steps tests/test_engine.py checks)
    window.show_state(snapshot(in_call, volume=MAX_LEVEL))
    assert call.volume_level.text() == f"Son\u00a0: {MAX_LEVEL} sur {MAX_LEVEL}"
    assert not call.volume_up.isEnabled() and call.volume_down.isEnabled()
    assert tts.volume() > normal
    window.show_state(snapshot(in_call, volume=1))
    assert tts.volume() < normal and not call.volume_down.isEnabled()


def test_the_microphone_bar_moves_and_says_when_there_is_no_microphone(make_window, qtbot: QtBot) -> None:
    window = make_window("fr")
    window.show_state(snapshot(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT)))
    waiting = window.waiting
    assert waiting.check.isVisible() and waiting.self_view.isVisible()
    bridge = window._bridge
    assert waiting.level_bar.lit() == 0
    bridge.microphone_level_measured(0.1)  # from the engine's thread, as the call's meter does
    qtbot.waitUntil(lambda: waiting.level_bar.lit() > 5)
    bridge.microphone_level_measured(0.001)
    qtbot.waitUntil(lambda: waiting.level_bar.lit() < 3)
    assert waiting.microphone_words.text().startswith("Votre micro\u00a0: parlez")
    bridge.microphone_level_measured(None)
    qtbot.waitUntil(lambda: not waiting.level_bar.isVisible())
    assert waiting.microphone_words.text().startswith("Pas de micro sur cette borne.")
    window.show_state(
        snapshot(Session(Phase.ENDED, APPOINTMENT, end_reason=EndReason.CLERK_NO_SHOW, ended_at=NOW))
    )
    window.show_state(snapshot(Session(Phase.UPCOMING, APPOINTMENT)))
    assert waiting.level_bar.lit() == 0 and not waiting.self_view.has_image()  # nothing of the last one
