"""The kiosk's screens render each state in plain French (English on request), with every string
in both catalogues."""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, MemoryCache
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.events import KioskSnapshot, Notice
from kiosk_client.core.models import Appointment
from kiosk_client.core.session import EndReason, Phase, Session
from kiosk_client.core.settings import AccessibilitySettings
from kiosk_client.runtime import LoopThread
from kiosk_client.ui.bridge import EngineBridge
from kiosk_client.ui.i18n import CATALOGUE, Translator
from kiosk_client.ui.main_window import KioskWindow

NOW = datetime.now(UTC)
APPOINTMENT = Appointment("a1", "CAF", "Mme Martin", NOW + timedelta(minutes=5), NOW + timedelta(minutes=35))


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
        "media_flowing": False,
        "clock_offset_s": 0.0,
    }
    values.update(changes)
    return KioskSnapshot(**values)  # type: ignore[arg-type]


@pytest.fixture
def window(qtbot: QtBot) -> Iterator[KioskWindow]:
    loop = LoopThread()  # never started: a touch's command waits, none runs; cancelled at the end
    engine = KioskEngine(
        FakeCentral(), FakeCallFactory(), MemoryCache(), CentralClock(SystemClock()), lambda e: None
    )
    # No read-aloud nor cues here (tests/test_read_aloud_and_cues.py has them): the staff notices
    # these tests check are the engine's, and this machine may have no voice or speaker.
    quiet = AccessibilitySettings(speech_engine="none", sound_cues=False)
    w = KioskWindow(EngineBridge(loop), engine, "fr", accessibility=quiet)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    yield w
    loop.stop()


def test_every_string_exists_in_both_languages_with_the_same_placeholders() -> None:
    assert CATALOGUE["fr"].keys() == CATALOGUE["en"].keys()
    for key, french in CATALOGUE["fr"].items():
        fields = {f for _, f, _, _ in string.Formatter().parse(french) if f}
        assert fields == {f for _, f, _, _ in string.Formatter().parse(CATALOGUE["en"][key]) if f}, key
    for notice in Notice:
        assert f"notice.{notice.value}" in CATALOGUE["fr"]


def test_idle_lists_todays_appointments_in_french(window: KioskWindow) -> None:
    window.show_state(snapshot(Session()))
    assert window.stack.currentWidget() is window.idle
    assert window.idle.site.text() == "France Services de Saint-Amand"
    assert "Rendez-vous du jour" in window.idle.heading.text()
    assert "CAF" in window.idle.lines.itemAt(0).widget().text()  # type: ignore[union-attr]
    assert window.language.text() == "English"


def test_english_on_request(window: KioskWindow) -> None:
    window.show_state(snapshot(Session()))
    window.language.click()
    assert window.idle.heading.text() == "Today's appointments"
    assert window.language.text() == "Français"


def test_waiting_screens(window: KioskWindow) -> None:
    start = datetime.now(UTC) + timedelta(minutes=5)
    soon = Appointment("a1", "CAF", "Mme Martin", start, start + timedelta(minutes=30))
    window.show_state(snapshot(Session(Phase.UPCOMING, soon)))
    assert window.stack.currentWidget() is window.waiting
    assert window.waiting.title.text() == "Votre rendez-vous approche"
    assert window.waiting.countdown.text().startswith("Début dans 4 min")
    late = Session(Phase.WAITING_FOR_CLERK, APPOINTMENT, clerk_late=True)
    window.show_state(snapshot(late))
    assert window.waiting.hint.text() == "Mme Martin arrive dans un instant."


def test_waiting_screen_text_never_overlaps(window: KioskWindow, qtbot: QtBot) -> None:
    # Five minutes from now, not from when the module was imported: a long suite (the field tests
    # run first) had made NOW's appointment a past one, whose screen has no countdown.
    now = datetime.now(UTC)
    soon = replace(APPOINTMENT, start=now + timedelta(minutes=5), end=now + timedelta(minutes=35))
    window.show_state(snapshot(Session(Phase.UPCOMING, soon), today=(soon,)))
    qtbot.wait(50)
    labels = [
        w
        for w in (
            window.waiting.title,
            window.waiting.who,
            window.waiting.when,
            window.waiting.countdown,
            window.waiting.hint,
        )
    ]

    def stacked() -> bool:
        return all(u.geometry().bottom() < d.geometry().top() for u, d in itertools.pairwise(labels))

    qtbot.waitUntil(stacked, timeout=3000)  # once laid out (a loaded machine takes longer than 50 ms)
    for label in labels:
        assert label.height() >= label.heightForWidth(label.width())  # no line is cut off


def test_no_show_tells_the_citizen_what_to_do(window: KioskWindow) -> None:
    window.show_state(
        snapshot(Session(Phase.ENDED, APPOINTMENT, end_reason=EndReason.CLERK_NO_SHOW, ended_at=NOW))
    )
    assert window.stack.currentWidget() is window.ended
    assert "Demandez à la personne de l\u2019accueil" in window.ended.message.text()


def test_notices_for_the_animateur(window: KioskWindow) -> None:
    window.show_state(
        snapshot(Session(), notices=frozenset({Notice.CENTRAL_UNREACHABLE, Notice.CAMERA_MISSING}))
    )
    assert window.notices.isVisible()
    assert "Serveur injoignable" in window.notices.text() and "Caméra absente" in window.notices.text()
    window.show_state(snapshot(Session()))
    assert not window.notices.isVisible()


def test_in_call_controls_and_muted_badge(window: KioskWindow) -> None:
    in_call = Session(Phase.IN_CALL, APPOINTMENT)
    window.show_state(snapshot(in_call, media_flowing=True, microphone_on=False))
    assert window.call.title.text() == "Mme Martin — CAF"
    assert window.call.mute.text() == "Rallumer le micro" and window.call.muted_badge.isVisible()
    assert not window.call.connecting.isVisible()
    confirmed: list[bool] = []
    window.call.hang_up_confirmed.connect(lambda: confirmed.append(True))
    window.call.hang_up.click()
    assert confirmed == [] and window.call.confirm.isVisible()
    window.call.confirm_yes.click()
    assert confirmed == [True]


def test_translator_formats() -> None:
    t = Translator("fr")
    assert t.duration(75) == "1 min 15 s" and t.duration(9) == "9 s"
    with pytest.raises(ValueError):
        Translator("de")


def jpeg_preview() -> bytes:
    import cv2
    import numpy as np

    ok, encoded = cv2.imencode(".jpg", np.full((400, 283, 3), 240, np.uint8))
    assert ok
    return encoded.tobytes()


def test_every_scan_error_and_transfer_status_has_words() -> None:
    from kiosk_client.adapters.scanner_sane import ERRORS
    from kiosk_client.core.document_transfer import TransferStatus

    codes = set(ERRORS) | {"scanner_failed", "scanner_not_responding", "cover_open", "scanner_busy"}
    codes |= {"processing_failed", "too_many_pages", "outbox_full", "outbox_failed"}
    for code in codes:
        assert f"documents.error.{code}" in CATALOGUE["fr"], code
    for status in TransferStatus:
        assert f"documents.transfer.{status.value}" in CATALOGUE["fr"], status


def test_documents_panel_shows_the_request_the_pages_and_the_receipt(window: KioskWindow) -> None:
    from kiosk_client.core.document_desk import DocumentsState, PagePreview
    from kiosk_client.core.document_protocol import Manifest
    from kiosk_client.core.document_transfer import Transfer, TransferStatus

    in_call = Session(Phase.IN_CALL, APPOINTMENT)
    window.show_state(snapshot(in_call, media_flowing=True))
    assert not window.call.documents_button.isVisible()  # no scanner on this kiosk: no button
    window.show_state(snapshot(in_call, media_flowing=True, documents=DocumentsState()))
    panel = window.call.documents
    assert window.call.documents_button.isVisible() and not panel.isVisible()
    window.show_state(
        snapshot(in_call, media_flowing=True, documents=DocumentsState(requested="justificatif de domicile"))
    )
    assert panel.isVisible()  # the clerk's request opens it
    assert panel.heading.text() == "Mme Martin vous demande\u00a0: justificatif de domicile"
    pages = (PagePreview(1, jpeg_preview(), "bilevel"), PagePreview(2, jpeg_preview(), "gray"))
    manifest = Manifest("0" * 32, "Justificatif.pdf", "application/pdf", 1000, 2, "a" * 64)
    state = DocumentsState(
        pages=pages,
        scan_error="paper_jammed",
        transfers=(Transfer(manifest, TransferStatus.RECEIVED, sent=1000, confirmed=1000),),
    )
    window.show_state(snapshot(in_call, media_flowing=True, documents=state))
    assert "Une feuille est coincée" in panel.status.text()
    assert panel.transfers.text() == "Justificatif\u00a0: Mme Martin l\u2019a bien reçu ✓"
    removed: list[int] = []
    sent: list[bool] = []
    panel.page_removed.connect(removed.append)
    panel.send_requested.connect(lambda: sent.append(True))
    tiles = panel.pages.widget().findChildren(QPushButton)
    assert [b.text() for b in tiles] == ["Retirer", "Retirer"]
    tiles[1].click()
    panel.send.click()
    assert removed == [2] and sent == [True]
    window.show_state(snapshot(Session(Phase.ENDED, APPOINTMENT, end_reason=EndReason.CLERK_HUNG_UP)))
    assert not panel.isVisible() and panel.pages.widget().findChildren(QPushButton) == []


def test_nothing_the_clerk_sends_is_rendered_as_rich_text(window: KioskWindow) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    from kiosk_client.core.document_desk import DocumentsState

    hostile = "<h1 style=color:red>APPELEZ LE 08 99 00 00 00</h1><img src=x>"
    in_call = Session(Phase.IN_CALL, APPOINTMENT)
    window.show_state(snapshot(in_call, media_flowing=True, documents=DocumentsState(requested=hostile)))
    panel = window.call.documents
    assert panel.heading.text().endswith(hostile)  # shown as the characters it is
    labels = window.findChildren(QLabel)
    assert labels and all(label.textFormat() == Qt.TextFormat.PlainText for label in labels), [
        label.objectName() for label in labels if label.textFormat() != Qt.TextFormat.PlainText
    ]


def test_the_next_citizen_starts_in_the_kiosks_own_language(window: KioskWindow) -> None:
    window.show_state(snapshot(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT)))
    window.language.click()  # this citizen reads English
    assert window.language.text() == "Français"
    window.show_state(snapshot(Session(Phase.IN_CALL, APPOINTMENT), media_flowing=True))
    ended = Session(Phase.ENDED, APPOINTMENT, end_reason=EndReason.CLERK_HUNG_UP, ended_at=NOW)
    window.show_state(snapshot(ended))
    assert window.language.text() == "Français"  # the goodbye is still in their language
    window.show_state(snapshot(Session()))
    assert window.idle.heading.text() == "Rendez-vous du jour" and window.language.text() == "English"


def test_french_is_typeset_and_a_missing_english_text_falls_back_to_french(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import re

    from kiosk_client.ui.i18n import CATALOGUE, Translator, french_typography

    for key, text in CATALOGUE["fr"].items():
        outside = re.sub(r"\{[^}]*\}", "", text)
        assert "'" not in outside, key  # typographic apostrophes
        assert not re.search(r" [:;!?»%]|« ", outside), key  # no-break spaces, never a line starting with ":"
    assert (
        french_typography("Heure : {time:%H:%M} ? l'agent") == "Heure\u00a0: {time:%H:%M}\u202f? l\u2019agent"
    )
    CATALOGUE["en"].pop("idle.today")
    try:
        with caplog.at_level("ERROR"):
            assert Translator("en")("idle.today") == "Rendez-vous du jour"
        assert "idle.today" in caplog.text
    finally:
        CATALOGUE["en"]["idle.today"] = "Today's appointments"


def test_an_appointment_that_did_not_take_place_does_not_say_the_meeting_ended(window: KioskWindow) -> None:
    for reason, title in (
        (EndReason.CLERK_NO_SHOW, "Pas d\u2019entretien aujourd\u2019hui"),
        (EndReason.CALL_FAILED, "L\u2019entretien a été interrompu"),
        (EndReason.CLERK_HUNG_UP, "L\u2019entretien est terminé"),
    ):
        window.show_state(snapshot(Session(Phase.ENDED, APPOINTMENT, end_reason=reason, ended_at=NOW)))
        assert window.ended.title.text() == title


def test_every_state_fits_a_1280_by_720_screen_and_leaves_the_window_as_it_was(
    window: KioskWindow, qtbot: QtBot
) -> None:
    from PySide6.QtWidgets import QPushButton

    from kiosk_client.core.document_desk import DocumentsState, PagePreview

    in_call = Session(Phase.IN_CALL, APPOINTMENT)
    pages = tuple(PagePreview(n, jpeg_preview(), "gray") for n in range(1, 6))
    window.show_state(snapshot(Session()))
    qtbot.wait(10)
    idle_minimum = window.minimumSizeHint()
    states = [
        snapshot(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT, clerk_late=True)),
        snapshot(in_call, media_flowing=True),
        snapshot(in_call, media_flowing=True, control="requested"),
        snapshot(in_call, media_flowing=True, documents=DocumentsState(requested="justificatif " * 8)),
        snapshot(
            in_call, media_flowing=True, documents=DocumentsState(pages=pages, scan_error="paper_jammed")
        ),
        snapshot(Session(Phase.ENDED, APPOINTMENT, end_reason=EndReason.CLERK_NO_SHOW, ended_at=NOW)),
        snapshot(Session()),
    ]
    for state in states:
        window.show_state(state)
        if state.session.phase is Phase.IN_CALL:
            window.call.hang_up.click()  # with the hang-up confirmation open too
        qtbot.wait(10)
        minimum = window.minimumSizeHint()
        assert minimum.width() <= 1280 and minimum.height() <= 720, (state.session.phase, minimum)
        window.resize(1280, 720)  # as a full-screen window on that screen is
        qtbot.wait(10)
        screen = window.stack.currentWidget()
        assert screen is not None
        for button in screen.findChildren(QPushButton):
            # (the documents panel scrolls: what is below its fold is reachable, not off-screen)
            if button.isVisible() and not window.call.documents_scroll.isAncestorOf(button):
                corner = button.mapTo(window, button.rect().bottomRight())
                assert corner.x() < 1280 and corner.y() < 720, (button.text(), corner)
    assert window.minimumSizeHint() == idle_minimum  # the next citizen gets the window as it was


def test_closed_documents_stay_closed_until_something_new_happens(window: KioskWindow) -> None:
    from kiosk_client.core.document_desk import DocumentsState, PagePreview

    in_call = Session(Phase.IN_CALL, APPOINTMENT)
    one = (PagePreview(1, jpeg_preview(), "gray"),)
    window.show_state(snapshot(in_call, media_flowing=True, documents=DocumentsState(pages=one)))
    panel = window.call.documents
    assert panel.isVisible()
    panel.close_button.click()  # "Fermer"
    window.show_state(snapshot(in_call, media_flowing=True, documents=DocumentsState(pages=one)))
    assert not panel.isVisible()  # the next refresh does not reopen it
    two = (*one, PagePreview(2, jpeg_preview(), "gray"))
    window.show_state(snapshot(in_call, media_flowing=True, documents=DocumentsState(pages=two)))
    assert panel.isVisible()  # a new page does


def test_staff_notices_are_words_only_when_no_citizen_is_there(window: KioskWindow) -> None:
    notices = frozenset({Notice.NOT_ENROLLED})
    window.show_state(snapshot(Session(), notices=notices))
    assert "Borne non reconnue" in window.notices.text()
    window.show_state(snapshot(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT), notices=notices))
    assert window.notices.isVisible() and "Borne" not in window.notices.text()  # a discreet sign
    window.show_state(snapshot(Session(Phase.IN_CALL, APPOINTMENT), media_flowing=True, notices=notices))
    assert "Borne" not in window.notices.text()


def test_opposite_actions_are_far_apart_and_a_disabled_button_looks_disabled(
    window: KioskWindow, qtbot: QtBot
) -> None:
    from PySide6.QtWidgets import QPushButton

    window.show_state(snapshot(Session(Phase.IN_CALL, APPOINTMENT), media_flowing=True, control="requested"))
    window.call.hang_up.click()
    qtbot.wait(10)
    for left, right in (
        (window.call.consent_refuse, window.call.consent_accept),
        (window.call.confirm_no, window.call.confirm_yes),
    ):
        a = left.mapTo(window, left.rect().topLeft()), left.mapTo(window, left.rect().bottomRight())
        b = right.mapTo(window, right.rect().topLeft()), right.mapTo(window, right.rect().bottomRight())
        gap = max(b[0].x() - a[1].x(), a[0].x() - b[1].x(), b[0].y() - a[1].y(), a[0].y() - b[1].y()) - 1
        assert gap >= 24, (left.text(), right.text(), gap)
    probe = QPushButton("Envoyer")
    probe.setStyleSheet(window.styleSheet())
    probe.resize(300, 80)
    enabled = probe.grab().toImage().pixelColor(150, 40)
    probe.setEnabled(False)
    disabled = probe.grab().toImage().pixelColor(150, 40)
    assert enabled != disabled


def test_the_hang_up_confirmation_is_where_the_finger_is(window: KioskWindow, qtbot: QtBot) -> None:
    from kiosk_client.core.document_desk import DocumentsState

    in_call = snapshot(Session(Phase.IN_CALL, APPOINTMENT), media_flowing=True, documents=DocumentsState())
    window.show_state(in_call)
    qtbot.wait(10)
    terminer = window.call.hang_up.mapTo(window, window.call.hang_up.rect().center())
    window.call.hang_up.click()
    window.show_state(in_call)  # a state refresh keeps the question up
    qtbot.wait(10)
    assert window.height() == 800  # nothing asked for more room than the screen has
    no = window.call.confirm_no
    assert window.call.confirm.isVisible() and not window.call.documents_button.isVisible()
    # A second touch where "Terminer" was lands on "Non, continuer", never on "Oui, terminer".
    assert no.rect().contains(no.mapFrom(window, terminer))
    no.click()
    assert not window.call.confirm.isVisible() and window.call.hang_up.isVisible()
    assert window.call.documents_button.isVisible()


def test_very_long_names_from_the_central_do_not_push_the_screen_away(
    window: KioskWindow, qtbot: QtBot
) -> None:
    from dataclasses import replace

    long = replace(
        APPOINTMENT,
        clerk_name="Mme Marie-Françoise de La Tour-d'Auvergne-Lauraguais " * 3,
        service="Caisse primaire d'assurance maladie de Saône-et-Loire, antenne de Chalon-sur-Saône " * 3,
    )
    window.show_state(snapshot(Session(Phase.IN_CALL, long), media_flowing=True))
    qtbot.wait(10)
    title = window.call.title
    assert title.height() < 80 and title.text().endswith("…")  # one line, cut
    assert title.full_text().startswith("Mme Marie-Françoise") and title.toolTip() == title.full_text()
    assert window.minimumSizeHint().height() <= 720 and window.height() == 800


def test_a_screen_smaller_than_1280_by_720_is_reported_to_the_staff(
    window: KioskWindow, qtbot: QtBot
) -> None:
    window.resize(1024, 600)
    qtbot.wait(10)
    window.show_state(snapshot(Session()))
    assert window.notices.isVisible() and "1280×720" in window.notices.text()
    for width, height in ((1280, 720), (1080, 1920)):  # landscape, and a portrait totem
        window.resize(width, height)
        qtbot.wait(10)
        window.show_state(snapshot(Session()))
        assert not window.notices.isVisible(), (width, height)


def test_the_citizen_can_enlarge_the_form_page(window: KioskWindow, qtbot: QtBot) -> None:
    from dataclasses import replace

    with_form = replace(APPOINTMENT, start_url="about:blank")
    window.show_state(snapshot(Session(Phase.IN_CALL, with_form), media_flowing=True))
    qtbot.waitUntil(lambda: window.call.form.view is not None and window.call.zoom_in.isVisible())
    assert window.call.zoom_in.text() == "Agrandir la page"
    window.call.zoom_in.click()
    window.call.zoom_in.click()
    assert window.call.form.view is not None and window.call.form.view.zoomFactor() == 1.5
    window.call.zoom_out.click()
    assert window.call.form.view.zoomFactor() == 1.25
    window.show_state(snapshot(Session()))  # the session ends: the next one starts at 100 %
    window.show_state(snapshot(Session(Phase.IN_CALL, replace(with_form, id="a9")), media_flowing=True))
    qtbot.waitUntil(lambda: window.call.form.view is not None)
    assert window.call.form.view is not None and window.call.form.view.zoomFactor() == 1.0
    window.show_state(snapshot(Session()))
    qtbot.waitUntil(window.call.form.sessions_released)


def test_larger_text_on_request_and_back_to_normal_for_the_next_citizen(
    window: KioskWindow, qtbot: QtBot
) -> None:
    from PySide6.QtGui import QFontInfo

    window.show_state(snapshot(Session(Phase.WAITING_FOR_CLERK, APPOINTMENT)))
    normal = QFontInfo(window.waiting.title.font()).pixelSize()
    assert window.text_size.text() == "Texte plus grand"
    window.text_size.click()
    qtbot.wait(10)
    assert QFontInfo(window.waiting.title.font()).pixelSize() >= normal * 1.2
    assert window.text_size.text() == "Texte normal"
    ended = Session(Phase.ENDED, APPOINTMENT, end_reason=EndReason.CLERK_HUNG_UP, ended_at=NOW)
    window.show_state(snapshot(ended))
    window.show_state(snapshot(Session()))
    qtbot.wait(10)
    assert not window.larger_text and QFontInfo(window.idle.heading.font()).pixelSize() < normal * 1.2
