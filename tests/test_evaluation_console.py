"""The clerk rates a session in the console (headless Chromium): after the hang-up, five choices or
« Passer » and a short remark, sent once; the council's export counts it."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from kiosk_client.core.session import Phase
from kiosk_client.runtime import LoopThread

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, make_engine, wait_until

pytestmark = pytest.mark.e2e


def test_after_hanging_up_the_clerk_rates_the_session_once(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    appointment = site.appointment_in(1)
    loop = LoopThread()
    loop.start()
    engine = make_engine(site.url, token, tmp_path, Recorder())
    loop.submit(engine.run())
    page = browser.new_page()
    try:
        page.goto(f"{site.url}/clerk#token={site.clerk.token}")
        item = page.locator(f'li[data-appointment="{appointment["id"]}"]')
        item.locator(".state", has_text="en ligne").wait_for(timeout=20_000)
        assert page.locator("#rating").is_hidden()  # nothing to rate before a call
        item.get_by_role("button", name="Rejoindre").click()
        wait_until(lambda: engine.session.phase is Phase.IN_CALL, 15)
        page.wait_for_function("window.clerkConsole.connectedAt !== null", timeout=10_000)  # connected
        page.get_by_role("button", name="Raccrocher").click()

        rating = page.locator("#rating")
        rating.wait_for(state="visible", timeout=5_000)
        assert rating.get_by_role("heading").inner_text() == "Comment s'est passé cet entretien\u00a0?"
        assert "CAF · France Services de Test" in page.locator("#rating-for").inner_text()
        send = rating.get_by_role("button", name="Envoyer")
        assert send.is_disabled()  # a choice first (or « Passer »)
        rating.get_by_role("button", name="Bien", exact=True).click()
        assert rating.locator('[data-face="4"]').get_attribute("aria-pressed") == "true"
        page.locator("#rating-remark").fill("Dossier complet, son un peu faible.")
        assert page.locator("#rating-left").inner_text() == "465 caractères restants"
        send.click()
        page.locator("#last-call", has_text="votre évaluation est enregistrée").wait_for(timeout=5_000)
        assert rating.is_hidden()
        [row] = site.admin.usage()["rows"]
        assert row["clerk_ratings"]["faces"]["4"] == 1 and row["clerk_ratings"]["mean"] == 4.0
        assert [r["remark"] for r in row["clerk_remarks"]] == ["Dossier complet, son un peu faible."]
        # The same rating once more (a second tab, a retry): the first stands, and the console says so.
        page.evaluate(
            f"askRating({{id: '{appointment['id']}', start: '{appointment['start']}', service: 'CAF', site_name: 'x'}})"
        )
        rating.get_by_role("button", name="Passer").click()
        page.locator("#last-call", has_text="déjà évalué").wait_for(timeout=5_000)
        assert site.admin.usage()["rows"][0]["clerk_ratings"]["skipped"] == 0
    finally:
        page.close()
        loop.stop()
