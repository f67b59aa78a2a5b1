"""The citizen's on-screen keyboard: opens on the citizen's own touch on a text field of the form view,
types into it (accents, @, digits, capitals), never covers the field, never shows a password to the
clerk's stream, and never opens for the clerk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from kiosk_client.core.control_protocol import PointerInput
from kiosk_client.core.session import Phase, Session
from kiosk_client.ui.form_stream import FormStreamer
from kiosk_client.ui.main_window import KioskWindow
from kiosk_client.ui.onscreen_keyboard import OnScreenKeyboard

from .form_pages import SECRET, raw_page, two_origins
from .test_form_masks_property import Recorder
from .test_form_view import run_js
from .test_kiosk_screens import APPOINTMENT, snapshot
from .test_kiosk_screens import window as window  # the fixture

# A login page as administrations write them: an identifier near the top, the password far below
# (under the fold once the keyboard has taken the bottom of the screen), painted magenta so that
# any frame showing it in clear is caught; green above it proves frames showed that part of the page.
LOGIN = f"""<!doctype html><html><body style="margin:8px;font-size:15px">
<div id="green" style="width:300px;height:120px;background:#00ff00"></div>
<label>Identifiant <input id="user" style="width:220px;height:28px"></label>
<div style="height:700px"></div>
<div style="width:300px;height:60px;background:#00ff00"></div>
<label>Mot de passe <input id="pw" type="password" style="{SECRET}"></label>
<p id="plain" style="height:60px">Texte sans champ</p>
<div style="height:900px"></div>
</body></html>"""


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with two_origins() as (first, _):
        yield first


def key(keyboard: OnScreenKeyboard, character: str) -> QPushButton:
    for button in keyboard.findChildren(QPushButton):
        if button.property("character") == character and button.isVisible():
            return button
    raise AssertionError(f"no visible key {character!r}")


def touch(qtbot: QtBot, window: KioskWindow, element: str) -> None:
    """The citizen's finger on an element of the page: a spontaneous event, as from the screen."""
    form = window.call.form
    rect = json.loads(
        run_js(
            qtbot,
            form,
            f"(() => {{ const r = document.getElementById({json.dumps(element)}).getBoundingClientRect();"
            " return JSON.stringify([r.left + r.width / 2, r.top + r.height / 2]); })()",
        )
    )
    target = form.input_target()
    assert target is not None and form.view is not None
    zoom = form.view.zoomFactor()
    QTest.mouseClick(
        target,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        QPoint(int(rect[0] * zoom), int(rect[1] * zoom)),
    )


def global_rect(widget: object) -> QRect:
    from PySide6.QtWidgets import QWidget

    assert isinstance(widget, QWidget)
    return QRect(widget.mapToGlobal(QPoint(0, 0)), widget.size())


@pytest.fixture
def login(window: KioskWindow, qtbot: QtBot, origin: str) -> Iterator[tuple[KioskWindow, Recorder]]:
    window.resize(1366, 768)
    url = raw_page(origin, LOGIN)
    appointment = replace(APPOINTMENT, start_url=url)
    window.show_state(
        snapshot(Session(Phase.IN_CALL, appointment), media_flowing=True, form_origins=(origin,))
    )
    form = window.call.form
    qtbot.waitUntil(lambda: form.page is not None)
    assert form.page is not None
    with qtbot.waitSignal(form.page.loadFinished, timeout=15_000):
        pass
    recorder = Recorder()
    streamer = FormStreamer(form, recorder, fps=20, selectors=())
    try:
        yield window, recorder
    finally:
        streamer.stop()
        window.show_state(snapshot(Session()))
        qtbot.waitUntil(form.sessions_released)


def test_keys_type_letters_capitals_accents_and_symbols(qtbot: QtBot) -> None:
    keyboard = OnScreenKeyboard()
    qtbot.addWidget(keyboard)
    keyboard.open_for(secret=False)
    typed: list[str] = []
    keys: list[str] = []
    keyboard.typed.connect(typed.append)
    keyboard.key.connect(keys.append)
    for character in ("a", "z", "é", "ç", "@", "0"):
        key(keyboard, character).click()
    keyboard.shift.click()
    key(keyboard, "É").click()  # one capital, then small letters again
    key(keyboard, "e").click()
    keyboard.symbols.click()
    key(keyboard, "€").click()
    key(keyboard, "&").click()
    keyboard.symbols.click()
    keyboard.space.click()
    keyboard.backspace.click()
    keyboard.next.click()
    keyboard.enter.click()
    assert "".join(typed) == "azéç@0Ée€& "
    assert keys == ["Backspace", "Tab", "Enter"]
    # AZERTY: a z e r t y on the first row of letters, q s d f on the second.
    rows = [[b.text() for b in keyboard._character_keys[i] if b.isVisible()] for i in (1, 2)]
    assert rows[0][:6] == ["a", "z", "e", "r", "t", "y"] and rows[1][:4] == ["q", "s", "d", "f"]
    for button in keyboard.findChildren(QPushButton):
        assert button.focusPolicy() == Qt.FocusPolicy.NoFocus  # the page's field keeps the focus
    keyboard.shift.click()
    keyboard.reset()  # the next field, the next citizen: small letters, closed
    assert keyboard.isHidden() and not keyboard.shift.isChecked()
    keyboard.open_for(secret=False)
    assert key(keyboard, "a").text() == "a"


def test_a_password_typed_on_the_keyboard_reaches_the_field_and_never_the_clerk(
    login: tuple[KioskWindow, Recorder], qtbot: QtBot
) -> None:
    window, recorder = login
    form, call = window.call.form, window.call
    assert call.keyboard.isHidden()
    run_js(qtbot, form, "document.getElementById('pw').scrollIntoView({block: 'end'})")
    qtbot.wait(200)
    touch(qtbot, window, "pw")
    qtbot.waitUntil(lambda: call.keyboard.isVisible(), timeout=5000)
    assert call.keyboard.hint.isVisible()  # "Ce champ est secret. Mme Martin ne voit pas…"
    assert "Mme Martin" in call.keyboard.hint.text()
    assert not call.side_column.isVisible()  # the call's buttons make room, and come back after

    # The field is brought above the keyboard, which covers nothing of the page.
    view = form.view
    assert view is not None
    view_rect = global_rect(view)
    assert not view_rect.intersects(global_rect(call.keyboard))

    def field_shown() -> bool:
        rect = form.field_rect()
        return rect is not None and QRect(0, 0, view.width(), view.height()).contains(rect)

    qtbot.waitUntil(field_shown, timeout=5000)
    shown_before_typing = recorder.green

    key(call.keyboard, "m").click()
    call.keyboard.shift.click()
    for character in ("O", "t", "é", "@", "1"):
        key(call.keyboard, character).click()
    call.keyboard.backspace.click()
    key(call.keyboard, "2").click()
    qtbot.waitUntil(
        lambda: run_js(qtbot, form, "document.getElementById('pw').value") == "mOté@2", timeout=5000
    )
    # Frames of the page around the field were streamed while it filled; none showed it in clear.
    qtbot.waitUntil(lambda: recorder.green > shown_before_typing, timeout=5000)
    qtbot.wait(300)
    assert recorder.leaks == 0

    call.keyboard.close_key.click()
    assert call.keyboard.isHidden() and call.side_column.isVisible()


def test_the_clerk_can_neither_open_the_keyboard_nor_keep_it_open(
    login: tuple[KioskWindow, Recorder], qtbot: QtBot
) -> None:
    window, _ = login
    form, call = window.call.form, window.call
    rect = json.loads(
        run_js(
            qtbot,
            form,
            "(() => { const r = document.getElementById('user').getBoundingClientRect();"
            " return JSON.stringify([(r.left + 10) / innerWidth, (r.top + 10) / innerHeight]); })()",
        )
    )
    answers: list[str | None] = []

    def clerk_click() -> None:
        form.apply(
            PointerInput(1, "click", rect[0], rect[1]), lambda: True, lambda code, _: answers.append(code)
        )

    clerk_click()
    # The clerk's click focused the field… (15 s: a loaded 2-core machine was once slower than 5 s)
    qtbot.waitUntil(lambda: form.editing()[0], timeout=15_000)
    qtbot.wait(600)
    assert call.keyboard.isHidden()  # …but only the citizen's own touch opens the keyboard
    assert answers == [None]

    touch(qtbot, window, "user")
    qtbot.waitUntil(lambda: call.keyboard.isVisible(), timeout=5000)
    assert not call.keyboard.hint.isVisible()  # not a secret field
    key(call.keyboard, "j").click()
    qtbot.waitUntil(lambda: run_js(qtbot, form, "document.getElementById('user').value") == "j")
    clerk_click()  # the clerk takes the focus elsewhere: the keyboard goes
    qtbot.waitUntil(lambda: call.keyboard.isHidden(), timeout=2000)


def test_touching_outside_a_field_closes_the_keyboard_and_the_session_end_resets_it(
    login: tuple[KioskWindow, Recorder], qtbot: QtBot
) -> None:
    window, _ = login
    call = window.call
    touch(qtbot, window, "user")
    qtbot.waitUntil(lambda: call.keyboard.isVisible(), timeout=5000)
    call.keyboard.shift.click()
    touch(qtbot, window, "green")
    qtbot.waitUntil(lambda: call.keyboard.isHidden(), timeout=5000)
    assert call.side_column.isVisible() and call.zoom_bar.isVisible()
    touch(qtbot, window, "user")
    qtbot.waitUntil(lambda: call.keyboard.isVisible(), timeout=5000)
    assert key(call.keyboard, "a").text() == "a"  # reopened in small letters
    window.show_state(snapshot(Session()))  # the citizen leaves
    assert call.keyboard.isHidden()


def ten_field_login() -> str:
    fields = []
    for i in range(10):
        kind = "password" if i in (3, 9) else "text"
        style = SECRET if kind == "password" else "width:220px;height:28px"
        fields.append(
            f'<p style="margin-bottom:90px"><label>Champ {i} <input id="f{i}" type="{kind}" style="{style}"></label></p>'
        )
    return f"<!doctype html><html><body style='margin:8px'>{''.join(fields)}<div style='height:600px'></div></body></html>"


def test_a_ten_field_login_is_filled_field_after_field_with_next(
    window: KioskWindow, qtbot: QtBot, origin: str
) -> None:
    window.resize(1280, 720)
    appointment = replace(APPOINTMENT, id="a10", start_url=raw_page(origin, ten_field_login()))
    window.show_state(
        snapshot(Session(Phase.IN_CALL, appointment), media_flowing=True, form_origins=(origin,))
    )
    form, call = window.call.form, window.call
    qtbot.waitUntil(lambda: form.page is not None)
    assert form.page is not None
    with qtbot.waitSignal(form.page.loadFinished, timeout=15_000):
        pass
    try:
        touch(qtbot, window, "f0")
        qtbot.waitUntil(lambda: call.keyboard.isVisible(), timeout=5000)
        view = form.view
        assert view is not None
        for i in range(10):
            key(call.keyboard, str(i)).click()

            # The field being typed in is in sight, above the keyboard; a password says so.
            def in_sight() -> bool:
                rect = form.field_rect()
                return rect is not None and QRect(0, 0, view.width(), view.height()).contains(rect)

            qtbot.waitUntil(in_sight, timeout=3000)
            secret = i in (3, 9)
            qtbot.waitUntil(lambda: call.keyboard.hint.isVisible() == secret, timeout=3000)  # noqa: B023
            if i < 9:
                call.keyboard.next.click()
                qtbot.wait(150)

        def values() -> list[str]:
            script = "JSON.stringify([...document.querySelectorAll('input')].map((e) => e.value))"
            return list(json.loads(run_js(qtbot, form, script)))

        # The last key's input reaches the page a moment after the key (a loaded machine: later still).
        qtbot.waitUntil(lambda: values() == [str(i) for i in range(10)], timeout=5000)
        assert call.keyboard.isVisible()
    finally:
        window.show_state(snapshot(Session()))
        qtbot.waitUntil(form.sessions_released)
