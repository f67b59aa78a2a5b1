"""The live form view the clerk sees: a real grab of the page, with citizen-only fields blacked out."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pytestqt.qtbot import QtBot

from kiosk_client.core.navigation import NavigationPolicy
from kiosk_client.ui.form_stream import MASK_MARGIN, FormStreamer
from kiosk_client.ui.form_view import FormView

from .conftest import Site
from .test_form_view import load, run_js


class Outlet:
    def __init__(self) -> None:
        self.image: Any = None

    def set(self, image: Any) -> None:
        self.image = image

    def clear(self) -> None:
        self.image = None


def field_box(qtbot: QtBot, view: FormView, element_id: str) -> tuple[int, int, int, int]:
    rect = json.loads(
        run_js(
            qtbot, view, f"JSON.stringify(document.getElementById('{element_id}').getBoundingClientRect())"
        )
    )
    return int(rect["left"]), int(rect["top"]), int(rect["width"]), int(rect["height"])


def test_citizen_only_fields_are_black_in_the_stream_and_others_are_not(qtbot: QtBot, site: Site) -> None:
    view = FormView(citizen_only_selectors=("#login-id",))
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    outlet = Outlet()
    streamer = FormStreamer(view, outlet, fps=20, selectors=("#login-id",))
    qtbot.wait(200)
    assert outlet.image is None  # nothing before a page is open
    load(qtbot, view, f"{site.url}/demo-form/", NavigationPolicy([site.url]))
    # The citizen types their password (and a configured citizen-only field); the page shows it.
    run_js(
        qtbot,
        view,
        "document.getElementById('login-password').type = 'text'; document.getElementById('login-password').value = 'MOTDEPASSE'; document.getElementById('login-id').value = '1234567'; 1",
    )
    frames_before = streamer.frames
    qtbot.waitUntil(lambda: streamer.frames > frames_before and outlet.image is not None, timeout=5000)
    qtbot.wait(300)
    frame = outlet.image  # what was sent to the clerk
    assert frame is not None and frame.shape == (800, 1280, 3)
    for element_id in ("login-password", "login-id"):
        x, y, w, h = field_box(qtbot, view, element_id)
        region = frame[
            y - MASK_MARGIN + 1 : y + h + MASK_MARGIN - 1, x - MASK_MARGIN + 1 : x + w + MASK_MARGIN - 1
        ]
        assert region.size and int(region.max()) == 0, element_id  # entirely black
    x, y, w, h = field_box(qtbot, view, "login-button")
    assert int(frame[y : y + h, x : x + w].max()) > 0  # the rest of the page is visible
    assert np.count_nonzero(frame) > frame.size * 0.5
    streamer.stop()
    view.end_session()
    qtbot.waitUntil(view.sessions_released)


def test_a_password_field_stays_masked_after_the_page_changes_it(qtbot: QtBot, site: Site) -> None:
    view = FormView()
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    outlet = Outlet()
    streamer = FormStreamer(view, outlet, fps=20)
    load(qtbot, view, f"{site.url}/demo-form/", NavigationPolicy([site.url]))
    qtbot.waitUntil(lambda: outlet.image is not None, timeout=5000)
    # Move the password field down the page; within two grabs the mask follows it.
    sent = streamer.frames
    run_js(qtbot, view, "const p = document.getElementById('login-password'); p.style.marginTop = '300px'; 1")
    qtbot.waitUntil(lambda: streamer.frames > sent, timeout=5000)
    qtbot.wait(300)
    frame = outlet.image
    assert frame is not None
    x, y, w, h = field_box(qtbot, view, "login-password")
    assert int(frame[y : y + h, x : x + w].max()) == 0
    streamer.stop()
    view.end_session()
    qtbot.waitUntil(view.sessions_released)


def test_cross_origin_frames_are_masked_whole_unless_declared_safe(qtbot: QtBot) -> None:
    from .form_pages import raw_page, two_origins

    with two_origins() as (home, other):
        frame_html = "<body style='margin:0;background:#00ff00'></body>"
        html = (
            "<!doctype html><body style='margin:0'>"
            f"<iframe src='{raw_page(other, frame_html)}' style='border:0;width:400px;height:300px'></iframe>"
            "</body>"
        )
        greens = []
        for safe in ((), (other,)):
            view = FormView()
            qtbot.addWidget(view)
            view.resize(800, 600)
            view.show()
            outlet = Outlet()
            streamer = FormStreamer(view, outlet, safe_frame_origins=safe)
            load(qtbot, view, raw_page(home, html), NavigationPolicy([home, other]))
            qtbot.waitUntil(lambda: outlet.image is not None, timeout=5000)  # noqa: B023
            qtbot.wait(500)
            frame = outlet.image
            green = (frame[..., 1] > 200) & (frame[..., 0] < 60) & (frame[..., 2] < 60)
            greens.append(int(np.count_nonzero(green)))
            streamer.stop()
            view.end_session()
            qtbot.waitUntil(view.sessions_released)
        assert greens[0] == 0  # may hold a login: the clerk sees a black box
        assert greens[1] > 100_000  # declared safe: shown
