"""The citizen's one-touch rating at the end of a session: asked only of a citizen who met the clerk,
answered with one touch (a face or « Passer ») on a screen in plain French, timed out by itself, and
carried to the central in the session report — also when the central was down at the session's end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, FakeResetScreen, MemoryCache
from kiosk_client.core.clock import CentralClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.errors import CentralUnavailable, MalformedResponse
from kiosk_client.core.events import SessionRecord
from kiosk_client.core.models import Appointment, Schedule
from kiosk_client.core.session import (
    IDLE,
    CitizenRating,
    EndReason,
    Phase,
    Session,
    Timing,
    advance,
    call_dropped,
    clerk_answered,
    hung_up,
    rated,
)
from kiosk_client.core.session_report import record_to_json
from kiosk_client.core.settings import AccessibilitySettings
from kiosk_client.core.wire import parse_remote_config
from kiosk_client.runtime import LoopThread
from kiosk_client.ui.bridge import EngineBridge
from kiosk_client.ui.i18n import Translator
from kiosk_client.ui.main_window import KioskWindow
from kiosk_client.ui.rating import faces_to_read

from .kiosk_rig import NoonClock
from .test_reset_service import FAST, Kiosk, kiosk, two_appointments  # noqa: F401 - the fixture

T0 = datetime(2026, 12, 7, 10, tzinfo=UTC)
APPOINTMENT = Appointment("a1", "CAF", "Mme Martin", T0, T0 + timedelta(minutes=30))
TIMING = Timing(ended_screen=timedelta(seconds=12), rating_for=timedelta(seconds=30))
SCHEDULE = Schedule("Borne 1", "France Services", (APPOINTMENT,))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def in_call() -> Session:
    return clerk_answered(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT))


# --------------------------------------------------------------------------- the session machine


def test_a_citizen_who_met_the_clerk_is_asked_and_an_absent_one_never_holds_up_the_next() -> None:
    ended = hung_up(in_call(), by_clerk=True, now=at(60))
    assert ended.rating == CitizenRating(asked_at=at(60))
    assert advance(ended, at(89), SCHEDULE, frozenset({"a1"}), TIMING) == ended
    assert advance(ended, at(90), SCHEDULE, frozenset({"a1"}), TIMING) == IDLE  # timed out
    assert ended.rating.wire_value() == "no_answer"


def test_one_touch_then_thanks_then_idle_and_a_second_touch_changes_nothing() -> None:
    ended = hung_up(in_call(), by_clerk=False, now=at(60))
    answered = rated(ended, 4, at(65))
    assert answered.rating == CitizenRating(at(60), 4, at(65)) and answered.rating.wire_value() == 4
    assert rated(answered, 1, at(66)) == answered  # once only
    assert advance(answered, at(68), SCHEDULE, frozenset({"a1"}), TIMING) == answered  # « Merci »
    assert advance(answered, at(69), SCHEDULE, frozenset({"a1"}), TIMING) == IDLE
    skipped = rated(ended, None, at(61))
    assert skipped.rating is not None and skipped.rating.wire_value() == "skipped"
    for wrong in (0, 6, -1, True):
        assert rated(ended, wrong, at(61)) == ended  # type: ignore[arg-type]
    assert rated(in_call(), 5, at(61)) == in_call()  # no question outside the ended screen


def test_no_question_when_the_citizen_never_met_the_clerk() -> None:
    waiting = Session(Phase.WAITING_FOR_CLERK, APPOINTMENT, clerk_late=True)
    no_show = advance(
        waiting, at(15 * 60), SCHEDULE, frozenset(), replace(TIMING, no_show_after=timedelta(minutes=15))
    )
    assert no_show.end_reason is EndReason.CLERK_NO_SHOW and no_show.rating is None
    assert advance(no_show, at(15 * 60 + 12), SCHEDULE, frozenset(), TIMING) == IDLE  # the usual 12 s
    # A call that dropped and never came back: the citizen met the clerk, and may say so.
    dropped = call_dropped(in_call(), at(60))
    failed = call_dropped(replace(dropped, phase=Phase.IN_CALL), APPOINTMENT.end + timedelta(minutes=31))
    assert failed.end_reason is EndReason.CALL_FAILED and failed.rating is not None
    assert hung_up(dropped, by_clerk=True, now=at(70)).rating is not None  # hung up while reconnecting


def test_the_record_carries_counts_and_the_rating_never_a_person() -> None:
    record = SessionRecord(
        "a1", T0, 1.0, 2.0, 3.0, 3.1, 100, 200, 90, EndReason.CLERK_HUNG_UP, 602.0, None,
        first_answer_at=2.0, connections=2, documents_sent=3, control_used=True, citizen_rating=5,
    )  # fmt: skip
    sent = record_to_json(record)
    assert sent["call_seconds"] == 600.0 and sent["connections"] == 2 and sent["documents_sent"] == 3
    assert sent["control_used"] is True and sent["citizen_rating"] == 5
    never_met = record_to_json(replace(record, first_answer_at=None, citizen_rating=None))
    assert never_met["call_seconds"] is None and never_met["citizen_rating"] is None


# --------------------------------------------------------------------------- the engine (fake ports)


async def test_a_rating_given_while_the_central_is_down_reaches_it_later(
    kiosk: Callable[..., Kiosk],  # noqa: F811
) -> None:
    k = kiosk(FakeCentral(two_appointments(gap_s=30.0), FAST))
    k.engine._local_timing = Timing(ended_screen=timedelta(seconds=0.2), rating_thanks=timedelta(seconds=0.1))
    await k.one_session("a1")
    k.central.failure = CentralUnavailable("down")  # the central goes down as the session ends
    assert k.engine.snapshot().session.rating is not None
    await k.engine.rate_session(4)
    await k.engine.rate_session(1)  # a second touch changes nothing
    await k.until(lambda: k.engine.session.rating is None and k.engine.reset.pending_reports == 1)
    [waiting] = k.cache.load_pending_reports()  # on disk, in case the kiosk restarts meanwhile
    assert waiting["session"]["citizen_rating"] == 4  # type: ignore[index]
    k.central.failure = None
    k.engine.reset.central_is_back()
    await k.until(lambda: k.engine.reset.pending_reports == 0)
    session = k.central.session_reports[-1]["session"]
    assert session["citizen_rating"] == 4 and session["connections"] == 1  # type: ignore[index]
    assert session["call_seconds"] >= 0 and session["documents_sent"] == 0  # type: ignore[index]
    assert session["control_used"] is False  # type: ignore[index]
    assert k.engine.snapshot().session.rating is None  # the next citizen starts with nothing


async def test_no_touch_is_reported_as_no_answer(kiosk: Callable[..., Kiosk]) -> None:  # noqa: F811
    k = kiosk(FakeCentral(two_appointments(gap_s=30.0), FAST))
    await k.one_session("a1")
    await k.until(lambda: len(k.central.session_reports) == 2)
    assert k.central.session_reports[-1]["session"]["citizen_rating"] == "no_answer"  # type: ignore[index]


# --------------------------------------------------------------------------- the screen (pytest-qt)


@dataclass
class Rig:
    loop: LoopThread
    central: FakeCentral
    engine: KioskEngine
    window: KioskWindow

    def on_loop(self, action: Callable[[], object]) -> None:
        async def run() -> None:
            action()

        self.loop.submit(run()).result(timeout=5)

    def met_and_ended(self, qtbot: QtBot) -> None:
        qtbot.waitUntil(lambda: bool(self.central.offers), timeout=5_000)
        self.on_loop(lambda: self.central.answer("a1"))
        qtbot.waitUntil(lambda: self.engine.session.phase is Phase.IN_CALL, timeout=5_000)
        self.on_loop(lambda: self.central.clerk_hang_up("a1"))
        qtbot.waitUntil(lambda: self.window.stack.currentWidget() is self.window.ended, timeout=5_000)


@pytest.fixture
def rig(qtbot: QtBot) -> Iterator[Callable[[Timing], Rig]]:
    rigs: list[Rig] = []

    def start(timing: Timing) -> Rig:
        loop = LoopThread("engine")
        loop.start()
        bridge = EngineBridge(loop)
        start = NoonClock().now() + timedelta(seconds=0.5)
        only = Appointment("a1", "CAF", "Mme Martin", start, start + timedelta(minutes=20))
        central = FakeCentral(Schedule("Borne 1", "France Services", (only,)), FAST)
        engine = KioskEngine(
            central, FakeCallFactory(), MemoryCache(), CentralClock(NoonClock()), bridge.publish,
            local_timing=timing, tick_s=0.02,
        )  # fmt: skip
        quiet = AccessibilitySettings(speech_engine="none", sound_cues=False)
        window = KioskWindow(bridge, engine, "fr", accessibility=quiet)
        engine.attach_screen(FakeResetScreen())  # the window's own check wipes QtWebEngine's folders
        qtbot.addWidget(window)
        window.resize(1366, 768)
        window.show()
        loop.submit(engine.run())
        rigs.append(Rig(loop, central, engine, window))
        return rigs[-1]

    yield start
    for r in rigs:
        r.loop.stop()
        r.window.close()


def test_the_screen_asks_in_french_and_one_touch_on_a_face_answers(
    qtbot: QtBot, rig: Callable[[Timing], Rig]
) -> None:
    r = rig(Timing(ended_screen=timedelta(seconds=0.3), rating_thanks=timedelta(seconds=0.3)))
    r.met_and_ended(qtbot)
    ended = r.window.ended
    assert ended.title.text() == "L’entretien est terminé"
    assert ended.question.text() == "Comment s’est passé votre rendez-vous\u202f?"
    assert [b.text() for b in ended.faces.buttons.values()] == [
        "Très mal",
        "Mal",
        "Moyen",
        "Bien",
        "Très bien",
    ]
    assert ended.skip.text() == "Passer" and ended.skip.isVisible()
    assert all(b.height() >= 64 and b.isVisible() for b in ended.faces.buttons.values())  # touch-sized
    assert "Touchez un visage\u00a0: Très mal, Mal, Moyen, Bien, Très bien." in ended.listen.text_to_read
    qtbot.mouseClick(ended.faces.buttons[4], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ended.message.text() == "Merci pour votre réponse.", timeout=5_000)
    assert not ended.faces.isVisible() and not ended.skip.isVisible()
    qtbot.waitUntil(lambda: r.window.stack.currentWidget() is r.window.idle, timeout=5_000)
    qtbot.waitUntil(lambda: len(r.central.session_reports) == 2, timeout=5_000)
    assert r.central.session_reports[-1]["session"]["citizen_rating"] == 4  # type: ignore[index]


def test_the_question_times_out_by_itself_and_english_is_one_touch_away(
    qtbot: QtBot, rig: Callable[[Timing], Rig]
) -> None:
    r = rig(Timing(ended_screen=timedelta(seconds=0.3), rating_for=timedelta(seconds=3)))
    r.met_and_ended(qtbot)
    r.window.language.click()
    ended = r.window.ended
    assert ended.question.text() == "How did your appointment go?" and ended.skip.text() == "Skip"
    assert (
        faces_to_read(Translator("en"))
        == "Touch a face: Very bad, Bad, So-so, Good, Very good. Or touch “Skip”."
    )
    # Nobody touches anything: the kiosk moves on, in its own language, and says so to the central.
    qtbot.waitUntil(lambda: r.window.stack.currentWidget() is r.window.idle, timeout=5_000)
    assert r.window.t.language == "fr"
    qtbot.waitUntil(lambda: len(r.central.session_reports) == 2, timeout=5_000)
    assert r.central.session_reports[-1]["session"]["citizen_rating"] == "no_answer"  # type: ignore[index]


def test_passer_answers_without_a_face(qtbot: QtBot, rig: Callable[[Timing], Rig]) -> None:
    r = rig(Timing(ended_screen=timedelta(seconds=0.3), rating_thanks=timedelta(seconds=0.3)))
    r.met_and_ended(qtbot)
    qtbot.mouseClick(r.window.ended.skip, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(r.central.session_reports) == 2, timeout=5_000)
    assert r.central.session_reports[-1]["session"]["citizen_rating"] == "skipped"  # type: ignore[index]


def test_the_rating_screen_fits_every_kiosk_screen(tmp_path: Path, qtbot: QtBot) -> None:
    """Measured as the screen audit does (`kiosk-client audit screens --states rating,…`): on the
    smallest and largest landscape screens and the portrait totem, with larger text, and below
    1280x720 (where the staff are told the screen is too small): every face and « Passer » on the
    screen, touch-sized, nothing clipped, contrast and text size as every other screen."""
    from kiosk_client.ui.screen_audit import audit_screens

    sizes = [(1280, 720), (1920, 1080), (1080, 1920)]
    states = {"rating", "larger_text_rating", "rating_thanks_link"}
    rating = audit_screens(tmp_path / "r", sizes, ("fr",), states)
    small = audit_screens(tmp_path / "s", [(1024, 600)], ("en",), {"rating", "rating_thanks_link"})
    for figures in (rating, small):
        examples = figures["examples"]
        assert figures["clipped_labels"] == 0, examples["clipped"]
        assert figures["offscreen_widgets"] == 0, examples["offscreen"]
        assert figures["window_larger_than_screen"] == 0, examples["larger_than_screen"]
        assert figures["min_target_px"] >= 64, figures["worst"]["target"]
        assert figures["min_contrast"] >= 4.5, figures["worst"]["contrast"]
        assert figures["min_text_px"] >= 20, figures["worst"]["text"]
    assert rating["screens"] == 9 and (tmp_path / "r" / "fr-1920x1080-rating.png").exists()


# --------------------------------------------------------------------------- « Je donne mon avis »

LINK = "https://www.plus.transformation.gouv.fr/"


def test_the_central_may_give_a_survey_address_and_only_an_https_one() -> None:
    assert parse_remote_config({"evaluation_url": LINK}).evaluation_url == LINK
    assert parse_remote_config({}).evaluation_url is None
    for wrong in (
        "http://example.org/",
        "javascript:alert(1)",
        "https://",
        "https://a b",
        "https://é.fr",
        42,
    ):
        with pytest.raises(MalformedResponse, match="evaluation_url"):
            parse_remote_config({"evaluation_url": wrong})
    with pytest.raises(MalformedResponse):
        parse_remote_config({"evaluation_url": "https://" + "a" * 300})


def test_after_the_answer_the_thanks_show_the_survey_as_a_qr_code_a_phone_can_read(qtbot: QtBot) -> None:
    engine = KioskEngine(
        FakeCentral(), FakeCallFactory(), MemoryCache(), CentralClock(NoonClock()), lambda e: None
    )
    quiet = AccessibilitySettings(speech_engine="none", sound_cues=False)
    window = KioskWindow(EngineBridge(LoopThread()), engine, "fr", accessibility=quiet)
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    asked = hung_up(in_call(), by_clerk=True, now=at(60))
    snapshot = engine.snapshot()
    window.show_state(replace(snapshot, session=asked, evaluation_url=LINK))
    assert not window.ended.link_box.isVisible()  # not while the question is asked
    thanked = rated(asked, 5, at(62))
    window.show_state(replace(snapshot, session=thanked))
    assert not window.ended.link_box.isVisible()  # no address from the central: nothing
    window.show_state(replace(snapshot, session=thanked, evaluation_url=LINK))
    ended = window.ended
    assert ended.link_box.isVisible() and ended.link_address.text() == "www.plus.transformation.gouv.fr"
    assert ended.link_words.text().startswith("Vous pouvez aussi donner votre avis sur les services publics")
    code = ended.link_code

    def laid_out() -> bool:  # the layout gives the code its room on a later turn of the event loop
        side = code.pixmap().width()
        return side > 100 and code.width() >= side and code.height() >= side

    qtbot.waitUntil(laid_out, timeout=2_000)
    picture = ended.link_code.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(picture.constBits(), np.uint8).reshape(picture.height(), picture.bytesPerLine())
    decoded, _, _ = cv2.QRCodeDetector().detectAndDecode(
        pixels[:, : picture.width() * 3].reshape(picture.height(), picture.width(), 3)
    )
    assert decoded == LINK
    assert "scannez ce code" in ended.listen.text_to_read
    window.close()


async def test_with_a_survey_address_the_thanks_stay_long_enough_to_take_a_phone_out() -> None:
    central = FakeCentral(config=replace(FAST, evaluation_url=LINK))
    engine = KioskEngine(central, FakeCallFactory(), MemoryCache(), CentralClock(NoonClock()), lambda e: None)
    assert engine.timing.rating_thanks == timedelta(seconds=4)
    engine._config = central.config
    assert engine.timing.rating_thanks == timedelta(seconds=20) and engine.snapshot().evaluation_url == LINK
