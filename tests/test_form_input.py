"""The clerk's inputs reach the form exactly (Unicode text as characters), and never a citizen-only field."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from kiosk_client.core.control_protocol import KeyInput, NavigateInput, PointerInput, TextInput
from kiosk_client.core.navigation import NavigationPolicy
from kiosk_client.ui.form_view import FormView

from .conftest import Site
from .test_form_view import load, run_js

TEXT = "Élodie Müller-Ñúñez, 12 rue de l'Église"


def apply(qtbot: QtBot, view: FormView, message: Any) -> tuple[str | None, str]:
    outcome: list[tuple[str | None, str]] = []
    view.apply(message, lambda: True, lambda code, reason: outcome.append((code, reason)))
    qtbot.waitUntil(lambda: bool(outcome), timeout=5000)
    return outcome[0]


@pytest.fixture
def open_form(qtbot: QtBot, site: Site) -> Iterator[Callable[..., FormView]]:
    views: list[FormView] = []

    def make(selectors: tuple[str, ...] = ()) -> FormView:
        view = FormView(citizen_only_selectors=selectors)
        qtbot.addWidget(view)
        view.resize(1280, 800)
        view.show()
        load(qtbot, view, f"{site.url}/demo-form/", NavigationPolicy([site.url]))
        run_js(qtbot, view, "document.getElementById('login-button').click(); 1")  # to step 1
        views.append(view)
        return view

    yield make
    for view in views:  # a page must be gone before its profile, even when a test fails
        view.end_session()
        qtbot.waitUntil(view.sessions_released)


def test_unicode_text_arrives_exactly(qtbot: QtBot, site: Site, open_form: Callable[..., FormView]) -> None:
    view = open_form()
    run_js(qtbot, view, "document.getElementById('nom').focus(); 1")
    assert apply(qtbot, view, TextInput(1, TEXT)) == (None, "")
    assert apply(qtbot, view, TextInput(2, ' 3 € @ "«»"')) == (None, "")
    qtbot.waitUntil(
        lambda: run_js(qtbot, view, "document.getElementById('nom').value") == TEXT + ' 3 € @ "«»"',
        timeout=3000,
    )
    # Keys: Backspace edits, Tab moves to the next field.
    assert apply(qtbot, view, KeyInput(3, "Backspace")) == (None, "")
    assert apply(qtbot, view, KeyInput(4, "Tab")) == (None, "")
    qtbot.waitUntil(lambda: run_js(qtbot, view, "document.activeElement.id") == "prenom", timeout=3000)
    assert run_js(qtbot, view, "document.getElementById('nom').value") == TEXT + ' 3 € @ "«»'


def test_a_click_focuses_the_field_under_the_pointer(
    qtbot: QtBot, site: Site, open_form: Callable[..., FormView]
) -> None:
    view = open_form()
    rect = run_js(
        qtbot,
        view,
        "(() => { const r = document.getElementById('email').getBoundingClientRect(); return JSON.stringify([r.left + r.width / 2, r.top + r.height / 2, innerWidth, innerHeight]); })()",
    )
    x, y, width, height = json.loads(rect)
    assert apply(qtbot, view, PointerInput(1, "click", x / width, y / height)) == (None, "")
    qtbot.waitUntil(lambda: run_js(qtbot, view, "document.activeElement.id") == "email", timeout=3000)


def test_citizen_only_fields_refuse_the_clerks_input(
    qtbot: QtBot, site: Site, open_form: Callable[..., FormView]
) -> None:
    view = open_form(selectors=("#commune",))
    run_js(
        qtbot,
        view,
        "document.querySelectorAll('.step').forEach(s => s.hidden = false); document.getElementById('login-password').focus(); 1",
    )
    assert apply(qtbot, view, TextInput(1, "secret"))[0] == "citizen_only_field"
    assert apply(qtbot, view, KeyInput(2, "Backspace"))[0] == "citizen_only_field"
    run_js(qtbot, view, "document.getElementById('login-password').type = 'text'; 1")  # "show password"
    assert apply(qtbot, view, TextInput(21, "still not"))[0] == "citizen_only_field"
    run_js(qtbot, view, "document.getElementById('commune').focus(); 1")  # a selector from config
    assert apply(qtbot, view, TextInput(3, "Auxerre"))[0] == "citizen_only_field"
    qtbot.wait(200)
    assert (
        run_js(
            qtbot,
            view,
            "document.getElementById('login-password').value + '|' + document.getElementById('commune').value",
        )
        == "|"
    )


def test_text_right_after_a_tab_or_a_click_is_judged_where_that_input_moved_the_focus(
    qtbot: QtBot, site: Site, open_form: Callable[..., FormView]
) -> None:
    """The clerk's Tab (or click) and the text after it leave in the same instant: the check of the
    field must see the focus where the Tab put it, not where it was (CI once typed into the password)."""
    view = open_form()
    run_js(
        qtbot,
        view,
        "document.querySelectorAll('.step').forEach(s => s.hidden = false);"
        " window.__seen = []; window.addEventListener('keydown', (e) => __seen.push(e.key), true); 1",
    )
    rect = run_js(
        qtbot,
        view,
        "(() => { const r = document.getElementById('login-password').getBoundingClientRect();"
        " return JSON.stringify([r.left + r.width / 2, r.top + r.height / 2, innerWidth, innerHeight]); })()",
    )
    x, y, width, height = json.loads(rect)

    def then_text(first: Any) -> list[tuple[str | None, str]]:
        outcomes: list[tuple[str | None, str]] = []

        def sent(code: str | None, reason: str) -> None:
            # As the engine does, but at once: the text follows the moment the Tab or click is sent,
            # long before the page has handled it.
            outcomes.append((code, reason))
            view.apply(TextInput(2, "secret"), lambda: True, lambda c, r: outcomes.append((c, r)))

        view.apply(first, lambda: True, sent)
        qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=5000)
        return outcomes

    for round_ in range(16):
        run_js(qtbot, view, "document.getElementById('login-id').focus(); 1")
        outcomes = then_text(
            KeyInput(1, "Tab") if round_ % 2 else PointerInput(1, "click", x / width, y / height)
        )
        assert [code for code, _ in outcomes] == [None, "citizen_only_field"], round_
        assert run_js(qtbot, view, "document.activeElement.id") == "login-password"
    qtbot.wait(100)
    assert run_js(qtbot, view, "document.getElementById('login-password').value") == ""
    # The fence's keys never reach the page's own listeners.
    assert json.loads(run_js(qtbot, view, "JSON.stringify(__seen)")) == ["Tab"] * 8


def test_navigate_only_within_the_policy(
    qtbot: QtBot, site: Site, open_form: Callable[..., FormView]
) -> None:
    view = open_form()
    assert apply(qtbot, view, NavigateInput(1, "javascript:document.title='pwned'"))[0] == "not_allowed"
    assert apply(qtbot, view, NavigateInput(2, f"{site.url}/demo-form/?etape=2")) == (None, "")
    qtbot.waitUntil(lambda: view.page is not None and "etape=2" in view.page.url().toString(), timeout=5000)


def test_consent_is_checked_at_injection_so_a_busy_page_gets_nothing_after_a_take_back(
    qtbot: QtBot, site: Site, open_form: Callable[..., FormView]
) -> None:
    view = open_form()
    run_js(qtbot, view, "document.getElementById('nom').focus(); 1")
    consent = {"held": True}
    outcomes: list[tuple[str | None, str]] = []
    # The page's own script keeps its main thread busy for a second (a heavy administration site).
    run_js(qtbot, view, "setTimeout(() => { const t = Date.now(); while (Date.now() - t < 1000) {} }, 0); 1")
    qtbot.wait(50)
    view.apply(TextInput(1, "texte tardif"), lambda: consent["held"], lambda c, r: outcomes.append((c, r)))
    view.apply(KeyInput(2, "Enter"), lambda: consent["held"], lambda c, r: outcomes.append((c, r)))
    consent["held"] = False  # the citizen touches "Reprendre la main" while the page is busy
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=5000)
    assert [code for code, _ in outcomes] == ["not_granted", "not_granted"]
    assert run_js(qtbot, view, "document.getElementById('nom').value") == ""
    # Without consent nothing is even tried, pointer input included.
    assert apply_with(qtbot, view, PointerInput(3, "click", 0.5, 0.5), lambda: False)[0] == "not_granted"


def apply_with(
    qtbot: QtBot, view: FormView, message: Any, admitted: Callable[[], bool]
) -> tuple[str | None, str]:
    outcome: list[tuple[str | None, str]] = []
    view.apply(message, admitted, lambda code, reason: outcome.append((code, reason)))
    qtbot.waitUntil(lambda: bool(outcome), timeout=5000)
    return outcome[0]


GUARD_PAGE = """<!doctype html><body>
<input id="plain" type="text">
<div id="closed-host"></div>
<login-box id="dsd-host"><template shadowrootmode="closed"><input type="password" id="dsd-pw"></template></login-box>
<div id="widget" tabindex="0">a page's own widget</div>
<iframe id="same" src="/raw?html=%3Cinput%20type%3Dpassword%20id%3Dipw%3E%3Cinput%20id%3Ditext%3E"></iframe>
<iframe id="cross" src="OTHER/raw?html=%3Cinput%20id%3Dctext%3E"></iframe>
<script>
  document.getElementById('closed-host').attachShadow({mode: 'closed'}).innerHTML =
    '<input type="password" id="closed-pw"><input id="closed-text">';
  window.focusClosed = (id) => document.getElementById('closed-host').shadowRoot.getElementById(id).focus();
</script></body>"""


@pytest.mark.parametrize(
    ("focus", "expected"),
    [
        ("document.getElementById('plain').focus()", None),
        ("focusClosed('closed-text')", None),
        ("focusClosed('closed-pw')", "citizen_only_field"),
        (
            "(() => { const pw = document.getElementById('closed-host').shadowRoot.getElementById('closed-pw');"
            " pw.focus(); pw.type = 'text'; })()",
            "citizen_only_field",
        ),  # "show password" in a shadow root
        (
            "document.getElementById('dsd-host').focus(); document.getElementById('dsd-host').tabIndex = 0;"
            " document.getElementById('dsd-host').focus()",
            "citizen_only_field",
        ),  # cannot see inside: refused
        ("document.getElementById('widget').focus()", None),  # the page's own widget takes keys
        (
            "document.getElementById('same').contentDocument.getElementById('ipw').focus()",
            "citizen_only_field",
        ),
        ("document.getElementById('same').contentDocument.getElementById('itext').focus()", None),
        ("document.getElementById('cross').focus()", "citizen_only_field"),  # cannot see inside: refused
    ],
)
def test_citizen_only_fields_refuse_the_clerk_wherever_they_live(
    qtbot: QtBot, focus: str, expected: str | None
) -> None:
    from .form_pages import raw_page, two_origins

    with two_origins() as (home, other):
        view = FormView()
        qtbot.addWidget(view)
        view.resize(1024, 700)
        view.show()
        load(qtbot, view, raw_page(home, GUARD_PAGE.replace("OTHER", other)), NavigationPolicy([home, other]))
        try:
            qtbot.waitUntil(
                lambda: (
                    run_js(qtbot, view, "document.getElementById('same').contentDocument.readyState")
                    == "complete"
                ),
                timeout=5000,
            )
            run_js(qtbot, view, f"{focus}; 1")
            assert apply(qtbot, view, TextInput(1, "abc"))[0] == expected
            assert apply(qtbot, view, KeyInput(2, "Backspace"))[0] == expected
        finally:
            view.end_session()
            qtbot.waitUntil(view.sessions_released)


def test_the_clerks_wheel_scrolls_the_page_and_its_inner_boxes(qtbot: QtBot) -> None:
    from .form_pages import raw_page, two_origins

    html = (
        "<!doctype html><body style='margin:0'><div id='box' style='height:200px;overflow:auto'>"
        "<div style='height:2000px'>long</div></div><div style='height:3000px'></div></body>"
    )
    with two_origins() as (home, _):
        view = FormView()
        qtbot.addWidget(view)
        view.resize(800, 600)
        view.show()
        load(qtbot, view, raw_page(home, html), NavigationPolicy([home]))
        try:
            # Chromium ignores wheels that come before its first paint's hit-test data.
            qtbot.waitUntil(lambda: run_js(qtbot, view, "performance.getEntriesByType('paint').length") > 0)
            qtbot.wait(300)
            assert apply(qtbot, view, PointerInput(1, "wheel", 0.5, 0.1, "left", 0.0, 300.0)) == (None, "")
            qtbot.waitUntil(
                lambda: run_js(qtbot, view, "document.getElementById('box').scrollTop") > 0, timeout=3000
            )
            assert run_js(qtbot, view, "scrollY") == 0  # the inner box took the scroll
            assert apply(qtbot, view, PointerInput(2, "wheel", 0.5, 0.9, "left", 0.0, 300.0)) == (None, "")
            qtbot.waitUntil(lambda: run_js(qtbot, view, "scrollY") > 0, timeout=3000)
        finally:
            view.end_session()
            qtbot.waitUntil(view.sessions_released)
