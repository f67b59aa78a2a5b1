"""Sending the session's documents to the clerk on the documents channel, and resuming after a drop.

One transfer per document, one at a time, in the order they were made. A document is offered with
its manifest; it is sent once the clerk accepts, from the offset the clerk names (0, or what it
already holds after a dropped call); chunks are paced on the channel's buffered amount so the call's
media never starve; it is deleted from the outbox only when the clerk's receipt names the SHA-256 the
kiosk announced. A channel that closes stops the sending; the next channel (the rebuilt call) offers
again whatever is not confirmed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from . import document_protocol as dp
from .document_protocol import Manifest

log = logging.getLogger(__name__)

HIGH_WATER = 1024 * 1024  # stop queueing chunks above this much unsent data
LOW_WATER = 256 * 1024  # and start again below this
LOGGED_REFUSALS_PER_CODE = 3
KINDS = {
    dp.DocAccept: "doc.accept",
    dp.DocProgress: "doc.progress",
    dp.DocReceipt: "doc.receipt",
    dp.DocReject: "doc.reject",
    dp.DocRequest: "doc.request",
}


class DocumentLink(Protocol):
    """The documents data channel of the current call."""

    def send_text(self, text: str) -> None: ...

    def send_bytes(self, data: bytes) -> None: ...

    def buffered_amount(self) -> int: ...

    async def drained(self, low: int) -> None:
        """Returns when no more than `low` bytes wait to be sent; raises ConnectionError if closed."""
        ...

    async def ready(self) -> None:
        """Returns when the next chunk may go: the call's pace for documents (their share of the
        uplink), so a letter never goes into the transport's buffer all at once."""
        ...

    def is_open(self) -> bool: ...


class DocumentSource(Protocol):
    """Where the session's documents wait (the encrypted outbox)."""

    def read(self, doc_id: str) -> bytes: ...

    def confirmed(self, doc_id: str) -> None:
        """The clerk holds it, checked: forget it."""
        ...


class TransferStatus(Enum):
    WAITING = "waiting"  # for a channel, or for the clerk to accept
    SENDING = "sending"
    CHECKING = "checking"  # all sent; the clerk is checking the SHA-256
    RECEIVED = "received"  # the clerk confirmed it
    REFUSED = "refused"  # the clerk refused it
    FAILED = "failed"  # cannot be sent (the file on disk is unreadable)


@dataclass(frozen=True, slots=True)
class Transfer:
    manifest: Manifest
    status: TransferStatus = TransferStatus.WAITING
    sent: int = 0  # bytes handed to the channel
    confirmed: int = 0  # bytes the clerk said it stored
    resumed_from: int = 0  # the offset the latest sending started at
    detail: str = ""

    @property
    def done(self) -> bool:
        return self.status in (TransferStatus.RECEIVED, TransferStatus.REFUSED, TransferStatus.FAILED)


class DocumentTransfers:
    def __init__(
        self,
        source: DocumentSource,
        on_change: Callable[[tuple[Transfer, ...]], None],
        on_request: Callable[[str], None],
    ) -> None:
        self._source = source
        self._on_change = on_change
        self._on_request = on_request
        self._transfers: dict[str, Transfer] = {}
        self._link: DocumentLink | None = None
        self._accepted: dict[str, asyncio.Future[int]] = {}
        self._sender: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.bytes_sent = 0  # over the session, resends included (for tests and the bench)
        self.refused: Counter[str] = Counter()  # clerk messages refused, by code

    @property
    def transfers(self) -> tuple[Transfer, ...]:
        return tuple(self._transfers.values())

    def _set(self, transfer: Transfer) -> None:
        self._transfers[transfer.manifest.id] = transfer
        self._on_change(self.transfers)

    def add(self, manifest: Manifest) -> None:
        """A document now in the outbox, to be sent as soon as a channel is there."""
        if manifest.id not in self._transfers:
            self._set(Transfer(manifest))
            self._wake.set()

    def attach(self, link: DocumentLink) -> None:
        """A documents channel opened (the call started or was rebuilt)."""
        self._link = link
        for doc_id, transfer in list(self._transfers.items()):
            if not transfer.done and transfer.status is not TransferStatus.WAITING:
                self._set(replace(transfer, status=TransferStatus.WAITING))
            self._accepted.pop(doc_id, None)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_all())
        self._wake.set()

    def detach(self, link: DocumentLink | None = None) -> None:
        """The channel closed (`link`, if given: a late close of an older call's channel is ignored):
        sending stops; what is not confirmed waits for the next channel."""
        if link is not None and link is not self._link:
            return
        self._link = None
        for future in self._accepted.values():
            if not future.done():
                future.set_exception(ConnectionError("the documents channel closed"))
        self._accepted.clear()
        self._wake.set()

    async def close(self) -> None:
        self.detach()
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)

    def on_message(self, raw: str | bytes) -> None:
        """A message from the clerk; anything malformed is answered with doc.error and ignored, and
        nothing in its handling may raise into the channel (it would end the call)."""
        try:
            self._on_message(raw)
        except Exception:
            log.exception("documents: a clerk message could not be handled")
            self._refuse("internal_error", "the kiosk could not handle this message")

    def _refuse(self, code: str, message: str, about: dict[str, str] | None = None) -> None:
        """Answers doc.error; `about` names the refused message's type and document, when known, so
        that the clerk's app can tell which of its messages was refused."""
        self.refused[code] += 1
        if self.refused[code] <= LOGGED_REFUSALS_PER_CODE:  # a flood must not flood the log too
            log.warning("documents: refused a clerk message (%s): %s", code, message)
        self._send({"type": "doc.error", "code": code, "message": message[:300], **(about or {})})

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = dp.parse_clerk_message(raw)
        except dp.DocumentProtocolError as exc:
            self._refuse(exc.code, exc.message, dp.what_it_was(raw))
            return
        if isinstance(message, dp.DocRequest):
            self._on_request(message.label)
            return
        transfer = self._transfers.get(message.id)
        if transfer is None:
            self._refuse(
                "unknown_document", "no such document", {"refused": KINDS[type(message)], "id": message.id}
            )
            return
        if isinstance(message, dp.DocAccept):
            if message.offset > transfer.manifest.size:
                self._refuse(
                    "bad_offset", "offset beyond the document", {"refused": "doc.accept", "id": message.id}
                )
                return
            future = self._accepted.get(message.id)
            if future is not None and not future.done():
                future.set_result(message.offset)
        elif isinstance(message, dp.DocProgress):
            if transfer.confirmed <= message.offset <= transfer.sent:
                self._set(replace(transfer, confirmed=message.offset))
        elif isinstance(message, dp.DocReceipt):
            if transfer.status is not TransferStatus.CHECKING:
                return
            if message.sha256 != transfer.manifest.sha256:
                # The clerk's copy is not ours: send it again, whole.
                log.warning("documents: %s arrived damaged at the clerk; sending it again", message.id)
                self._set(replace(transfer, status=TransferStatus.WAITING, confirmed=0, detail="resend"))
                self._offer_again(message.id)
                return
            self._source.confirmed(message.id)
            self._set(replace(transfer, status=TransferStatus.RECEIVED, confirmed=transfer.manifest.size))
            self._wake.set()
        elif isinstance(message, dp.DocReject):
            if message.reason == "hash_mismatch" and transfer.status is TransferStatus.CHECKING:
                self._set(replace(transfer, status=TransferStatus.WAITING, confirmed=0, detail="resend"))
                self._offer_again(message.id)
                return
            self._set(replace(transfer, status=TransferStatus.REFUSED, detail=message.reason))
            future = self._accepted.get(message.id)
            if future is not None and not future.done():
                future.set_exception(LookupError(message.reason))
            self._wake.set()

    def _offer_again(self, doc_id: str) -> None:
        self._accepted.pop(doc_id, None)
        self._wake.set()

    def _send(self, message: dict[str, object]) -> None:
        link = self._link
        if link is not None and link.is_open():
            link.send_text(dp.encode(message))

    def _next(self) -> Transfer | None:
        return next(
            (t for t in self._transfers.values() if t.status is TransferStatus.WAITING),
            None,
        )

    async def _send_all(self) -> None:
        while True:
            transfer = self._next()
            link = self._link
            if transfer is None or link is None or not link.is_open():
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._send_one(transfer, link)
            except LookupError:
                continue  # the clerk refused it (already marked): on to the next one
            except ConnectionError as exc:
                log.info("documents: %s paused (%s)", transfer.manifest.id, exc)
                if self._link is link:
                    self._link = None  # wait for the next channel
            except Exception:
                log.exception("documents: sending %s failed", transfer.manifest.id)
                current = self._transfers[transfer.manifest.id]
                self._set(replace(current, status=TransferStatus.FAILED, detail="unreadable"))

    async def _send_one(self, transfer: Transfer, link: DocumentLink) -> None:
        manifest = transfer.manifest
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._accepted[manifest.id] = future
        link.send_text(dp.offer(manifest))
        offset = await future
        data = await asyncio.to_thread(self._source.read, manifest.id)  # file read + decryption
        current = self._transfers[manifest.id]
        self._set(
            replace(
                current, status=TransferStatus.SENDING, sent=offset, confirmed=offset, resumed_from=offset
            )
        )
        position = offset
        while position < len(data):
            if not link.is_open():
                raise ConnectionError("the documents channel closed")
            if self._transfers[manifest.id].status is TransferStatus.REFUSED:
                raise LookupError("refused by the clerk while it was being sent")
            if link.buffered_amount() > HIGH_WATER:
                await link.drained(LOW_WATER)
                continue
            await link.ready()
            piece = data[position : position + dp.MAX_CHUNK]
            link.send_bytes(dp.chunk(manifest.id, position, piece))
            position += len(piece)
            self.bytes_sent += len(piece)
            if position % (16 * dp.MAX_CHUNK) == 0 or position == len(data):
                self._set(replace(self._transfers[manifest.id], sent=position))
                await asyncio.sleep(0)  # let the call's own traffic through
        if self._transfers[manifest.id].status is TransferStatus.REFUSED:
            raise LookupError("refused by the clerk while it was being sent")
        link.send_text(dp.encode({"type": "doc.end", "id": manifest.id}))
        self._set(replace(self._transfers[manifest.id], status=TransferStatus.CHECKING, sent=len(data)))
        self._accepted.pop(manifest.id, None)
        # The receipt (or a reject) arrives through on_message; the next document starts meanwhile.
