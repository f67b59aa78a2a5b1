"""Documents the clerk never confirmed are destroyed after their retention, and the central is told
(only the document's id and hash): against the reference central, and through an outage."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from pathlib import Path

from kiosk_client.adapters.fakes import FakeCallFactory, FakeCentral, MemoryCache
from kiosk_client.adapters.outbox import EncryptedOutbox
from kiosk_client.adapters.page_imaging import OpenCvPageProcessor
from kiosk_client.adapters.scanner_sane import SaneScanner
from kiosk_client.core.clock import CentralClock, SystemClock
from kiosk_client.core.document_desk import DocumentPorts
from kiosk_client.core.document_protocol import Manifest
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.errors import CentralUnavailable

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, make_engine, wait_for

KEY = b"e" * 32


def left_behind(folder: Path, appointment_id: str, hours_ago: float) -> Manifest:
    """A document sent during an appointment `hours_ago`, never confirmed by the clerk."""
    data = b"%PDF-1.4 " + secrets.token_bytes(2000)
    manifest = Manifest(
        secrets.token_hex(16), "Avis.pdf", "application/pdf", len(data), 1, hashlib.sha256(data).hexdigest()
    )
    then = time.time() - hours_ago * 3600
    EncryptedOutbox(folder, KEY, reserve_bytes=0, clock=lambda: then).put(appointment_id, manifest, data)
    return manifest


async def test_an_expired_document_is_destroyed_and_reported_to_the_reference_central(
    site: Site, tmp_path: Path
) -> None:
    outbox = tmp_path / "kiosk" / "outbox"
    old = left_behind(outbox, "appt-yesterday", hours_ago=25)
    recent = left_behind(outbox, "appt-today", hours_ago=1)
    (outbox / f"{secrets.token_hex(16)}.doc").write_bytes(b"KOB1 garbage")  # unreadable: destroyed too
    token = await asyncio.to_thread(enrolled_token, site.url, site.enrollment_code)
    engine = make_engine(site.url, token, tmp_path / "kiosk", Recorder(), outbox_key=KEY)
    run = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: len(site.admin.expired_documents()) == 2, 15)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    reports = {r["reason"]: r for r in site.admin.expired_documents()}
    assert reports["retention"]["document_id"] == old.id
    assert reports["retention"]["sha256"] == old.sha256
    assert reports["retention"]["appointment_id"] == "appt-yesterday"
    assert reports["unreadable"]["sha256"] is None
    assert [p.name for p in outbox.glob("*.doc")] == [f"{recent.id}.doc"]  # the recent one waits on


async def test_a_report_the_central_cannot_take_is_tried_again(tmp_path: Path) -> None:
    old = left_behind(tmp_path, "appt-1", hours_ago=30)
    central = FakeCentral()
    central.failure = CentralUnavailable("down")
    ports = DocumentPorts(
        SaneScanner(),
        OpenCvPageProcessor(),
        EncryptedOutbox(tmp_path, KEY, reserve_bytes=0),
        sweep_every_s=0.1,
    )
    engine = KioskEngine(
        central,
        FakeCallFactory(),
        MemoryCache(),
        CentralClock(SystemClock()),
        lambda e: None,
        documents=ports,
    )
    run = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: not list(tmp_path.glob("*.doc")), 5)  # destroyed at once
        await asyncio.sleep(0.3)
        assert central.expired_documents == []  # the central is down: nothing went
        central.failure = None
        await wait_for(lambda: len(central.expired_documents) == 1, 5)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert central.expired_documents[0].document_id == old.id


async def test_a_document_the_reset_check_destroys_is_reported_without_waiting_for_the_next_round(
    tmp_path: Path,
) -> None:
    central = FakeCentral()
    store = EncryptedOutbox(tmp_path, KEY, reserve_bytes=0)
    ports = DocumentPorts(SaneScanner(), OpenCvPageProcessor(), store, sweep_every_s=600.0)
    engine = KioskEngine(
        central,
        FakeCallFactory(),
        MemoryCache(),
        CentralClock(SystemClock()),
        lambda e: None,
        documents=ports,
    )
    run = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: engine.reset.out_of_service is None and not engine.reset.checking, 10)
        await asyncio.sleep(0.2)  # the first round has swept an empty outbox; the next is 10 min away
        old = left_behind(tmp_path, "appt-1", hours_ago=30)
        await engine._verify_reset("start_up")  # as staff bring the kiosk back: it sweeps first
        await wait_for(lambda: len(central.expired_documents) == 1, 5)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert central.expired_documents[0].document_id == old.id
    assert len(store) == 0
