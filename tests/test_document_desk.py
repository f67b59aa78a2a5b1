"""The session's papers on the kiosk: scanned on the SANE test backend, processed with opencv,
kept in the encrypted outbox, sent to a clerk-side receiver."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pypdfium2 as pdfium

from kiosk_client.adapters.fakes import FakeDocumentLink
from kiosk_client.adapters.outbox import EncryptedOutbox
from kiosk_client.adapters.page_imaging import OpenCvPageProcessor
from kiosk_client.core.document_desk import DocumentDesk, DocumentsState
from kiosk_client.core.document_transfer import TransferStatus
from kiosk_client.core.scanning import ScanSource
from kiosk_client.tools.document_receiver import DocumentReceiver

from .kiosk_rig import wait_for as until
from .sane_rig import sane_folder, sane_scanner


class DeskRig:
    def __init__(self, root: Path, reserve_bytes: int = 0, **sane: str) -> None:
        self.folder = sane_folder(root, **sane)
        self.outbox = EncryptedOutbox(root / "outbox", b"k" * 32, reserve_bytes=reserve_bytes)
        self.states: list[DocumentsState] = []
        self.offered: list[tuple[str, bytes]] = []
        self.desk = DocumentDesk(
            "appt-1",
            sane_scanner(self.folder),
            OpenCvPageProcessor(),
            self.outbox,
            self.states.append,
            lambda name, data: self.offered.append((name, data)),
            dpi=150,
        )
        self.saved: dict[str, bytes] = {}
        self.receiver = DocumentReceiver(
            lambda text: None, lambda m, data: self.saved.__setitem__(m.id, data)
        )

    def connect(self) -> None:
        self.receiver.send_text = lambda text: asyncio.get_running_loop().call_soon(
            self.desk.on_message, text
        )
        self.desk.attach(FakeDocumentLink(self.receiver.on_message))

    async def scan(self, source: ScanSource = ScanSource.FLATBED) -> DocumentsState:
        assert self.desk.scan(source)
        await until(lambda: self.desk.state.scanner == "idle")
        return self.desk.state


async def test_three_pages_scanned_previewed_one_removed_sent_and_confirmed(tmp_path: Path) -> None:
    rig = DeskRig(tmp_path)
    for expected in (1, 2, 3):
        state = await rig.scan()
        assert len(state.pages) == expected and state.scan_error is None
    assert all(p.preview[:2] == b"\xff\xd8" for p in state.pages)  # JPEG previews for the screen
    rig.desk.remove_page(2)
    assert [p.number for p in rig.desk.state.pages] == [1, 2]
    manifest = await rig.desk.send("Justificatif de domicile")
    assert manifest is not None and manifest.pages == 2 and manifest.name == "Justificatif de domicile.pdf"
    assert rig.desk.state.pages == () and len(rig.outbox) == 1
    name, pdf = rig.offered[0]  # the form's file chooser gets the same document
    assert name == manifest.name
    assert hashlib.sha256(pdf).hexdigest() == manifest.sha256 and len(pdfium.PdfDocument(pdf)) == 2
    rig.connect()
    await until(lambda: rig.desk.state.transfers[0].status is TransferStatus.RECEIVED)
    assert hashlib.sha256(rig.saved[manifest.id]).hexdigest() == manifest.sha256
    assert len(rig.outbox) == 0  # confirmed: deleted
    await rig.desk.close()


async def test_a_feeder_batch_becomes_pages_in_order(tmp_path: Path) -> None:
    rig = DeskRig(tmp_path)
    state = await rig.scan(ScanSource.FEEDER)
    assert len(state.pages) == 10 and state.scan_error is None
    await rig.desk.close()


async def test_a_jam_keeps_the_pages_already_there_and_says_so(tmp_path: Path) -> None:
    rig = DeskRig(tmp_path)
    await rig.scan()
    (rig.folder / "test.conf").write_text('number_of_devices 1\nread-status-code "SANE_STATUS_JAMMED"\n')
    state = await rig.scan()
    assert state.scan_error == "paper_jammed" and len(state.pages) == 1
    await rig.desk.close()


async def test_a_blank_side_is_dropped_and_counted(tmp_path: Path) -> None:
    rig = DeskRig(tmp_path, test_picture='"Solid white"')
    state = await rig.scan()
    assert state.pages == () and state.blank_pages_dropped == 1
    await rig.desk.close()


async def test_no_room_on_disk_keeps_the_pages_and_sends_nothing(tmp_path: Path) -> None:
    rig = DeskRig(tmp_path, reserve_bytes=10**15)
    await rig.scan()
    assert await rig.desk.send() is None
    assert rig.desk.state.store_error == "outbox_full" and len(rig.desk.state.pages) == 1
    assert rig.desk.state.transfers == () and len(rig.outbox) == 0
    await rig.desk.close()


async def test_at_the_end_unconfirmed_documents_wait_and_refused_ones_go(tmp_path: Path) -> None:
    rig = DeskRig(tmp_path)
    await rig.scan()
    first = await rig.desk.send("Avis d'imposition")
    await rig.scan()
    second = await rig.desk.send("Photo")
    assert first is not None and second is not None
    rig.receiver._accept = lambda manifest: False  # the clerk refuses both
    rig.connect()
    await until(lambda: all(t.status is TransferStatus.REFUSED for t in rig.desk.state.transfers))
    await rig.desk.close()
    assert len(rig.outbox) == 0  # refused by the clerk: deleted

    (tmp_path / "second").mkdir()
    rig2 = DeskRig(tmp_path / "second")
    await rig2.scan()
    pending = await rig2.desk.send()
    assert pending is not None
    await rig2.desk.close()  # the call never came back
    assert [m.id for m in rig2.outbox.pending_manifests("appt-1")] == [pending.id]
    # The same appointment, rejoined later: the desk offers it again.
    again = DocumentDesk(
        "appt-1", sane_scanner(rig2.folder), OpenCvPageProcessor(), rig2.outbox, lambda s: None
    )
    assert [m.id for m in again.unconfirmed()] == [pending.id]
    await again.close()
