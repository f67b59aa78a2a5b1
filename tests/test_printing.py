"""Printing what the clerk sends, below the UI: the protocol's limits and hostile messages, and the
session's print desk with the real renderer (poppler, out of process) on real and hostile files.
The printer here is a fake (FakePrinter, recording what it got); the real IPP adapter is tested
against ippeveprinter in test_printer_ipp.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from kiosk_client.adapters import pdf_poppler
from kiosk_client.adapters.fakes import FakeDocumentLink
from kiosk_client.adapters.pdf_poppler import PopplerRenderer
from kiosk_client.core import print_protocol as pp
from kiosk_client.core.errors import ConfigError
from kiosk_client.core.printing import (
    PdfRefused,
    PrintDesk,
    PrinterError,
    PrintPorts,
    PrintState,
    PrintStatus,
)
from kiosk_client.core.settings import PrintSettings, parse_settings
from kiosk_client.tools.print_sender import PrintSender

from .kiosk_rig import wait_for
from .print_rig import LETTER, make_pdf, require_tools

SCHEMAS = Path(__file__).parent.parent / "kiosk_client" / "central" / "schemas"
ID = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


# ----------------------------------------------------------------------------- the protocol


def test_an_offer_is_read_exactly() -> None:
    offer = pp.parse_clerk_message(pp.offer(ID, "Attestation CAF.pdf", 1234, "a" * 64))
    assert offer == pp.PrintOffer(ID, "Attestation CAF.pdf", 1234, "a" * 64)
    assert pp.parse_clerk_message(pp.end(ID)) == pp.PrintEnd(ID)
    chunk = pp.parse_clerk_message(pp.chunk(ID, 16384, b"%PDF"))
    assert chunk == pp.PrintChunk(ID, 16384, b"%PDF")


def offer_with(**doc: object) -> str:
    return json.dumps({"v": 1, "type": "print.offer", "doc": {"id": ID, "name": "a.pdf", "size": 1,
                                                             "sha256": "a" * 64, **doc}})  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (json.dumps({"v": 1, "type": "print.end", "id": ID, "x": 1}), "malformed"),  # an unknown field
        (json.dumps({"v": True, "type": "print.end", "id": ID}), "unsupported_version"),
        (json.dumps({"v": 1, "type": "print.end", "id": ID + "\n"}), "malformed"),
        (json.dumps({"v": 1, "type": "print.teleport", "id": ID}), "unknown_type"),
        (offer_with(name="../../etc/passwd"), "malformed"),
        (offer_with(name="a\u202egpj.pdf"), "malformed"),  # a name that reads backwards
        (offer_with(size=-5), "malformed"),
        (offer_with(size=True), "malformed"),
        (offer_with(extra="field"), "malformed"),
        (offer_with(sha256="A" * 64), "malformed"),
        (offer_with().replace('"size": 1', '"size": 1e999'), "malformed"),
        (json.dumps({"v": 1, "type": "print.end", "id": ID, "pad": "x" * 9000}), "too_large"),
        ("[" * 40 + "]" * 40, "malformed"),
        (b"\x00" * 10, "malformed"),  # a chunk too short to hold its header
        (b"Z" * 32 + bytes(8) + b"x", "malformed"),  # an id that is not hex
        (ID.encode() + bytes(8) + b"x" * (pp.MAX_CHUNK + 1), "malformed"),  # a chunk too large
    ],
)
def test_hostile_messages_are_refused_with_a_code(raw: str | bytes, code: str) -> None:
    with pytest.raises(pp.PrintProtocolError) as refused:
        pp.parse_clerk_message(raw)
    assert refused.value.code == code


def test_only_print_messages_go_to_printing() -> None:
    assert pp.is_print_message(pp.end(ID)) and pp.is_print_message(b"anything binary")
    assert not pp.is_print_message(json.dumps({"v": 1, "type": "doc.accept", "id": ID, "offset": 0}))
    assert not pp.is_print_message("not json") and not pp.is_print_message("[" * 5000)


# ----------------------------------------------------------------------------- the desk


class FakePrinter:
    """Records what it was given; fails with `error` when set."""

    def __init__(self) -> None:
        self.printed: list[bytes] = []
        self.error: PrinterError | None = None

    async def print_pdf(self, data: bytes, on_progress: object) -> None:
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        self.printed.append(data)


class Clerk:
    """The clerk's side of a FakeDocumentLink: what the kiosk said, and a way to send a document."""

    def __init__(self) -> None:
        self.heard: list[dict[str, object]] = []

    def __call__(self, raw: str | bytes) -> None:
        assert isinstance(raw, str)  # the kiosk never sends chunks back
        message = json.loads(raw)
        # Every answer matches the schema the reference central publishes for it.
        schema = json.loads((SCHEMAS / f"documents.{message['type']}.json").read_text())
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(message)]
        assert not errors, (raw, errors)
        self.heard.append(message)

    def states(self, doc_id: str) -> list[object]:
        return [m.get("state") for m in self.heard if m.get("id") == doc_id]

    def reasons(self, doc_id: str) -> list[object]:
        return [m.get("reason") for m in self.heard if m.get("id") == doc_id and "reason" in m]


@pytest.fixture
def rig(tmp_path: Path) -> tuple[PrintDesk, Clerk, FakePrinter, PopplerRenderer, list[PrintState]]:
    require_tools()
    printer = FakePrinter()
    renderer = PopplerRenderer(tmp_path / "memory")
    changes: list[PrintState] = []
    return PrintDesk(PrintPorts(renderer, printer), changes.append), Clerk(), printer, renderer, changes


def send(desk: PrintDesk, doc_id: str, data: bytes, *, name: str = "Attestation.pdf", sha: str = "") -> None:
    desk.on_message(pp.offer(doc_id, name, len(data), sha or hashlib.sha256(data).hexdigest()))
    for offset in range(0, len(data), pp.MAX_CHUNK):
        desk.on_message(pp.chunk(doc_id, offset, data[offset : offset + pp.MAX_CHUNK]))
    desk.on_message(pp.end(doc_id))


async def test_a_pdf_is_received_shown_printed_and_forgotten(rig: tuple) -> None:  # type: ignore[type-arg]
    desk, clerk, printer, renderer, changes = rig
    desk.attach(FakeDocumentLink(clerk))
    data = make_pdf(LETTER)
    send(desk, ID, data)
    await wait_for(lambda: desk.state.document is not None, 10)
    doc = desk.state.document
    assert doc is not None and doc.name == "Attestation.pdf" and len(doc.pages) == 2
    assert all(p.startswith(b"\x89PNG") for p in doc.pages)
    assert not any(s.document is not None and not s.document.pages for s in changes)  # never half shown
    assert renderer.leftovers() == []  # the PDF's file went with the rendering
    assert desk.print()
    assert desk.state.document.status is PrintStatus.PRINTING  # type: ignore[union-attr]
    assert not desk.print()  # one printing at a time
    await wait_for(lambda: desk.state.document.status is PrintStatus.PRINTED, 5)  # type: ignore[union-attr]
    assert printer.printed == [data]
    desk.close()
    assert desk.state.document is None
    await wait_for(lambda: "closed" in clerk.states(ID), 2)
    assert clerk.states(ID) == ["accepted", "received", "shown", "printing", "printed", "closed"]
    assert [m["pages"] for m in clerk.heard if m.get("state") == "shown"] == [2]


async def test_a_failed_printing_is_told_to_both_and_can_be_tried_again(rig: tuple) -> None:  # type: ignore[type-arg]
    _, clerk, printer, renderer, _ = rig
    outcomes: list[str | None] = []  # what the engine hears (the staff's notice, the heartbeat)
    desk = PrintDesk(PrintPorts(renderer, printer), lambda state: None, outcomes.append)
    desk.attach(FakeDocumentLink(clerk))
    send(desk, ID, make_pdf(LETTER[:1]))
    await wait_for(lambda: desk.state.document is not None, 10)
    printer.error = PrinterError("out_of_paper", "media-empty")
    assert desk.print()
    await wait_for(lambda: desk.state.document.status is PrintStatus.FAILED, 5)  # type: ignore[union-attr]
    assert desk.state.document.error == "out_of_paper"  # type: ignore[union-attr]
    printer.error = None  # the animateur adds paper
    assert desk.print()
    await wait_for(lambda: desk.state.document.status is PrintStatus.PRINTED, 5)  # type: ignore[union-attr]
    await wait_for(lambda: "printed" in clerk.states(ID), 2)
    assert clerk.reasons(ID) == ["out_of_paper"]
    assert outcomes == ["out_of_paper", None]


HOSTILE = {
    "not_pdf": b"MZ\x90\x00 an executable, named .pdf",
    "unreadable": b"%PDF-1.7\n" + os.urandom(3000),
    "too_many_pages": make_pdf([[f"Page {n}"] for n in range(pp.MAX_PAGES + 1)]),
}


async def test_hostile_or_broken_files_are_refused_and_change_nothing_on_screen(rig: tuple) -> None:  # type: ignore[type-arg]
    desk, clerk, printer, renderer, _ = rig
    desk.attach(FakeDocumentLink(clerk))
    send(desk, ID, make_pdf(LETTER))
    await wait_for(lambda: desk.state.document is not None, 10)
    shown = desk.state
    for n, (reason, data) in enumerate(HOSTILE.items()):
        doc_id = f"{n:032x}"
        send(desk, doc_id, data)
        await wait_for(lambda d=doc_id: "refused" in clerk.states(d), 10)
        assert clerk.reasons(doc_id) == [reason]
        assert desk.state == shown  # the citizen's screen did not move
    # Lies about the document: too large, more bytes than announced, another hash, gaps.
    desk.on_message(pp.offer(OTHER, "big.pdf", pp.MAX_DOCUMENT_BYTES + 1, "a" * 64))
    send(desk, "1" * 32, b"%PDF-1.4 short", sha="b" * 64)
    await wait_for(lambda: clerk.reasons("1" * 32) == ["hash_mismatch"], 5)  # checked off the loop
    desk.on_message(pp.offer("2" * 32, "x.pdf", 10, "c" * 64))
    desk.on_message(pp.chunk("2" * 32, 0, b"%PDF-1.4 too long"))
    desk.on_message(pp.offer("3" * 32, "x.pdf", 40000, "c" * 64))
    desk.on_message(pp.chunk("3" * 32, 16384, b"%PDF-"))  # not from the start
    desk.on_message(pp.chunk("4" * 32, 0, b"%PDF-"))  # nothing of this id is arriving
    await asyncio.sleep(0)  # the fake link delivers on the next turn
    assert clerk.reasons(OTHER) == ["too_large"]
    assert clerk.reasons("2" * 32) == ["too_large"]
    assert clerk.reasons("3" * 32) == ["malformed"]
    assert clerk.heard[-1] == {"v": 1, "type": "print.error", "code": "unknown_document",
                               "message": "no document of this id is arriving"}  # fmt: skip
    assert desk.state == shown and printer.printed == [] and renderer.leftovers() == []
    assert desk.refused["unknown_document"] == 1


async def test_a_reader_that_hangs_is_killed_and_the_file_refused(
    rig: tuple,  # type: ignore[type-arg]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PDF crafted to make the reader loop: the reader is killed at its deadline, whole."""
    _, clerk, _, _, _ = rig
    tools = tmp_path / "tools"
    tools.mkdir()
    hang = tools / "pdfinfo"
    marker = tmp_path / "child-still-running"
    # The "reader" starts a child and waits for ever: both must go when the deadline comes.
    hang.write_text(f"#!/bin/sh\n(sleep 30; touch {marker}) &\nsleep 30\n")
    hang.chmod(0o755)
    monkeypatch.setattr(pdf_poppler, "INFO_TIMEOUT_S", 0.5)
    renderer = PopplerRenderer(tmp_path / "memory", tools=str(tools))
    desk = PrintDesk(PrintPorts(renderer, FakePrinter()), lambda state: None)
    desk.attach(FakeDocumentLink(clerk))
    started = time.monotonic()
    send(desk, ID, make_pdf(LETTER))
    await wait_for(lambda: "refused" in clerk.states(ID), 10)
    assert time.monotonic() - started < 5
    assert clerk.reasons(ID) == ["unreadable"] and desk.state.document is None
    assert renderer.leftovers() == []
    # Its forked child runs the same script: none of them may outlive the deadline.
    assert await asyncio.to_thread(processes_running, str(hang)) == [], "the reader or its child outlived it"


def processes_running(command: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", command], capture_output=True, text=True).stdout.split()


async def test_one_document_arrives_at_a_time_and_the_end_of_the_session_forgets_all(rig: tuple) -> None:  # type: ignore[type-arg]
    desk, clerk, _, renderer, _ = rig
    desk.attach(FakeDocumentLink(clerk))
    send(desk, ID, make_pdf(LETTER))
    await wait_for(lambda: desk.state.document is not None, 10)
    data = make_pdf(LETTER[:1])
    desk.on_message(pp.offer(OTHER, "second.pdf", len(data), hashlib.sha256(data).hexdigest()))
    desk.on_message(pp.offer("5" * 32, "third.pdf", 10, "d" * 64))  # while the second is arriving
    await asyncio.sleep(0)
    assert clerk.reasons("5" * 32) == ["busy"] and desk.state.incoming
    await desk.end()
    await asyncio.sleep(0)
    assert desk.state.document is None and not desk.state.incoming
    assert clerk.states(ID)[-1] == "closed" and clerk.states(OTHER)[-1] == "closed"
    assert renderer.leftovers() == []


def test_the_printer_is_configured_in_the_kiosk_file_or_refused_with_the_key_named() -> None:
    base = '[central]\nurl = "https://central.example"\n'
    assert parse_settings(base, "k.toml").printing == PrintSettings(
        True, "ipp://localhost:631/printers/kiosk"
    )
    chosen = parse_settings(base + '[printing]\nprinter = "ipps://printer.local/ipp/print"\n', "k.toml")
    assert chosen.printing.printer == "ipps://printer.local/ipp/print"
    assert parse_settings(base + '[printing]\nprinter = "none"\n', "k.toml").printing.printer is None
    for wrong, key in (('printer = "file:///dev/usb/lp0"', "printing.printer"), ("enabled = 1", "printing.enabled"),
                       ("colour = true", "printing.colour")):  # fmt: skip
        with pytest.raises(ConfigError) as refused:
            parse_settings(base + f"[printing]\n{wrong}\n", "k.toml")
        assert refused.value.key == key


async def test_a_reader_that_crashes_is_a_refused_file_not_a_crashed_kiosk(tmp_path: Path) -> None:
    """A PDF crafted to crash the reader: only the reader dies (here it kills itself with SIGSEGV)."""
    require_tools()
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "pdfinfo").write_text("#!/bin/sh\necho 'Pages:          1'\n")
    (tools / "pdftoppm").write_text("#!/bin/sh\nkill -SEGV $$\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    renderer = PopplerRenderer(tmp_path / "memory", tools=str(tools))
    with pytest.raises(PdfRefused) as refused:
        await renderer.render(make_pdf(LETTER[:1]), pp.MAX_PAGES)
    assert refused.value.code == "unreadable" and renderer.leftovers() == []


async def test_the_python_clerk_sends_a_document_in_many_chunks_and_withdraws_it(tmp_path: Path) -> None:
    """tools/print_sender.py (the clerk bot's side) against the kiosk's desk."""
    require_tools()
    desk = PrintDesk(PrintPorts(PopplerRenderer(tmp_path / "memory"), FakePrinter()), lambda state: None)
    sender = PrintSender(send_text=desk.on_message, send_bytes=desk.on_message)
    desk.attach(FakeDocumentLink(lambda raw: sender.on_message(json.loads(raw))))
    data = make_pdf(LETTER, padding=200_000)  # thirteen chunks
    doc_id = sender.offer(data, "Attestation CAF.pdf")
    assert await sender.wait_for(doc_id, "shown", 10) == ["accepted", "received", "shown"]
    assert desk.state.document is not None and desk.state.document.id == doc_id
    assert len(desk.state.document.pages) == 2
    sender.cancel(doc_id)
    assert (await sender.wait_for(doc_id, "closed", 5))[-1] == "closed"
    assert desk.state.document is None and doc_id not in sender.documents
