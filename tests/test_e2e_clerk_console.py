"""End to end in a real browser: the clerk console (headless Debian Chromium, driven by Playwright)
joins the kiosk's appointment; both sides receive video; the clerk hangs up."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from kiosk_client.core.session import EndReason, Phase
from kiosk_client.runtime import LoopThread

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, make_engine, wait_until

pytestmark = pytest.mark.e2e


def test_the_clerk_console_joins_and_both_sides_receive_video(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    appointment = site.appointment_in(1)
    loop = LoopThread()
    loop.start()
    recorder = Recorder()
    engine = make_engine(site.url, token, tmp_path, recorder)
    loop.submit(engine.run())
    page = browser.new_page()
    # The console runs under a Content-Security-Policy: whatever it does in a call must not be refused.
    page.add_init_script(
        'window.cspViolations = []; document.addEventListener("securitypolicyviolation",'
        " (e) => window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));"
    )
    csp_reports: list[str] = []
    page.on("console", lambda m: csp_reports.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(f"{site.url}/clerk#token={site.clerk.token}")
        assert "#token" not in page.url  # the token leaves the address bar
        item = page.locator(f'li[data-appointment="{appointment["id"]}"]')
        item.locator(".state", has_text="en ligne").wait_for(timeout=20_000)  # the kiosk has offered
        item.get_by_role("button", name="Rejoindre").click()
        page.wait_for_function(
            "async () => (await window.clerkStats()).framesDecoded > 10", timeout=20_000, polling=200
        )
        wait_until(
            lambda: engine.session.phase is Phase.IN_CALL and engine.call_stats().remote_video_frames > 10, 15
        )
        # Retransmissions get a round trip's hold on long round trips only (a satellite kiosk): on
        # loopback the browser keeps its own jitter buffer.
        assert page.evaluate("[retransmissionHoldMs(0.04), retransmissionHoldMs(0.6)]") == [None, 710]
        # One slow consent answer on a busy kiosk is not a long path: the mean of all of them counts.
        figures = page.evaluate(
            "[pathRoundTrip({currentRoundTripTime: 0.154, totalRoundTripTime: 0.174, responsesReceived: 10}),"
            " pathRoundTrip({currentRoundTripTime: 0.62, totalRoundTripTime: 6.1, responsesReceived: 10}),"
            " pathRoundTrip({currentRoundTripTime: 0.6}), pathRoundTrip(undefined)]"
        )
        assert figures == [0.0174, 0.61, None, None]
        assert page.evaluate("async () => (await window.clerkStats()).holdMs") is None
        page.get_by_role("button", name="Raccrocher").click()
        recorder.finished.wait(10)
        [record] = recorder.records()
        assert record.end_reason is EndReason.CLERK_HUNG_UP
        assert record.remote_video_frames > 10  # the browser's fake camera reached the kiosk
        page.locator("#last-call", has_text="Entretien terminé").wait_for(timeout=5_000)  # back to the agenda
        assert page.evaluate("window.cspViolations") == [] and csp_reports == []
    finally:
        page.close()
        loop.stop()
