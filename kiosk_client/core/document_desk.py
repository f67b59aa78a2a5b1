"""The session's papers: scanning, the pages the citizen checks, the document sent to the clerk.

One desk per session. Pages live in memory only; a document, once the citizen sends it, waits in the
encrypted outbox until the clerk confirms it (document_transfer). At the end of the session the pages
are dropped and the transfers stop; documents not confirmed stay in the outbox for their retention
(a rejoin of the same appointment resumes them), refused ones are deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .document_protocol import Manifest
from .document_transfer import DocumentLink, DocumentTransfers, Transfer, TransferStatus
from .errors import NoScanner, OutboxError, OutboxFull, ScannerError
from .reset_check import OutboxEntry
from .scanning import PageProcessor, ProcessedPage, RawPage, ScannerPort, ScanRequest, ScanSource

log = logging.getLogger(__name__)

MAX_PAGES = 30  # per document: a kiosk session is not an archive run
DEFAULT_NAME = "Document"


@dataclass(frozen=True, slots=True)
class ExpiredDocument:
    """A document destroyed unconfirmed (past its retention, or unreadable): what the central is told.
    Nothing about its content but its hash."""

    document_id: str
    appointment_id: str | None
    sha256: str | None
    reason: str  # "retention" or "unreadable"


class DocumentStore(Protocol):
    """The encrypted outbox, as the desk sees it."""

    def expire(self) -> list[ExpiredDocument]:
        """Destroys what is past its retention or unreadable; returns what went."""
        ...

    def put(self, appointment_id: str, manifest: Manifest, data: bytes) -> object: ...

    def read(self, doc_id: str) -> bytes: ...

    def remove(self, doc_id: str) -> bool: ...

    def pending_manifests(self, appointment_id: str) -> list[Manifest]: ...

    def inventory(self) -> list[OutboxEntry]:
        """Every file in the outbox, for the reset check (nothing of any document's content)."""
        ...


@dataclass(frozen=True, slots=True)
class DocumentPorts:
    """What a kiosk with a scanner gives the engine."""

    scanner: ScannerPort
    processor: PageProcessor
    store: DocumentStore
    camera: ScannerPort | None = None  # pages held up to the camera, when there is no scanner
    dpi: int = 300
    sweep_every_s: float = 600.0  # how often documents past their retention are looked for


@dataclass(frozen=True, slots=True)
class PagePreview:
    number: int  # 1-based position
    preview: bytes  # JPEG
    encoding: str


@dataclass(frozen=True, slots=True)
class DocumentsState:
    scanner: str = "idle"  # idle, scanning
    scan_source: str = ""  # what the current or last scan used: flatbed, feeder, duplex, camera
    scan_error: str | None = None  # a ScannerError code, or "too_many_pages"
    blank_pages_dropped: int = 0  # by the last scan
    pages: tuple[PagePreview, ...] = ()
    requested: str | None = None  # what the clerk asked for
    store_error: str | None = None  # "outbox_full", "outbox_failed"
    transfers: tuple[Transfer, ...] = ()


class DocumentDesk:
    def __init__(
        self,
        appointment_id: str,
        scanner: ScannerPort,
        processor: PageProcessor,
        store: DocumentStore,
        on_change: Callable[[DocumentsState], None],
        on_document: Callable[[str, bytes], None] = lambda name, data: None,
        *,
        dpi: int = 300,
        camera: ScannerPort | None = None,
    ) -> None:
        self._appointment_id = appointment_id
        self._scanner = scanner
        self._camera = camera
        self._processor = processor
        self._store = store
        self._on_change = on_change
        self._on_document = on_document  # the form view's file chooser offers what is sent
        self._dpi = dpi
        self._pages: list[ProcessedPage] = []
        self._state = DocumentsState()
        self._scan_task: asyncio.Task[None] | None = None
        self._transfers = DocumentTransfers(_StoreSource(store), self._transfers_changed, self._requested)
        for manifest in store.pending_manifests(appointment_id):  # a rejoin after a crash or drop
            self._transfers.add(manifest)

    @property
    def state(self) -> DocumentsState:
        return self._state

    def _update(self, **changes: Any) -> None:
        self._state = replace(self._state, **changes)
        self._on_change(self._state)

    def _transfers_changed(self, transfers: tuple[Transfer, ...]) -> None:
        self._update(transfers=transfers)

    def _requested(self, label: str) -> None:
        log.info("the clerk asks for a document")
        self._update(requested=label)

    def _previews(self) -> tuple[PagePreview, ...]:
        return tuple(PagePreview(i + 1, p.preview, p.encoding) for i, p in enumerate(self._pages))

    # -- the channel

    def attach(self, link: DocumentLink) -> None:
        self._transfers.attach(link)

    def detach(self, link: DocumentLink | None = None) -> None:
        self._transfers.detach(link)

    def on_message(self, raw: str | bytes) -> None:
        self._transfers.on_message(raw)

    @property
    def refused(self) -> dict[str, int]:
        """The clerk's messages on the documents channel that were refused, by code."""
        return dict(self._transfers.refused)

    # -- what the citizen (or the animateur) does

    def scan(self, source: ScanSource = ScanSource.FLATBED, colour: bool = True) -> bool:
        """Starts a scan (pages are added as they come); False if one is already running."""
        if self._scan_task is not None and not self._scan_task.done():
            return False
        request = ScanRequest(source=source, dpi=self._dpi, colour=colour)
        self._update(scanner="scanning", scan_source=source.value, scan_error=None, blank_pages_dropped=0)
        self._scan_task = asyncio.get_running_loop().create_task(self._scan(request))
        return True

    async def _scan(self, request: ScanRequest) -> None:
        loop = asyncio.get_running_loop()
        processing: list[asyncio.Future[ProcessedPage | None]] = []

        def on_page(page: RawPage) -> None:
            processing.append(loop.run_in_executor(None, self._processor.process, page))

        error: str | None = None
        device = self._camera if request.source is ScanSource.CAMERA else self._scanner
        try:
            if device is None:
                raise NoScanner("no camera for pages on this kiosk")
            await device.scan(request, on_page)
        except ScannerError as exc:
            log.warning("scan stopped: %s (%s pages scanned)", exc.code, exc.pages_done)
            error = exc.code
        except Exception:
            log.exception("scan failed")
            error = "scanner_failed"
        blank = 0
        for future in processing:  # in scan order, whatever order they finish in
            try:
                page = await future
            except Exception:
                log.exception("a page could not be processed")
                error = error or "processing_failed"
                continue
            if page is None:
                blank += 1
            elif len(self._pages) < MAX_PAGES:
                self._pages.append(page)
            else:
                error = "too_many_pages"
        self._update(scanner="idle", scan_error=error, blank_pages_dropped=blank, pages=self._previews())

    def remove_page(self, number: int) -> None:
        if 1 <= number <= len(self._pages):
            del self._pages[number - 1]
            self._update(pages=self._previews())

    def clear_pages(self) -> None:
        self._pages.clear()
        self._update(pages=(), scan_error=None, blank_pages_dropped=0)

    async def send(self, name: str | None = None) -> Manifest | None:
        """Makes one PDF of the pages, keeps it in the outbox, and queues it for the clerk."""
        if not self._pages or self._state.scanner == "scanning":
            return None
        title = (name or self._state.requested or DEFAULT_NAME).strip()[:80] or DEFAULT_NAME
        pages = list(self._pages)
        data = await asyncio.get_running_loop().run_in_executor(None, self._processor.assemble, pages, title)
        manifest = Manifest(
            id=secrets.token_hex(16),
            name=_file_name(title),
            mime="application/pdf",
            size=len(data),
            pages=len(pages),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        try:  # encrypting and fsyncing megabytes: not on the loop that carries the call
            await asyncio.to_thread(self._store.put, self._appointment_id, manifest, data)
        except OutboxError as exc:
            log.error("the document cannot be kept: %s", exc)
            self._update(store_error="outbox_full" if isinstance(exc, OutboxFull) else "outbox_failed")
            return None  # the pages stay on screen: nothing is lost, nothing half-sent
        self._pages.clear()
        self._update(pages=(), store_error=None, requested=None)
        self._transfers.add(manifest)
        self._on_document(manifest.name, data)
        return manifest

    async def close(self) -> None:
        """The session ends: pages are dropped, sending stops, refused documents are deleted."""
        if self._scan_task is not None:
            self._scan_task.cancel()
            await asyncio.gather(self._scan_task, return_exceptions=True)
        await self._transfers.close()
        for transfer in self._transfers.transfers:
            if transfer.status is TransferStatus.REFUSED:
                self._store.remove(transfer.manifest.id)
        self._pages.clear()
        self._state = DocumentsState()

    def unconfirmed(self) -> list[Manifest]:
        return [
            t.manifest
            for t in self._transfers.transfers
            if t.status not in (TransferStatus.RECEIVED, TransferStatus.REFUSED)
        ]


class _StoreSource:
    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def read(self, doc_id: str) -> bytes:
        return self._store.read(doc_id)

    def confirmed(self, doc_id: str) -> None:
        self._store.remove(doc_id)


def _file_name(title: str) -> str:
    safe = "".join(c if c.isalnum() or c in " -_'()" else "_" for c in title).strip() or DEFAULT_NAME
    return safe[:100] + ".pdf"
