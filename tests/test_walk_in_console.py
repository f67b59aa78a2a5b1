"""The clerk console's walk-in button in a real browser (Debian's headless Chromium, Playwright): it
shows a code to read out over the phone, big and in two groups of three, counting down; a kiosk that
uses it shows up in the agenda as a session to join; a new code can be made; an expired one says so."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from kiosk_client.central.admin import CentralAdmin
from kiosk_client.central.guard import CentralOptions
from kiosk_client.central.server import CentralThread

from .conftest import Site
from .kiosk_rig import enrolled_token
from .test_central_hardening_browser import WATCH_CSP, csp_messages

pytestmark = pytest.mark.e2e


def open_console(browser: Browser, url: str, token: str) -> tuple[Page, list[str]]:
    page = browser.new_page()
    page.add_init_script(WATCH_CSP)
    reported = csp_messages(page)
    page.goto(f"{url}/clerk#token={token}")
    page.locator("#who").filter(has_text=re.compile(".+")).wait_for(timeout=10_000)
    return page, reported


def shown_code(page: Page) -> str:
    code = page.locator("#walk-in-code")
    expect(code).to_have_text(re.compile(r"^\d{3} \d{3}$"), timeout=10_000)
    return code.inner_text().replace(" ", "")


def test_the_clerk_makes_a_code_reads_it_out_and_sees_the_kiosk_call(browser: Browser, site: Site) -> None:
    device = enrolled_token(site.url, site.enrollment_code)
    page, reported = open_console(browser, site.url, site.clerk.token)
    try:
        page.get_by_role("button", name="Session sans rendez-vous").click()
        code = shown_code(page)
        element = page.locator("#walk-in-code")
        # Read digit by digit by a screen reader; focused, so it is read out at once.
        assert element.get_attribute("aria-label") == "Code : " + " ".join(code)
        assert page.evaluate("document.activeElement.id") == "walk-in-code"
        assert float(element.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 36
        timer = page.locator("#walk-in-timer")
        expect(timer).to_have_text(re.compile(r"^Valable encore (10:00|9:[0-5]\d)$"))
        first = timer.inner_text()
        expect(timer).not_to_have_text(first, timeout=3_000)  # it counts down
        expect(page.get_by_role("button", name="Session sans rendez-vous")).to_be_hidden()

        # The staff type it on the kiosk: the session shows in the agenda, to join as any other.
        with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {device}"}) as kiosk:
            used = kiosk.post("/api/v1/kiosk/walk-ins", json={"code": code})
        assert used.status_code == 201
        appointment_id = used.json()["appointment"]["id"]
        item = page.locator(f'li[data-appointment="{appointment_id}"]')
        expect(item).to_contain_text("CAF · sans rendez-vous", timeout=10_000)
        expect(item.get_by_role("button", name="Rejoindre")).to_be_enabled()
        status = page.locator("#walk-in-status")
        expect(status).to_have_text(
            re.compile("^Code utilisé : la borne « Borne 1 » \\(France Services de Test\\)")
        )
        expect(element).to_have_class(re.compile(r"\bused\b"))
        expect(timer).to_be_empty()

        # Another code for the next call: a new one, counting down again.
        page.get_by_role("button", name="Nouveau code").click()
        expect(element).not_to_have_text(f"{code[:3]} {code[3:]}")
        second = shown_code(page)
        assert second != code
        expect(status).to_be_empty()
        expect(timer).to_have_text(re.compile(r"^Valable encore "))

        page.get_by_role("button", name="Fermer").click()
        expect(page.locator("#walk-in-box")).to_be_hidden()
        start = page.get_by_role("button", name="Session sans rendez-vous")
        expect(start).to_be_visible()
        expect(start).to_be_focused()
        assert page.evaluate("window.cspViolations") == [] and reported == []
    finally:
        page.close()


def test_an_expired_code_says_so_and_english_texts_exist(browser: Browser, tmp_path: Path) -> None:
    options = CentralOptions(walk_in_code_lifetime=timedelta(seconds=2))
    with CentralThread(tmp_path / "c.db", options=options) as central:
        admin = CentralAdmin(central.url, central.admin_token)
        clerk = admin.create_clerk("Mme Martin", "CAF")
        page, reported = open_console(browser, central.url, clerk.token)
        try:
            page.get_by_role("button", name="Session sans rendez-vous").click()
            shown_code(page)
            expect(page.locator("#walk-in-status")).to_have_text(re.compile("^Code expiré"), timeout=5_000)
            expect(page.locator("#walk-in-code")).to_have_class(re.compile(r"\bexpired\b"))
            expect(page.locator("#walk-in-timer")).to_be_empty()

            # The walk-in texts in English, when the page's language is English.
            page.evaluate("document.documentElement.lang = 'en'")
            page.get_by_role("button", name="Nouveau code").click()
            expect(page.get_by_role("button", name="New code")).to_be_visible()
            expect(page.locator("#walk-in-timer")).to_have_text(re.compile(r"^Valid for 0:0[12]$"))
            assert (
                page.locator("#walk-in-code").get_attribute("aria-label", timeout=1_000).startswith("Code: ")
            )
            expect(page.locator("#walk-in-status")).to_have_text(re.compile("^Code expired"), timeout=5_000)
            languages = page.evaluate("Object.keys(window.walkInTexts)")
            keys = page.evaluate("Object.values(window.walkInTexts).map((t) => Object.keys(t).sort().join())")
            assert languages == ["fr", "en"] and keys[0] == keys[1]
            assert page.evaluate("window.cspViolations") == [] and reported == []
        finally:
            page.close()
            admin.close()
