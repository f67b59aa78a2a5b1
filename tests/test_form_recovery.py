"""The form view heals itself (issue 12, item 2): a renderer really killed (SIGKILL) mid-page is
reloaded on the page the citizen was on, and says so; a page that kills its renderer every time is
given up after the retry budget, with a message for the citizen and no endless loop; a failed load
that leaves the page empty is reloaded too, while a refused navigation (the page is still there) is
not."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from kiosk_client.core.navigation import NavigationPolicy
from kiosk_client.core.page_recovery import FormPageLost, FormPageRecovered, PageIncident
from kiosk_client.ui.form_view import FormView, time_renderer_recovery
from kiosk_client.ui.i18n import Translator

from .conftest import Site
from .test_form_view import load, run_js


class QuickFormView(FormView):
    """The same form view, judging a failed load sooner (the kiosk waits 3 s)."""

    BLANK_AFTER_MS = 400


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[QuickFormView]:
    form = QuickFormView()
    qtbot.addWidget(form)
    form.resize(1280, 800)
    form.show()
    t = Translator("fr")
    form.recovery_text = lambda key: t(f"form.recovery.{key}")
    yield form
    form.end_session()
    qtbot.waitUntil(form.sessions_released, timeout=10_000)


def test_a_killed_renderer_brings_the_same_page_back_and_says_so(
    qtbot: QtBot, site: Site, view: QuickFormView
) -> None:
    recovered: list[FormPageRecovered] = []
    view.recovered.connect(recovered.append)
    policy = NavigationPolicy([site.url])
    load(qtbot, view, f"{site.url}/demo-form/", policy)
    # The citizen moved on in the site (a page of its own, with a query) and typed something.
    page = view.page
    assert page is not None
    with qtbot.waitSignal(page.loadFinished, timeout=15_000):
        view.navigate(f"{site.url}/demo-form/?etape=2")
    before = page.url().toString()
    run_js(qtbot, view, "document.getElementById('login-id').value = '1234567'; 1")
    pid = page.renderProcessPid()
    assert pid > 0
    generation = view.generation

    with qtbot.waitSignal(page.loadFinished, timeout=20_000) as finished:
        killed_at = view.kill_renderer()  # a real SIGKILL of Chromium's render process
    assert finished.args == [True]
    assert page.url().toString() == before  # the page the citizen was on, not the start page
    qtbot.waitUntil(lambda: len(recovered) == 1, timeout=5000)
    [event] = recovered
    assert event.cause is PageIncident.KILLED and event.attempt == 1 and event.url == before
    assert killed_at <= event.incident_at <= event.reload_at <= event.back_at
    assert event.back_at - killed_at < 15
    assert page.renderProcessPid() not in (0, pid)  # a new renderer
    assert view.page is page and view.generation > generation
    # What the page held is gone with its renderer; the citizen is told, calmly, in French.
    assert run_js(qtbot, view, "document.getElementById('login-id').value") == ""
    assert view.notice.isVisible() and "rechargée" in view.notice.text()
    assert not view.recovering() and view.lost is None and view.failure.isHidden()
    # And the page works: the clerk's (or the citizen's) next input lands.
    run_js(qtbot, view, "document.getElementById('login-id').value = '42'; 1")
    assert run_js(qtbot, view, "document.getElementById('login-id').value") == "42"


def test_a_page_that_kills_its_renderer_every_time_is_given_up_after_the_budget(
    qtbot: QtBot, site: Site, view: QuickFormView
) -> None:
    recovered: list[FormPageRecovered] = []
    lost: list[FormPageLost] = []
    view.recovered.connect(recovered.append)
    view.recovery_failed.connect(lost.append)
    load(qtbot, view, f"{site.url}/demo-form/", NavigationPolicy([site.url]))
    page = view.page
    assert page is not None
    loads: list[float] = []
    page.loadStarted.connect(lambda: loads.append(time.monotonic()))
    # From now on every new renderer is killed as soon as it exists, as a page that crashes
    # Chromium on load would do (renderProcessPidChanged is not emitted for a renderer started by a
    # reload after a crash: the pid is watched instead).
    crashing = [True]
    kills: list[int] = [page.renderProcessPid()]

    def kill_new_renderer() -> None:
        pid = page.renderProcessPid()
        if crashing[0] and pid > 0 and pid not in kills:
            kills.append(pid)
            os.kill(pid, signal.SIGKILL)

    watch = QTimer(page)  # goes with the page, whatever happens to this test
    watch.setInterval(2)
    watch.timeout.connect(kill_new_renderer)
    watch.start()
    view.kill_renderer()
    qtbot.waitUntil(lambda: len(lost) == 1, timeout=60_000)
    [gave_up] = lost
    assert gave_up.attempts == view.RETRY_ATTEMPTS == 3
    assert gave_up.cause in (PageIncident.KILLED, PageIncident.CRASHED)
    assert view.retry_budget.used() == 3  # three reloads, no more
    # The first renderer and each reload's (Chromium may start more than one for a navigation).
    assert len(kills) >= 1 + 3
    # No endless loop: nothing more is loaded while the message is shown.
    loads_then = len(loads)
    qtbot.wait(3000)
    assert len(loads) == loads_then and len(lost) == 1
    assert view.lost is gave_up and not view.recovering()
    assert view.failure.isVisible() and view.view is not None and view.view.isHidden()
    assert "afficher pour le moment" in view.failure_text.text() and "prévenu" in view.failure_text.text()
    assert view.retry.text() == "Réessayer"

    # The citizen touches "Réessayer" once the cause is gone: a fresh start, and the page is back.
    crashing[0] = False
    watch.stop()
    recovered.clear()
    with qtbot.waitSignal(view.recovered, timeout=20_000) as back:
        view.retry.click()
    assert isinstance(back.args[0], FormPageRecovered) and back.args[0].attempt == 1
    assert view.lost is None and view.failure.isHidden() and view.view.isVisible()
    assert page.url().toString().startswith(f"{site.url}/demo-form/")


def test_inputs_are_refused_while_the_page_is_reloading(
    qtbot: QtBot, site: Site, view: QuickFormView
) -> None:
    from kiosk_client.core.control_protocol import PointerInput, TextInput

    load(qtbot, view, f"{site.url}/demo-form/", NavigationPolicy([site.url]))
    page = view.page
    assert page is not None
    answers: list[tuple[str | None, str]] = []
    with qtbot.waitSignal(view.recovered, timeout=20_000):
        view.kill_renderer()
        qtbot.waitUntil(view.recovering, timeout=5000)
        view.apply(TextInput(1, "x"), lambda: True, lambda code, reason: answers.append((code, reason)))
        view.apply(PointerInput(2, "click", 0.5, 0.5), lambda: True, lambda c, r: answers.append((c, r)))
    assert [code for code, _ in answers] == ["no_form", "no_form"]  # never acked into a dead page
    view.apply(PointerInput(3, "move", 0.5, 0.5), lambda: True, lambda c, r: answers.append((c, r)))
    assert answers[-1] == (None, "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>Formulaire</title><h1>Formulaire</h1><input id=f>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_blank_page_after_a_failed_load_is_reloaded_and_a_refused_link_is_not(
    qtbot: QtBot, site: Site, view: QuickFormView
) -> None:
    recovered: list[FormPageRecovered] = []
    view.recovered.connect(recovered.append)
    # The site is down when the session starts: the page is empty (Chromium's error page).
    port = free_port()
    url = f"http://127.0.0.1:{port}/formulaire"
    view.start_session(url, NavigationPolicy([f"http://127.0.0.1:{port}", site.url]))
    qtbot.waitUntil(view.recovering, timeout=10_000)  # judged blank, reloaded (and down again)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        qtbot.waitUntil(lambda: len(recovered) == 1, timeout=20_000)
        [event] = recovered
        assert event.cause is PageIncident.BLANK and event.url == url
        assert run_js(qtbot, view, "document.querySelector('h1').textContent") == "Formulaire"

        # A link the policy refuses: the page stays as it was, which is not blank and not reloaded.
        page = view.page
        assert page is not None
        reloads: list[bool] = []
        watch = QTimer(view)
        watch.setInterval(10)
        watch.timeout.connect(lambda: reloads.append(True) if view.recovering() else None)
        watch.start()
        run_js(qtbot, view, "window.sameDocument = true; location.href = 'https://evil.example/'; 1")
        qtbot.wait(view.BLANK_AFTER_MS + 1500)
        watch.stop()
        assert reloads == [] and len(recovered) == 1 and view.lost is None
        assert run_js(qtbot, view, "String(window.sameDocument)") == "true"  # never reloaded
    finally:
        server.shutdown()
        server.server_close()


def test_the_benchmarks_measure_of_renderer_killed_to_form_view_back(
    qtbot: QtBot, site: Site, view: QuickFormView
) -> None:
    load(qtbot, view, f"{site.url}/demo-form/", NavigationPolicy([site.url]))
    timings = [time_renderer_recovery(view, timeout_s=20) for _ in range(2)]
    for timing in timings:
        assert 0 < timing.seconds < 10
        figures = timing.as_json()
        assert figures["renderer_to_form_s"] == round(timing.seconds, 4)
        assert (
            0
            <= figures["noticed_after_s"]
            <= figures["reload_asked_after_s"]
            <= figures["renderer_to_form_s"]
        )
        assert figures["cause"] == "killed" and figures["reloads"] in (1, 2)
    assert view.page is not None and view.page.url().toString() == f"{site.url}/demo-form/"
    view.end_session()
    with pytest.raises(ProcessLookupError):
        time_renderer_recovery(view)


def test_a_start_page_the_policy_refuses_is_not_healed_over_and_over(
    qtbot: QtBot, site: Site, view: QuickFormView
) -> None:
    lost: list[FormPageLost] = []
    view.recovery_failed.connect(lost.append)
    reloads: list[bool] = []
    watch = QTimer(view)
    watch.setInterval(10)
    watch.timeout.connect(lambda: reloads.append(True) if view.recovering() else None)
    watch.start()
    view.start_session("about:blank", NavigationPolicy([site.url]))  # refused: nothing allowed shown
    qtbot.wait(view.BLANK_AFTER_MS + view.PROBE_TIMEOUT_MS + 1000)
    watch.stop()
    assert reloads == [] and lost == [] and view.lost is None and view.failure.isHidden()
