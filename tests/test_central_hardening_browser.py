"""In a real browser (Debian's headless Chromium, Playwright): the clerk console works under its
Content-Security-Policy and the policy holds; other sites cannot frame it; a council's clerk app on
an allow-listed origin can call the clerk API (CORS), and one on another origin cannot."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from kiosk_client.central.admin import CentralAdmin
from kiosk_client.central.guard import CentralOptions
from kiosk_client.central.server import CentralThread

from .conftest import Site

pytestmark = pytest.mark.e2e

# Playwright injects this before any page script, outside the page's policy.
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));
"""


def csp_messages(page: Page) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text) if "Content Security Policy" in m.text else None)
    return messages


@contextmanager
def web_page_server(html: str) -> Iterator[str]:
    """Another web origin on loopback (another port) serving one page."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_console_runs_under_its_policy_and_the_policy_holds(browser: Browser, site: Site) -> None:
    page = browser.new_page()
    try:
        page.add_init_script(WATCH_CSP)
        reported = csp_messages(page)
        page.goto(f"{site.url}/clerk#token={site.clerk.token}")
        page.locator("#who", has_text="Mme Martin").wait_for(timeout=10_000)  # its fetch() went through
        assert (
            page.evaluate("getComputedStyle(document.querySelector('header')).display") == "flex"
        )  # clerk.css
        assert page.evaluate("window.cspViolations") == [] and reported == []

        # What an injected page would try: an inline script. The policy must stop it, and say so.
        ran = page.evaluate(
            """() => { const s = document.createElement("script"); s.textContent = "window.injected = 1";
                       document.body.append(s); return window.injected === 1; }"""
        )
        assert ran is False
        page.wait_for_function("window.cspViolations.length > 0", timeout=5_000)
        assert page.evaluate("window.cspViolations") == ["script-src-elem inline"]
    finally:
        page.close()


def test_other_sites_cannot_frame_the_console(browser: Browser, site: Site) -> None:
    with web_page_server(
        f'<!doctype html><title>Ailleurs</title><iframe src="{site.url}/clerk"></iframe>'
    ) as url:
        page = browser.new_page()
        try:
            reported = csp_messages(page)
            page.goto(url)  # waits for the page's load event, which waits for its frame
            for _ in range(50):  # the console message may trail the load event a little
                if reported:
                    break
                page.wait_for_timeout(100)
            [framed] = page.main_frame.child_frames
            assert not framed.url.startswith(site.url)  # Chromium shows its error page instead
            assert any("frame-ancestors" in m for m in reported)
        finally:
            page.close()


FETCH_CLERK_API = """async ([central, token]) => {
  try {
    const response = await fetch(central + "/api/v1/clerk/appointments",
      { headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" } });
    return (await response.json()).clerk.display_name;
  } catch (error) { return "blocked: " + error.name; }
}"""


def test_a_clerk_app_on_an_allowed_origin_can_call_the_clerk_api(browser: Browser, tmp_path: Path) -> None:
    page_html = "<!doctype html><title>Application des conseillers</title><p>clerk app</p>"
    with web_page_server(page_html) as allowed, web_page_server(page_html) as stranger:
        options = CentralOptions(clerk_origins=(allowed,))
        with CentralThread(tmp_path / "c.db", options=options) as central:
            admin = CentralAdmin(central.url, central.admin_token)
            clerk = admin.create_clerk("Mme Martin", "CAF")
            admin.close()
            page = browser.new_page()
            try:
                page.goto(allowed)
                assert page.evaluate(FETCH_CLERK_API, [central.url, clerk.token]) == "Mme Martin"
                page.goto(stranger)
                assert page.evaluate(FETCH_CLERK_API, [central.url, clerk.token]) == "blocked: TypeError"
            finally:
                page.close()
