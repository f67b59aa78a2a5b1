"""In a real browser: the clerk console (headless Chromium) asks for a paper, the citizen scans two
pages on the kiosk (the SANE test backend) and sends them; the console checks the SHA-256, confirms,
and the clerk downloads the PDF."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from playwright.sync_api import Browser

from kiosk_client.core.document_transfer import TransferStatus
from kiosk_client.core.session import Phase
from kiosk_client.runtime import LoopThread

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, make_engine, wait_until
from .sane_rig import sane_folder

pytestmark = pytest.mark.e2e


def test_the_clerk_asks_for_a_paper_and_downloads_the_checked_pdf(
    browser: Browser, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANE_CONFIG_DIR", str(sane_folder(tmp_path)))
    token = enrolled_token(site.url, site.enrollment_code)
    appointment = site.appointment_in(1)
    loop = LoopThread()
    loop.start()
    engine = make_engine(site.url, token, tmp_path / "kiosk", Recorder(), outbox_key=b"d" * 32)
    loop.submit(engine.run())
    page = browser.new_page(accept_downloads=True)
    # The console runs under a Content-Security-Policy: whatever it does in a call must not be refused.
    page.add_init_script(
        'window.cspViolations = []; document.addEventListener("securitypolicyviolation",'
        " (e) => window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));"
    )
    csp_reports: list[str] = []
    page.on("console", lambda m: csp_reports.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(f"{site.url}/clerk#token={site.clerk.token}")
        item = page.locator(f'li[data-appointment="{appointment["id"]}"]')
        item.locator(".state", has_text="en ligne").wait_for(timeout=20_000)
        item.get_by_role("button", name="Rejoindre").click()
        wait_until(lambda: engine.session.phase is Phase.IN_CALL, 20)
        ask = page.get_by_role("button", name="Demander un document")
        # A function, not an expression: Playwright evals expressions in the page, which the
        # console's CSP forbids.
        page.wait_for_function(
            "() => !document.querySelector('#ask-document button').disabled", timeout=20_000
        )
        page.fill("#document-label", "Justificatif de domicile")
        ask.click()
        wait_until(
            lambda: getattr(engine.snapshot().documents, "requested", None) == "Justificatif de domicile", 10
        )

        for count in (1, 2):  # the citizen's two touches on "Scanner une page"
            assert loop.submit(engine.scan_document("flatbed")).result(10)
            wait_until(
                lambda n=count: (
                    engine.snapshot().documents.scanner == "idle"  # type: ignore[union-attr]
                    and len(engine.snapshot().documents.pages) == n
                ),  # type: ignore[union-attr]
                30,
            )
        assert loop.submit(engine.send_document()).result(30)

        received = page.locator("#documents li.received")
        received.wait_for(timeout=30_000)
        assert "vérifié ✓" in received.inner_text() and "2 p." in received.inner_text()
        wait_until(
            lambda: engine.snapshot().documents.transfers[0].status is TransferStatus.RECEIVED,  # type: ignore[union-attr]
            10,
        )
        manifest = engine.snapshot().documents.transfers[0].manifest  # type: ignore[union-attr]
        assert f"SHA-256 {manifest.sha256}" in received.inner_text()
        with page.expect_download() as download:
            received.get_by_role("link", name="Télécharger").click()
        saved = tmp_path / "downloaded.pdf"
        download.value.save_as(saved)
        data = saved.read_bytes()
        assert download.value.suggested_filename == "Justificatif de domicile.pdf"
        assert hashlib.sha256(data).hexdigest() == manifest.sha256
        assert len(pdfium.PdfDocument(data)) == 2
        assert not list((tmp_path / "kiosk" / "outbox").glob("*.doc"))  # confirmed: deleted on the kiosk
        assert page.evaluate("window.cspViolations") == [] and csp_reports == []
    finally:
        page.close()
        loop.stop()
