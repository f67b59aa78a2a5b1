"""End to end: the SANE test backend as the kiosk's scanner, the real engine and aiortc call, the
clerk bot receiving on the documents channel through the reference central's signalling."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest

from kiosk_client.core.document_transfer import TransferStatus
from kiosk_client.core.events import SessionDocument, StateChanged
from kiosk_client.tools.clerk_bot import ClerkBot

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, make_engine, wait_for
from .sane_rig import sane_folder

pytestmark = pytest.mark.e2e


def documents_state(recorder: Recorder) -> Any:
    states = [e.snapshot.documents for e in recorder.events if isinstance(e, StateChanged)]
    return states[-1] if states else None


def scanned(recorder: Recorder) -> int:
    state = documents_state(recorder)
    return len(state.pages) if state is not None and state.scanner == "idle" else -1


async def test_three_pages_scanned_sent_and_checked_by_the_clerk_and_the_outbox_is_empty(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANE_CONFIG_DIR", str(sane_folder(tmp_path)))
    token = await asyncio.to_thread(enrolled_token, site.url, site.enrollment_code)
    appointment = site.appointment_in(3)
    appointment_id = str(appointment["id"])
    recorder = Recorder()
    engine = make_engine(site.url, token, tmp_path / "kiosk", recorder, outbox_key=b"e" * 32)
    run = asyncio.create_task(engine.run())
    bot = ClerkBot(site.url, site.clerk.token, hold_s=60.0)
    served = asyncio.create_task(
        bot.serve_appointment(appointment_id, datetime.fromisoformat(str(appointment["start"])))
    )
    try:
        await wait_for(lambda: appointment_id in bot.document_channels, 30)
        await wait_for(lambda: bot.document_channels[appointment_id].readyState == "open", 10)
        bot.request_document(appointment_id, "justificatif de domicile")
        await wait_for(lambda: getattr(documents_state(recorder), "requested", None) is not None, 10)
        assert documents_state(recorder).requested == "justificatif de domicile"
        for count in (1, 2, 3):  # the citizen lays three sheets on the glass, one after the other
            assert await engine.scan_document("flatbed")
            await wait_for(lambda n=count: scanned(recorder) == n, 30)
        assert await engine.send_document()
        await wait_for(lambda: bool(bot.documents), 30)
        await wait_for(lambda: documents_state(recorder).transfers[0].status is TransferStatus.RECEIVED, 10)
        manifest, data = bot.documents[0]
        assert manifest.pages == 3 and manifest.name == "justificatif de domicile.pdf"
        assert hashlib.sha256(data).hexdigest() == manifest.sha256
        assert len(pdfium.PdfDocument(data)) == 3
        offered = [e for e in recorder.events if isinstance(e, SessionDocument)]
        assert [hashlib.sha256(e.data).hexdigest() for e in offered] == [manifest.sha256]
        assert not list((tmp_path / "kiosk" / "outbox").glob("*.doc"))  # confirmed, so deleted
        await engine.citizen_hang_up()
        report = await asyncio.wait_for(served, 20)
        assert report.documents == [
            {"name": manifest.name, "size": manifest.size, "pages": 3, "sha256": manifest.sha256}
        ]
    finally:
        run.cancel()
        served.cancel()
        await asyncio.gather(run, served, return_exceptions=True)
        await bot.aclose()
