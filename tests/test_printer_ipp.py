"""The IPP printer adapter against a real IPP Everywhere printer: CUPS's ippeveprinter, started by
the test on a free port (root or not). The job's bytes must arrive at the printer; its failures must
come back as the kiosk's codes (out of paper, offline, no printer), and a job left waiting on a
printer that waits for paper is cancelled rather than left for the next visitor."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from kiosk_client.adapters.printer_ipp import (
    CHARSET,
    GET_JOB_ATTRIBUTES,
    INTEGER,
    JOB_CANCELED,
    LANGUAGE,
    TAG_JOB,
    URI,
    IppFormatError,
    IppPrinter,
    attribute,
    decode_response,
    encode_request,
    http_url,
    reason_code,
)
from kiosk_client.core.printing import PrinterError
from kiosk_client.core.settings import PrintSettings
from kiosk_client.tools.selftest import printing_checks

from .kiosk_rig import kiosk_settings
from .print_rig import LETTER, free_port, make_pdf, stand_in_printer


def test_the_document_s_bytes_reach_the_printer(tmp_path: Path) -> None:
    data = make_pdf(LETTER)
    steps: list[str] = []
    with stand_in_printer(tmp_path) as printer:
        asyncio.run(IppPrinter(printer.uri, poll_s=0.05).print_pdf(data, steps.append))
        [job] = printer.jobs()
        assert job.read_bytes() == data
        assert job.name == "1-kiosk.pdf"  # named "kiosk", never after the citizen's document
    assert steps == ["sent"]


def test_a_printer_out_of_paper_is_said_so_and_its_job_does_not_wait_there(tmp_path: Path) -> None:
    # Each job fails as a printer with an empty tray does: it says media-empty and aborts the job.
    command = tmp_path / "no-paper.sh"
    command.write_text('#!/bin/sh\necho "STATE: +media-empty-error" >&2\nexit 1\n')
    command.chmod(0o755)
    data = make_pdf(LETTER[:1])
    with stand_in_printer(tmp_path, job_command=str(command)) as printer:
        ipp = IppPrinter(printer.uri, poll_s=0.05)
        with pytest.raises(PrinterError) as first:
            asyncio.run(ipp.print_pdf(data, lambda step: None))
        assert first.value.code == "out_of_paper"
        # Tried again: ippeveprinter now holds the job "processing" while it waits for paper, as a
        # real printer does; the kiosk says why and cancels the job instead of waiting for ever.
        with pytest.raises(PrinterError) as second:
            asyncio.run(ipp.print_pdf(data, lambda step: None))
        assert second.value.code == "out_of_paper"
        # Cancelled: at once, or (a printer busy waiting for paper) on its way to stop.
        state, reasons = job_state(printer.uri, 2)
        assert state == JOB_CANCELED or "processing-to-stop-point" in reasons, (state, reasons)


def job_state(uri: str, job_id: int) -> tuple[object, list[object]]:
    """Asked of the printer as any IPP client would (Get-Job-Attributes)."""
    attributes = [
        attribute(CHARSET, "attributes-charset", b"utf-8"),
        attribute(LANGUAGE, "attributes-natural-language", b"en"),
        attribute(URI, "printer-uri", uri.encode()),
        attribute(INTEGER, "job-id", struct.pack(">i", job_id)),
    ]
    body = encode_request(GET_JOB_ATTRIBUTES, 1, attributes)
    answer = httpx.post(http_url(uri), content=body, headers={"Content-Type": "application/ipp"})
    response = decode_response(answer.content)
    return response.first(TAG_JOB, "job-state"), response.all(TAG_JOB, "job-state-reasons")


def test_no_printer_there_and_no_printer_at_all(tmp_path: Path) -> None:
    data = make_pdf(LETTER[:1])
    with stand_in_printer(tmp_path) as printer:
        elsewhere = printer.uri.replace("/ipp/print", "/ipp/nothing-here")
        with pytest.raises(PrinterError) as wrong_queue:
            asyncio.run(IppPrinter(elsewhere).print_pdf(data, lambda step: None))
        assert wrong_queue.value.code == "no_printer"
        assert printer.jobs() == []
    with pytest.raises(PrinterError) as offline:  # nothing listens there any more
        asyncio.run(IppPrinter(f"ipp://127.0.0.1:{free_port()}/ipp/print").print_pdf(data, lambda s: None))
    assert offline.value.code == "printer_offline"


def test_printer_answers_are_read_with_bounds() -> None:
    head = struct.pack(">BBHI", 1, 1, 0, 7)
    group = bytes([0x04])
    reasons = (
        struct.pack(">BH", 0x44, 21) + b"printer-state-reasons" + struct.pack(">H", 17) + b"media-jam-warning"
    )
    response = decode_response(head + group + reasons + bytes([0x03]))
    assert response.all(0x04, "printer-state-reasons") == ["media-jam-warning"]
    assert reason_code(response.all(0x04, "printer-state-reasons"), include_reports=False) == "paper_jam"
    assert reason_code(["media-empty-report"], include_reports=False) is None  # information only
    assert reason_code(["media-empty-report"], include_reports=True) == "out_of_paper"
    assert reason_code(["none", 12, b"x"], include_reports=True) is None
    for broken in (b"", head, head + group + reasons[:10], head + group + reasons, head + reasons):
        with pytest.raises(IppFormatError):
            decode_response(broken)
    assert http_url("ipp://localhost/printers/kiosk") == "http://localhost:631/printers/kiosk"
    assert http_url("ipps://printer.example:443/ipp/print") == "https://printer.example:443/ipp/print"
    with pytest.raises(ValueError):
        http_url("file:///dev/usb/lp0")


def test_the_technician_s_self_test_asks_the_printer(tmp_path: Path) -> None:
    settings = kiosk_settings("http://127.0.0.1:1", tmp_path / "kiosk")
    with stand_in_printer(tmp_path) as printer:
        on = replace(settings, printing=PrintSettings(printer=printer.uri))
        assert {c["name"]: c["ok"] for c in printing_checks(on)} == {"pdf_reader": True, "printer": True}
    gone = {c["name"]: c for c in printing_checks(on)}  # the same printer, switched off
    assert not gone["printer"]["ok"] and "printer_offline" in gone["printer"]["detail"]
    shown_only = replace(settings, printing=PrintSettings(printer=None))
    assert [c["ok"] for c in printing_checks(shown_only)] == [True, True]
