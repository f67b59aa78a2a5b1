"""End to end: the clerk console (headless Chromium) sends a PDF to a real kiosk engine over the
call's documents channel; the kiosk checks it and shows it, refuses a broken one without moving,
the citizen prints it with one touch on the stand-in printer (ippeveprinter), whose spool receives
the very bytes; the console follows every step; after the session nothing of it remains on disk."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from kiosk_client.app import build_engine, print_ports
from kiosk_client.core.session import Phase
from kiosk_client.core.settings import PrintSettings
from kiosk_client.runtime import LoopThread

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, kiosk_settings, wait_until
from .print_rig import LETTER, make_pdf, stand_in_printer

pytestmark = pytest.mark.e2e


def test_the_clerk_sends_a_pdf_the_citizen_prints_it_and_nothing_remains(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    letter = tmp_path / "Attestation CAF.pdf"
    letter.write_bytes(make_pdf(LETTER))
    broken = tmp_path / "abîmé.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)  # a PDF header, then nothing readable
    token = enrolled_token(site.url, site.enrollment_code)
    appointment = site.appointment_in(1)
    with stand_in_printer(tmp_path) as printer:
        settings = replace(
            kiosk_settings(site.url, tmp_path / "kiosk"), printing=PrintSettings(printer=printer.uri)
        )
        loop = LoopThread()
        loop.start()
        engine = build_engine(settings, token, Recorder(), None, ended_screen=timedelta(seconds=0.5))
        loop.submit(engine.run())
        page = browser.new_page(viewport={"width": 1366, "height": 650})  # the console's smallest
        page.add_init_script(
            'window.cspViolations = []; document.addEventListener("securitypolicyviolation",'
            " (e) => window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));"
        )
        try:
            page.goto(f"{site.url}/clerk#token={site.clerk.token}")
            item = page.locator(f'li[data-appointment="{appointment["id"]}"]')
            item.locator(".state", has_text="en ligne").wait_for(timeout=20_000)
            item.get_by_role("button", name="Rejoindre").click()
            wait_until(lambda: engine.session.phase is Phase.IN_CALL, 20)
            page.wait_for_function(
                "() => !document.querySelector('#print-document button').disabled", timeout=20_000
            )
            send = page.get_by_role("button", name="Envoyer un document à imprimer")
            page.set_input_files("#print-file", str(letter))
            send.click()
            page.locator('#prints li[data-state="shown"]').wait_for(timeout=20_000)
            assert "affiché à l'usager (2 p.)" in page.locator("#prints li").first.inner_text()
            shown = engine.snapshot().printing
            assert shown is not None and shown.document is not None
            assert shown.document.name == "Attestation CAF.pdf" and len(shown.document.pages) == 2

            # A broken file: the clerk is told why, the citizen's screen does not move.
            page.set_input_files("#print-file", str(broken))
            send.click()
            refused = page.locator('#prints li[data-state="refused"]')
            refused.wait_for(timeout=20_000)
            assert "refusé par la borne : PDF illisible" in refused.inner_text()
            assert engine.snapshot().printing == shown

            # The citizen's one touch on « Imprimer ».
            assert loop.submit(engine.print_document()).result(10)
            page.locator('#prints li[data-state="printed"]').wait_for(timeout=20_000)
            if os.environ.get("KIOSK_SCREENSHOTS"):  # the console as the clerk sees it, to look at
                page.screenshot(path=str(Path(os.environ["KIOSK_SCREENSHOTS"]) / "console-print.png"))
            [job] = printer.jobs()
            assert job.read_bytes() == letter.read_bytes()
            # The central hears how the printer did (the staff would see a failure on the idle screen).
            wait_until(lambda: kiosk_devices(site).get("printer") == "ok", 10)
            assert page.evaluate("window.cspViolations") == []
            # The clerk withdraws it: gone from the citizen's screen and from the kiosk's memory.
            page.locator("#prints li", has_text="imprimé ✓").get_by_role(
                "button", name="Retirer de la borne"
            ).click()
            page.locator('#prints li[data-state="closed"]').wait_for(timeout=10_000)
            assert engine.snapshot().printing.document is None  # type: ignore[union-attr]

            loop.submit(engine.citizen_hang_up()).result(10)
            wait_until(lambda: session_end_report(site, appointment["id"]) is not None, 30)
            report = session_end_report(site, appointment["id"])
            assert report is not None and report["passed"] is True, report
            checks = {c["check"]: c for c in report["checks"]}  # type: ignore[union-attr]
            assert checks["print_files"]["passed"] is True
            assert engine.snapshot().printing is None  # nothing in memory
            renderer = print_ports(settings).renderer  # type: ignore[union-attr]
            assert renderer.leftovers() == []  # nothing on disk
        finally:
            page.close()
            loop.stop()


def kiosk_devices(site: Site) -> dict[str, str]:
    [kiosk] = [k for k in site.admin.kiosks() if k["id"] == site.kiosk_id]
    devices = kiosk["devices"]
    assert isinstance(devices, dict)
    return devices


def session_end_report(site: Site, appointment_id: object) -> dict[str, object] | None:
    for report in site.admin.session_reports():
        if report["appointment_id"] == appointment_id and report["trigger"] == "session_end":
            reset = report["reset"]
            assert isinstance(reset, dict)
            return reset
    return None
