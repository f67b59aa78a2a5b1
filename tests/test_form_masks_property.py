"""Property: whatever the page does, no frame sent to the clerk shows a citizen-only field in clear.

Random pages put secret fields (passwords, and a field matched by a citizen-only selector) in the
light DOM, open and closed shadow roots, nested shadow roots, same-origin and cross-origin iframes,
anywhere down a long page; then the page scrolls (by script and by the wheel), moves fields and
toggles "show password". Secret fields are painted magenta, text and all: every frame handed to the
call's track is searched for magenta pixels. A green box at the top proves frames are sent at all.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pytestqt.qtbot import QtBot

from kiosk_client.core.control_protocol import PointerInput
from kiosk_client.core.navigation import NavigationPolicy
from kiosk_client.ui.form_input import inject_pointer
from kiosk_client.ui.form_stream import FormStreamer
from kiosk_client.ui.form_view import FormView

from .form_pages import CONTAINERS, two_origins
from .test_form_view import run_js


@pytest.fixture(scope="module")
def origins() -> Iterator[tuple[str, str]]:
    with two_origins() as urls:
        yield urls


class Recorder:
    """The streamer's outlet: keeps a verdict on every frame handed to the call's track."""

    def __init__(self) -> None:
        self.frames = 0
        self.leaks = 0
        self.green = 0

    def set(self, image: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        b, g, r = image[..., 0].astype(int), image[..., 1].astype(int), image[..., 2].astype(int)
        self.frames += 1
        if np.count_nonzero((r > 180) & (b > 180) & (g < 90)):
            self.leaks += 1
        if np.count_nonzero((g > 200) & (r < 60) & (b < 60)) > 1000:
            self.green += 1

    def clear(self) -> None:
        pass


@contextlib.contextmanager
def streamed(
    qtbot: QtBot, url: str, origins: list[str], size: tuple[int, int], selectors: tuple[str, ...] = ()
) -> Iterator[tuple[FormView, Recorder]]:
    """A form view on `url`, streamed to a Recorder at 20 fps; everything of it released afterwards."""
    view = FormView(citizen_only_selectors=selectors)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    recorder = Recorder()
    streamer = FormStreamer(view, recorder, fps=20, selectors=selectors)
    view.start_session(url, NavigationPolicy(origins))
    assert view.page is not None
    with qtbot.waitSignal(view.page.loadFinished, timeout=15_000):
        pass
    try:
        yield view, recorder
    finally:
        streamer.stop()
        view.end_session()
        qtbot.waitUntil(view.sessions_released)


fields = st.fixed_dictionaries(
    {
        "container": st.sampled_from(CONTAINERS),
        "kind": st.sampled_from(("password", "password", "selector")),
        "top": st.integers(0, 1400),
    }
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("scroll"), st.integers(0, 1800)),
        st.tuples(st.just("wheel"), st.integers(-400, 400)),
        st.tuples(st.just("toggle"), st.integers(0, 3)),
        st.tuples(st.just("move"), st.integers(0, 3), st.integers(0, 900)),
    ),
    min_size=3,
    max_size=8,
)

TOGGLE = """(() => {
  const find = (root, id) => {
    const el = root.getElementById ? root.getElementById(id) : root.querySelector('#' + id);
    if (el) return el;
    for (const host of root.querySelectorAll('*')) {
      if (host.shadowRoot) { const f = find(host.shadowRoot, id); if (f) return f; }
      if (host.tagName === 'IFRAME') { try { const f = find(host.contentDocument, id); if (f) return f; } catch (e) {} }
    }
    return null;
  };
  const el = find(document, 'f%d');
  if (el && el.type === 'password') el.type = 'text'; else if (el && el.classList.contains('numero-fiscal')) el.type = 'search';
  return 1;
})()"""


# Each example loads a page in QtWebEngine (about a second): no shrinking, whose dozens of extra
# examples would outlast the test's timeout; the failure message names the page and the steps.
@settings(
    max_examples=14,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate],
)
@given(spec=st.fixed_dictionaries({"fields": st.lists(fields, min_size=1, max_size=4)}), steps=actions)
def test_no_frame_shows_a_citizen_only_field_in_clear(
    qtbot: QtBot, origins: tuple[str, str], spec: dict[str, Any], steps: list[tuple[Any, ...]]
) -> None:
    home, other = origins
    url = f"{home}/page?" + urllib.parse.urlencode({"spec": json.dumps(spec)})
    with streamed(qtbot, url, [home, other], (1024, 700), selectors=(".numero-fiscal",)) as (
        view,
        recorder,
    ):
        # frames do reach the clerk (a page load beside three busy workers took over 5 s once)
        qtbot.waitUntil(lambda: recorder.green > 0, timeout=15_000)
        for step in steps:
            if step[0] == "scroll":
                run_js(qtbot, view, f"window.scrollTo(0, {step[1]}); 1")
            elif step[0] == "wheel":
                target = view.input_target()
                assert target is not None
                inject_pointer(target, PointerInput(0, "wheel", 0.5, 0.5, "left", 0.0, float(step[1])))
            elif step[0] == "toggle":
                run_js(qtbot, view, TOGGLE % step[1])
            else:
                run_js(
                    qtbot,
                    view,
                    f"(() => {{ const b = document.getElementById('box{step[1]}'); if (b) b.style.marginTop = '{step[2]}px'; return 1; }})()",
                )
            qtbot.wait(120)
        qtbot.wait(200)
    assert recorder.leaks == 0, (
        f"{recorder.leaks} of {recorder.frames} frames showed a secret field: {spec} {steps}"
    )


def test_a_touch_scroll_of_an_inner_box_never_shows_its_secret_field(
    qtbot: QtBot, origins: tuple[str, str]
) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    from .form_pages import SECRET, raw_page

    home, _ = origins
    html = (
        "<!doctype html><body style='margin:0;overflow:hidden'>"
        "<div id='green' style='width:300px;height:120px;background:#00ff00'></div>"
        "<div id='box' style='height:400px;width:500px;overflow:auto'><div style='height:600px'></div>"
        f"<input type='password' value='MOTDEPASSE' style='{SECRET}'><div style='height:2000px'></div></div>"
        "</body>"
    )
    with streamed(qtbot, raw_page(home, html), [home], (800, 600)) as (view, recorder):
        qtbot.waitUntil(lambda: recorder.green > 0, timeout=5000)
        # Chromium ignores touches that come before its first paint's hit-test data.
        qtbot.waitUntil(lambda: run_js(qtbot, view, "performance.getEntriesByType('paint').length") > 0)
        qtbot.wait(300)
        target = view.input_target()
        assert target is not None
        device = QTest.createTouchDevice()

        def swipe(direction: int) -> None:
            y = 450 if direction < 0 else 200
            QTest.touchEvent(target, device).press(0, QPoint(250, y)).commit()
            for step in range(1, 13):
                QTest.qWait(8)
                QTest.touchEvent(target, device).move(0, QPoint(250, y + direction * 20 * step)).commit()
            QTest.touchEvent(target, device).release(0, QPoint(250, y + direction * 240)).commit()
            qtbot.wait(150)

        def box_scroll() -> float:
            return float(run_js(qtbot, view, "document.getElementById('box').scrollTop"))

        # The citizen swipes the box up (Chromium may drop the first gestures of a fresh page: again
        # until it moves), then down and up again, quickly.
        for _ in range(10):
            swipe(-1)
            if box_scroll() > 0:
                break
        swipe(1)
        swipe(-1)
        scrolled = box_scroll()
        qtbot.wait(200)
    assert scrolled > 0  # the box did scroll under the finger
    assert recorder.leaks == 0, f"{recorder.leaks} of {recorder.frames} frames showed the secret field"


def test_fields_in_closed_declarative_shadow_roots_are_masked_with_their_host(
    qtbot: QtBot, origins: tuple[str, str]
) -> None:
    from .form_pages import SECRET, raw_page

    home, _ = origins
    secret = f"<input type='text' class='numero-fiscal' value='1850775123456' style='{SECRET}'>"
    html = (
        "<!doctype html><body style='margin:8px'>"
        "<div id='green' style='width:300px;height:120px;background:#00ff00'></div>"
        # No script can reach into these roots: their hosts are masked whole.
        f"<tax-number><template shadowrootmode='closed'>{secret}</template></tax-number>"
        f"<tax-box><template shadowrootmode='closed'><p>{secret}</p></template><span>light</span></tax-box>"
        # A custom element without a shadow root renders its own children: not masked.
        "<plain-label style='display:block;width:300px;height:60px'>"
        "<div style='width:300px;height:60px;background:#00ff00'></div></plain-label>"
        "<div style='height:1600px'></div></body>"
    )
    with streamed(qtbot, raw_page(home, html), [home], (800, 600), selectors=(".numero-fiscal",)) as (
        view,
        recorder,
    ):
        qtbot.waitUntil(lambda: recorder.green > 0, timeout=5000)
        for y in (40, 0, 120, 0):
            run_js(qtbot, view, f"window.scrollTo(0, {y}); 1")
            qtbot.wait(150)
        frames = recorder.frames
    assert frames > 1
    assert recorder.leaks == 0, f"{recorder.leaks} of {recorder.frames} frames showed the secret field"


def test_masks_stay_right_when_the_citizen_enlarges_the_page(qtbot: QtBot, origins: tuple[str, str]) -> None:
    from .form_pages import SECRET, raw_page

    home, _ = origins
    html = (
        "<!doctype html><body style='margin:8px'>"
        "<div id='green' style='width:300px;height:120px;background:#00ff00'></div>"
        f"<div style='margin-top:200px'><input type='password' value='MOTDEPASSE' style='{SECRET}'></div>"
        "<div style='height:2000px'></div></body>"
    )
    with streamed(qtbot, raw_page(home, html), [home], (900, 700)) as (view, recorder):
        qtbot.waitUntil(lambda: recorder.green > 0, timeout=5000)
        factors = []
        for step in (1, 1, 1, 1, 1, -1, -1):  # up to 200 %, then back down
            factors.append(view.zoom(step))
            qtbot.wait(250)
            run_js(qtbot, view, "window.scrollBy(0, 40); 1")
            qtbot.wait(150)
        frames = recorder.frames
    assert factors == [1.25, 1.5, 1.75, 2.0, 2.0, 1.75, 1.5] and frames > 5
    assert recorder.leaks == 0, f"{recorder.leaks} of {recorder.frames} frames showed the secret field"
