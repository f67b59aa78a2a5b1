"""Sending documents on the documents channel: receipts, resume after a drop, damaged copies sent
again, refusals, hostile clerk messages; over a fake link, then over real aiortc peers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets

from kiosk_client.adapters.fakes import FakeDocumentLink
from kiosk_client.adapters.rtc_aiortc import AiortcDocumentLink
from kiosk_client.core.document_protocol import Manifest
from kiosk_client.core.document_transfer import DocumentTransfers, Transfer, TransferStatus
from kiosk_client.tools.document_receiver import DocumentReceiver

from .aiortc_pair import connected_pair
from .kiosk_rig import wait_for as until


class MemorySource:
    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        self.forgotten: list[str] = []

    def add(self, data: bytes, name: str = "Justificatif.pdf") -> Manifest:
        manifest = Manifest(
            secrets.token_hex(16), name, "application/pdf", len(data), 1, hashlib.sha256(data).hexdigest()
        )
        self.documents[manifest.id] = data
        return manifest

    def read(self, doc_id: str) -> bytes:
        return self.documents[doc_id]

    def confirmed(self, doc_id: str) -> None:
        self.forgotten.append(doc_id)
        del self.documents[doc_id]


class Rig:
    def __init__(self) -> None:
        self.source = MemorySource()
        self.states: list[tuple[Transfer, ...]] = []
        self.requests: list[str] = []
        self.transfers = DocumentTransfers(self.source, self.states.append, self.requests.append)
        self.saved: dict[str, bytes] = {}
        self.receiver = DocumentReceiver(
            lambda text: None, lambda m, data: self.saved.__setitem__(m.id, data)
        )
        self.link: FakeDocumentLink | None = None

    def connect(self, capacity: int | None = None) -> FakeDocumentLink:
        link = FakeDocumentLink(self.receiver.on_message, capacity)
        self.receiver.send_text = lambda text: asyncio.get_running_loop().call_soon(
            self.transfers.on_message, text
        )
        self.link = link
        self.transfers.attach(link)
        return link

    def status(self, manifest: Manifest) -> Transfer:
        return next(t for t in self.transfers.transfers if t.manifest.id == manifest.id)


async def test_a_document_is_sent_checked_and_forgotten_once_the_clerk_confirms() -> None:
    rig = Rig()
    data = secrets.token_bytes(300_000)
    manifest = rig.source.add(data)
    rig.transfers.add(manifest)
    rig.connect()
    await until(lambda: rig.status(manifest).status is TransferStatus.RECEIVED)
    assert rig.saved[manifest.id] == data
    assert rig.source.forgotten == [manifest.id]
    assert {t[0].status for t in rig.states} >= {TransferStatus.SENDING, TransferStatus.CHECKING}
    await rig.transfers.close()


async def test_after_a_drop_the_transfer_resumes_from_what_the_clerk_holds() -> None:
    rig = Rig()
    data = secrets.token_bytes(1_000_000)
    manifest = rig.source.add(data)
    rig.transfers.add(manifest)
    first = rig.connect(capacity=400_000)  # the call drops after ~400 kB
    await until(lambda: not first.is_open())
    await asyncio.sleep(0.05)
    rig.transfers.detach()
    held = len(rig.receiver.incoming[manifest.id].data)
    assert 0 < held < len(data)
    rig.connect()  # the call is rebuilt
    await until(lambda: rig.status(manifest).status is TransferStatus.RECEIVED)
    assert rig.status(manifest).resumed_from == held
    assert rig.receiver.bytes_received == len(data)  # nothing the clerk held was sent again
    assert rig.saved[manifest.id] == data
    await rig.transfers.close()


async def test_a_copy_damaged_on_the_clerks_side_is_sent_again_whole() -> None:
    rig = Rig()
    data = secrets.token_bytes(100_000)
    manifest = rig.source.add(data)
    original = rig.receiver._on_chunk
    damaged = []

    def damage_first_chunk(raw: bytes) -> None:
        if not damaged:
            damaged.append(True)
            raw = raw[:-1] + bytes([raw[-1] ^ 0xFF])
        original(raw)

    rig.receiver._on_chunk = damage_first_chunk  # type: ignore[method-assign]
    rig.transfers.add(manifest)
    rig.connect()
    await until(lambda: rig.status(manifest).status is TransferStatus.RECEIVED)
    assert "hash_mismatch" in rig.receiver.errors
    assert rig.saved[manifest.id] == data
    await rig.transfers.close()


async def test_a_refused_document_is_reported_and_kept() -> None:
    rig = Rig()
    rig.receiver._accept = lambda manifest: False
    manifest = rig.source.add(b"%PDF-1.4 refused")
    rig.transfers.add(manifest)
    rig.connect()
    await until(lambda: rig.status(manifest).status is TransferStatus.REFUSED)
    assert rig.status(manifest).detail == "refused"
    assert manifest.id in rig.source.documents  # not deleted by the clerk's say-so alone
    await rig.transfers.close()


async def test_hostile_clerk_messages_change_nothing_and_are_answered() -> None:
    rig = Rig()
    manifest = rig.source.add(secrets.token_bytes(50_000))
    sent: list[str] = []
    link = FakeDocumentLink(lambda raw: sent.append(raw) if isinstance(raw, str) else None)
    rig.transfers.add(manifest)
    rig.transfers.attach(link)
    await until(lambda: any("doc.offer" in s for s in sent))
    for hostile in (
        "not json",
        json.dumps({"v": 1, "type": "doc.accept", "id": "f" * 32, "offset": 0}),  # unknown document
        json.dumps({"v": 1, "type": "doc.accept", "id": manifest.id, "offset": manifest.size + 1}),
        json.dumps(
            {"v": 1, "type": "doc.receipt", "id": manifest.id, "sha256": manifest.sha256}
        ),  # too early
        json.dumps({"v": 1, "type": "doc.progress", "id": manifest.id, "offset": 40_000}),  # nothing sent yet
    ):
        rig.transfers.on_message(hostile)
    await asyncio.sleep(0.05)
    errors = [json.loads(s)["code"] for s in sent if "doc.error" in s]
    assert errors == ["malformed", "unknown_document", "bad_offset"]
    assert rig.status(manifest).status is TransferStatus.WAITING and rig.status(manifest).confirmed == 0
    assert rig.source.forgotten == []
    await rig.transfers.close()


async def test_the_clerks_request_for_a_paper_reaches_the_kiosk() -> None:
    rig = Rig()
    rig.connect()
    rig.receiver.request("justificatif de domicile")
    await until(lambda: rig.requests == ["justificatif de domicile"])
    await rig.transfers.close()


async def test_over_real_aiortc_peers_a_cut_call_resumes_and_the_hash_matches() -> None:
    rig = Rig()
    data = secrets.token_bytes(4_000_000)
    manifest = rig.source.add(data)
    rig.transfers.add(manifest)
    cut_done = False
    for attempt in range(2):
        kiosk, clerk, channel, remote = await connected_pair("documents")
        clerk_channel = await asyncio.wait_for(remote, 20)
        clerk_channel.on("message", rig.receiver.on_message)
        rig.receiver.send_text = clerk_channel.send
        channel.on("message", rig.transfers.on_message)
        link = AiortcDocumentLink(channel)
        await until(link.is_open, 20)
        rig.transfers.attach(link)
        if attempt == 0:
            await until(
                lambda: (
                    len(
                        rig.receiver.incoming.get(manifest.id, b"")
                        and rig.receiver.incoming[manifest.id].data
                    )
                    > 1_000_000
                ),
                20,
            )
            await kiosk.close()  # the call drops mid-transfer
            await clerk.close()
            rig.transfers.detach()
            cut_done = True
            held = len(rig.receiver.incoming[manifest.id].data)
            continue
        await until(lambda: rig.status(manifest).status is TransferStatus.RECEIVED, 30)
        await kiosk.close()
        await clerk.close()
    assert cut_done
    assert rig.status(manifest).resumed_from == held
    assert rig.saved[manifest.id] == data
    assert hashlib.sha256(rig.saved[manifest.id]).hexdigest() == manifest.sha256
    assert rig.receiver.bytes_received == len(data)
    await rig.transfers.close()


async def test_a_refusal_while_the_chunks_flow_stops_them_and_stays_a_refusal() -> None:
    rig = Rig()
    data = secrets.token_bytes(2_000_000)
    manifest = rig.source.add(data)
    original = rig.receiver._on_chunk
    refused: list[bool] = []

    def refuse_midway(raw: bytes) -> None:
        original(raw)
        if not refused and len(rig.receiver.incoming[manifest.id].data) >= 200_000:
            refused.append(True)  # the clerk presses "Refuser" while the document arrives
            rig.transfers.on_message(
                json.dumps({"v": 1, "type": "doc.reject", "id": manifest.id, "reason": "refused"})
            )

    rig.receiver._on_chunk = refuse_midway  # type: ignore[method-assign]
    rig.transfers.add(manifest)
    link = rig.connect()
    await until(lambda: rig.status(manifest).status is TransferStatus.REFUSED)
    await asyncio.sleep(0.2)
    assert rig.status(manifest).status is TransferStatus.REFUSED  # not back to waiting for a receipt
    assert link.chunk_bytes < len(data)  # the rest was not sent
    assert manifest.id in rig.source.documents  # kept: refused is not confirmed
    await rig.transfers.close()


async def test_an_error_names_the_refused_message_and_its_document_when_it_can() -> None:
    sent: list[dict[str, object]] = []
    transfers = DocumentTransfers(MemorySource(), lambda t: None, lambda label: None)
    link = FakeDocumentLink(lambda raw: sent.append(json.loads(raw)) if isinstance(raw, str) else None)
    transfers.attach(link)
    unknown = "0" * 32
    transfers.on_message(json.dumps({"v": 1, "type": "doc.receipt", "id": unknown, "sha256": "a" * 64}))
    transfers.on_message(json.dumps({"v": 1, "type": "doc.accept", "id": unknown, "offset": -1}))
    transfers.on_message(json.dumps({"v": 1, "type": "doc.accept", "id": "../etc", "offset": 0}))
    transfers.on_message("[" * 50)
    await asyncio.sleep(0.05)
    assert [(m["code"], m.get("refused"), m.get("id")) for m in sent] == [
        ("unknown_document", "doc.receipt", unknown),
        ("malformed", "doc.accept", unknown),
        ("malformed", "doc.accept", None),  # an id in the wrong format is never echoed
        ("malformed", None, None),
    ]
    await transfers.close()
