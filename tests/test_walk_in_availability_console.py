"""The clerk console's « Disponible pour l'accueil sans rendez-vous » in a real browser (Debian's
headless Chromium, Playwright): the switch makes the clerk's service available to kiosks, a kiosk
taking the clerk turns it off by itself and shows the session to join, the clerk turns it back on,
joining a call turns it off; the console gone (or cut off), the central ends it; English texts."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from kiosk_client.central.admin import CentralAdmin
from kiosk_client.central.guard import CentralOptions
from kiosk_client.central.server import CentralThread

from .conftest import Site
from .kiosk_rig import enrolled_token
from .test_walk_in_console import open_console

pytestmark = pytest.mark.e2e
SWITCH = "Disponible pour l'accueil sans rendez-vous"


def listed(url: str, device: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {device}"}) as kiosk:
        response = kiosk.get("/api/v1/kiosk/walk-in-services")
    response.raise_for_status()
    return list(response.json()["services"])


def wait_listed(page: Page, url: str, device: str, expected: list[dict[str, Any]]) -> None:
    for _ in range(50):
        if listed(url, device) == expected:
            return
        page.wait_for_timeout(100)
    assert listed(url, device) == expected


def test_the_switch_offers_the_clerk_a_kiosk_takes_them_and_it_turns_itself_off(
    browser: Browser, site: Site
) -> None:
    device = enrolled_token(site.url, site.enrollment_code)
    page, reported = open_console(browser, site.url, site.clerk.token)
    try:
        switch = page.get_by_role("switch", name=SWITCH)
        expect(switch).not_to_be_checked()
        status = page.locator("#walk-in-available-status")
        expect(status).to_be_hidden()
        assert listed(site.url, device) == []

        switch.click()
        expect(switch).to_be_checked()
        expect(status).to_have_text("Vous êtes disponible (CAF) : une borne peut vous appeler à tout moment.")
        expect(page.locator("#availability")).to_have_class(re.compile(r"\bon\b"))
        assert listed(site.url, device) == [{"service": "CAF", "clerks_available": 1}]

        # The staff touch « CAF » on a kiosk: the console turns the switch off and shows the session.
        with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {device}"}) as kiosk:
            taken = kiosk.post("/api/v1/kiosk/walk-ins", json={"service": "CAF"})
        assert taken.status_code == 201, taken.text
        appointment_id = taken.json()["appointment"]["id"]
        expect(switch).not_to_be_checked(timeout=6_000)
        expect(status).to_have_text(
            re.compile("^La borne « Borne 1 » \\(France Services de Test\\) vous appelle : rejoignez")
        )
        item = page.locator(f'li[data-appointment="{appointment_id}"]')
        expect(item).to_contain_text("CAF · sans rendez-vous")
        expect(item.get_by_role("button", name="Rejoindre")).to_be_enabled()
        assert listed(site.url, device) == []

        # Back on for the next one; joining a call turns it off.
        switch.click()
        expect(switch).to_be_checked()
        expect(status).to_have_text(re.compile("^Vous êtes disponible"))
        assert listed(site.url, device) == [{"service": "CAF", "clerks_available": 1}]
        item.get_by_role("button", name="Rejoindre").click()
        expect(page.locator("#call")).to_be_visible()
        wait_listed(page, site.url, device, [])
        assert page.evaluate("window.clerkConsole.availability.available") is False
        assert page.evaluate("window.cspViolations") == [] and reported == []
    finally:
        page.close()


def test_the_central_ends_it_when_the_console_goes_quiet_and_english_texts_exist(
    browser: Browser, tmp_path: Path
) -> None:
    options = CentralOptions(walk_in_availability_lasts=timedelta(seconds=3))
    with CentralThread(tmp_path / "c.db", options=options) as central:
        admin = CentralAdmin(central.url, central.admin_token)
        clerk = admin.create_clerk("Mme Martin", "CAF")
        kiosk_id = admin.create_kiosk("Borne 1", "Mairie")
        device = enrolled_token(central.url, admin.enrollment_code(kiosk_id))
        page, reported = open_console(browser, central.url, clerk.token)
        try:
            switch = page.get_by_role("switch", name=SWITCH)
            switch.click()
            expect(switch).to_be_checked()
            # Kept alive by the open console well past its 3 s.
            page.wait_for_timeout(4_500)
            assert listed(central.url, device) == [{"service": "CAF", "clerks_available": 1}]
            expect(switch).to_be_checked()

            # Cut off from the central: the central ends it; back online, the console says so.
            page.context.set_offline(True)
            wait_listed(page, central.url, device, [])
            page.wait_for_timeout(1_000)
            page.context.set_offline(False)
            status = page.locator("#walk-in-available-status")
            expect(status).to_have_text(re.compile("^Disponibilité interrompue"), timeout=10_000)
            expect(switch).not_to_be_checked()
            assert listed(central.url, device) == []

            # In English, when the page's language is.
            page.evaluate("document.documentElement.lang = 'en'")
            switch.click()
            expect(page.get_by_role("switch", name="Available for walk-in sessions")).to_be_checked()
            expect(status).to_have_text("You are available (CAF): a kiosk may call you at any moment.")
            keys = page.evaluate(
                "Object.values(window.availabilityTexts).map((t) => Object.keys(t).sort().join())"
            )
            assert (
                page.evaluate("Object.keys(window.availabilityTexts)") == ["fr", "en"] and keys[0] == keys[1]
            )

            # Leaving the page turns it off at once, not a keep-alive's life later.
            page.goto("about:blank")
            deadline = time.monotonic() + 1.5
            while listed(central.url, device) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert listed(central.url, device) == []
            assert reported == []
        finally:
            if not page.is_closed():
                page.close()
            admin.close()
