"""Printing what the clerk sends: the session's print desk, its ports, its states and its errors.

One desk per session, one document at a time. The clerk offers a PDF on the documents channel
(core/print_protocol.py); the desk takes its chunks in order, checks its size and SHA-256, has it
read and its pages drawn out of the kiosk's process (PdfRenderer), and only then puts it on the
citizen's screen. One touch on « Imprimer » sends it to the printer (PrinterPort); the clerk hears
each step (print.status). The PDF lives in memory only; the renderer's temporary files are gone once
the pages are drawn, and the reset check looks for any left (`leftovers`). At the end of the session
(or when the citizen closes it) the document is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from . import print_protocol as pp
from .document_transfer import DocumentLink
from .errors import KioskError

log = logging.getLogger(__name__)

LOGGED_REFUSALS_PER_CODE = 3


class PdfRefused(KioskError):
    """A file that will not be shown: `code` is one of print_protocol.REFUSALS (not_pdf,
    too_many_pages, encrypted, unreadable)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PrinterError(KioskError):
    """Printing failed; `code` is stable (the citizen's words and the clerk's report come from it):
    no_printer, printer_offline, out_of_paper, paper_jam, out_of_ink, cover_open, printer_stopped,
    format_unsupported, job_failed, print_timeout."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PdfRenderer(Protocol):
    async def render(self, data: bytes, max_pages: int) -> tuple[bytes, ...]:
        """The pages of a PDF as PNG images (large enough for the kiosk's screen), drawn out of the
        kiosk's process and bounded in time and memory; PdfRefused otherwise."""
        ...

    def leftovers(self) -> list[str]:
        """Names of any temporary file the renderer still has (the reset check wants none)."""
        ...

    def wipe(self) -> None:
        """Removes any temporary file (the session ended, or the kiosk starts)."""
        ...


class PrinterPort(Protocol):
    async def print_pdf(self, data: bytes, on_progress: Callable[[str], None]) -> None:
        """Prints the PDF and returns once the printer says the job completed; PrinterError otherwise.
        `on_progress("sent")` once the printer has the job."""
        ...


@dataclass(frozen=True, slots=True)
class PrintPorts:
    """What a kiosk that shows (and prints) the clerk's documents gives the engine. No printer: the
    documents are shown, without « Imprimer »."""

    renderer: PdfRenderer
    printer: PrinterPort | None = None


class PrintStatus(StrEnum):
    SHOWN = "shown"
    PRINTING = "printing"
    PRINTED = "printed"
    FAILED = "print_failed"


@dataclass(frozen=True, slots=True)
class PrintDocument:
    """The document on the citizen's screen (only once its pages are drawn)."""

    id: str
    name: str
    pages: tuple[bytes, ...]  # PNG
    status: PrintStatus = PrintStatus.SHOWN
    error: str | None = None  # a PrinterError code, after a failed print
    printed: int = 0  # times printed in this session

    def __repr__(self) -> str:
        return f"PrintDocument({self.id}, {self.status}, {len(self.pages)} pages, {self.error})"


@dataclass(frozen=True, slots=True)
class PrintState:
    document: PrintDocument | None = None  # None: nothing on screen
    can_print: bool = True  # this kiosk has a printer
    incoming: bool = False  # a document is arriving or being read (not shown before it is checked)

    @property
    def on_screen(self) -> PrintDocument | None:
        return self.document


@dataclass(slots=True)
class _Incoming:
    """A document arriving: kept apart from the one on screen, which a hostile or broken file
    must not disturb."""

    id: str
    name: str
    size: int
    sha256: str
    buffer: bytearray
    task: asyncio.Task[None] | None = None  # reading it, once whole


class PrintDesk:
    def __init__(
        self,
        ports: PrintPorts,
        on_change: Callable[[PrintState], None],
        on_printed: Callable[[str | None], None] = lambda error: None,
    ) -> None:
        self._renderer = ports.renderer
        self._printer = ports.printer
        self._on_change = on_change
        self._on_printed = on_printed  # None: the printer printed; else its PrinterError code
        self._state = PrintState(can_print=ports.printer is not None)
        self._link: DocumentLink | None = None
        self._incoming: _Incoming | None = None
        self._data: bytes | None = None  # the PDF on screen
        self._printing: asyncio.Task[None] | None = None
        self.refused: Counter[str] = Counter()

    @property
    def state(self) -> PrintState:
        return self._state

    def _set(self, document: PrintDocument | None) -> None:
        self._state = replace(self._state, document=document, incoming=self._incoming is not None)
        self._on_change(self._state)

    # -- the channel

    def attach(self, link: DocumentLink) -> None:
        self._link = link

    def detach(self, link: DocumentLink | None = None) -> None:
        """The channel closed: a document still arriving is dropped (the clerk sends it again on the
        next channel); the one on screen stays, and its later states go to the next channel."""
        if link is not None and link is not self._link:
            return
        self._link = None
        if self._incoming is not None and self._incoming.task is None:
            self._drop_incoming()

    def _send(self, text: str) -> None:
        link = self._link
        if link is not None and link.is_open():
            with contextlib.suppress(ConnectionError):
                link.send_text(text)

    def _tell(self, doc_id: str, state: str, reason: str | None = None, pages: int | None = None) -> None:
        self._send(pp.status(doc_id, state, reason, pages))

    def _refuse(self, doc_id: str | None, code: str, message: str) -> None:
        self.refused[code] += 1
        if self.refused[code] <= LOGGED_REFUSALS_PER_CODE:
            log.warning("printing: refused the clerk's document or message (%s): %s", code, message)
        if doc_id is None:
            self._send(pp.error(code, message))
        else:
            self._tell(doc_id, "refused", code)

    def on_message(self, raw: str | bytes) -> None:
        """A printing message from the clerk; nothing in its handling may raise into the channel."""
        try:
            self._on_message(raw)
        except Exception:
            log.exception("printing: a clerk message could not be handled")
            self._refuse(None, "internal_error", "the kiosk could not handle this message")

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = pp.parse_clerk_message(raw)
        except pp.PrintProtocolError as exc:
            incoming = self._incoming
            if isinstance(raw, bytes) and incoming is not None and incoming.task is None:
                self._drop_incoming()  # a broken chunk spoils the document it belongs to
                self._refuse(incoming.id, exc.code, exc.message)
            else:
                self._refuse(None, exc.code, exc.message)
            return
        incoming = self._incoming
        arriving = incoming if incoming is not None and incoming.task is None else None
        match message:
            case pp.PrintOffer():
                self._offered(message)
            case pp.PrintChunk(id=doc_id, offset=offset, data=data):
                if arriving is None or arriving.id != doc_id:
                    self._refuse(None, "unknown_document", "no document of this id is arriving")
                elif offset != len(arriving.buffer):
                    self._drop_incoming()
                    self._refuse(doc_id, "malformed", "chunks must come in order, without gaps")
                elif len(arriving.buffer) + len(data) > arriving.size:
                    self._drop_incoming()
                    self._refuse(doc_id, "too_large", "more bytes than announced")
                else:
                    arriving.buffer += data
            case pp.PrintEnd(id=doc_id):
                if arriving is None or arriving.id != doc_id:
                    self._refuse(None, "unknown_document", "no document of this id is arriving")
                else:
                    self._ended(arriving)
            case pp.PrintCancel(id=doc_id):
                shown = self._state.document
                if incoming is not None and incoming.id == doc_id:
                    self._drop_incoming()
                    self._tell(doc_id, "closed")
                elif shown is None or shown.id != doc_id:
                    self._refuse(None, "unknown_document", "no such document")
                elif shown.status is PrintStatus.PRINTING:
                    self._refuse(None, "busy", "the document is being printed")
                else:
                    self.close()

    def _offered(self, offer: pp.PrintOffer) -> None:
        if offer.size > pp.MAX_DOCUMENT_BYTES:
            self._refuse(offer.id, "too_large", f"at most {pp.MAX_DOCUMENT_BYTES} bytes")
            return
        if self._incoming is not None:
            self._refuse(offer.id, "busy", "another document is arriving or being read")
            return
        self._incoming = _Incoming(offer.id, offer.name, offer.size, offer.sha256, bytearray())
        self._set(self._state.document)
        self._tell(offer.id, "accepted")

    def _ended(self, incoming: _Incoming) -> None:
        data = bytes(incoming.buffer)
        incoming.buffer = bytearray()
        incoming.task = asyncio.get_running_loop().create_task(self._render(incoming, data))

    async def _render(self, incoming: _Incoming, data: bytes) -> None:
        # Hashing 20 MB takes tens of milliseconds: not on the loop that carries the call.
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        if len(data) != incoming.size or digest != incoming.sha256:
            self._drop_incoming()
            self._refuse(incoming.id, "hash_mismatch", "the document is not the one announced")
            return
        self._tell(incoming.id, "received")
        try:
            pages = await self._renderer.render(data, pp.MAX_PAGES)
        except PdfRefused as exc:
            self._drop_incoming()
            self._refuse(incoming.id, exc.code, str(exc))
            return
        except Exception:
            log.exception("printing: the document could not be read")
            self._drop_incoming()
            self._refuse(incoming.id, "unreadable", "the kiosk could not read the document")
            return
        shown = self._state.document
        if shown is not None and shown.status is PrintStatus.PRINTING:
            self._drop_incoming()
            self._refuse(incoming.id, "busy", "the citizen is printing another document")
            return
        self._incoming = None
        if shown is not None:
            self._tell(shown.id, "closed")  # the new document takes its place
        self._data = data
        self._set(PrintDocument(incoming.id, incoming.name, pages))
        log.info("printing: a document of %d page(s) is shown", len(pages))
        self._tell(incoming.id, "shown", pages=len(pages))

    def _drop_incoming(self) -> None:
        incoming, self._incoming = self._incoming, None
        if incoming is None:
            return
        incoming.buffer = bytearray()
        task = incoming.task
        if task is not None and not task.done() and task is not _current_task():
            task.cancel()  # a rendering in progress: its subprocess is killed
        self._set(self._state.document)

    # -- what the citizen does

    def print(self) -> bool:
        """« Imprimer »: False if there is nothing to print (or no printer, or it is printing)."""
        doc = self._state.document
        if self._printer is None or self._data is None or doc is None or doc.status is PrintStatus.PRINTING:
            return False
        self._set(replace(doc, status=PrintStatus.PRINTING, error=None))
        self._tell(doc.id, "printing")
        self._printing = asyncio.get_running_loop().create_task(
            self._print(doc.id, self._printer, self._data)
        )
        return True

    async def _print(self, doc_id: str, printer: PrinterPort, data: bytes) -> None:
        error: str | None = None
        try:
            await printer.print_pdf(data, lambda step: None)
        except PrinterError as exc:
            log.warning("printing failed: %s (%s)", exc.code, exc)
            error = exc.code
        except Exception:
            log.exception("printing failed")
            error = "job_failed"
        self._on_printed(error)
        doc = self._state.document
        if doc is None or doc.id != doc_id:
            return
        if error is None:
            self._set(replace(doc, status=PrintStatus.PRINTED, printed=doc.printed + 1))
            self._tell(doc_id, "printed")
        else:
            self._set(replace(doc, status=PrintStatus.FAILED, error=error))
            self._tell(doc_id, "print_failed", error)

    def close(self) -> None:
        """« Fermer » (or the clerk withdrew it): the document goes, from the screen and from memory;
        a printing under way is cancelled (the printer's job too)."""
        doc = self._state.document
        if doc is None:
            return
        if self._printing is not None and not self._printing.done():
            self._printing.cancel()
        self._printing = None
        self._data = None
        self._set(None)
        self._tell(doc.id, "closed")

    async def end(self) -> None:
        """The session ends: every document is dropped, any reading or printing stopped, and the
        renderer's temporary files removed."""
        tasks = [
            t for t in (self._printing, self._incoming.task if self._incoming else None) if t is not None
        ]
        incoming = self._incoming
        self._drop_incoming()
        self.close()
        if incoming is not None:
            self._tell(incoming.id, "closed")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._link = None
        await asyncio.to_thread(self._renderer.wipe)


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
