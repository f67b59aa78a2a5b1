"""The clerk's end of the documents channel, in Python (the clerk bot, the bench, the tests); the
clerk console does the same in JavaScript. Checks each manifest, reassembles the chunks in order,
checks the SHA-256 before it confirms, and keeps a partial document across a dropped call so the
kiosk can resume instead of starting over."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core import document_protocol as dp
from ..core.document_protocol import Manifest
from .print_sender import PrintSender

log = logging.getLogger(__name__)

PROGRESS_EVERY = 256 * 1024


@dataclass
class Incoming:
    manifest: Manifest
    data: bytearray = field(default_factory=bytearray)
    chunks: int = 0


class DocumentReceiver:
    def __init__(
        self,
        send_text: Callable[[str], None],
        on_document: Callable[[Manifest, bytes], None],
        accept: Callable[[Manifest], bool] = lambda manifest: True,
    ) -> None:
        self.send_text = send_text  # replaced when the call is rebuilt
        self._on_document = on_document
        self._accept = accept
        self.incoming: dict[str, Incoming] = {}
        self.received: dict[str, bytes] = {}
        self.errors: list[str] = []  # what the kiosk reported (doc.error) or what we refused
        self.bytes_received = 0  # chunk payload over the whole run, resends included
        self.printing = PrintSender()  # the other way on the same channel: documents to print

    def _send(self, message: dict[str, object]) -> None:
        self.send_text(dp.encode(message))

    def request(self, label: str) -> None:
        self._send({"type": "doc.request", "label": label})

    def on_message(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            self._on_chunk(raw)
            return
        try:
            message = dp.parse_object(raw)
            if message["type"] == "doc.offer":
                self._on_offer(dp.manifest_of(message))
                return
        except dp.DocumentProtocolError as exc:
            self.errors.append(exc.code)
            log.warning("documents: refused a kiosk message (%s): %s", exc.code, exc.message)
            return
        kind = message["type"]
        if kind.startswith("print."):
            self.printing.on_message(message)
        elif kind == "doc.end" and isinstance(message.get("id"), str):
            self._on_end(message["id"])
        elif kind == "doc.error":
            self.errors.append(str(message.get("code")))

    def _on_offer(self, manifest: Manifest) -> None:
        if manifest.id in self.received:  # our receipt was lost with the call: all is here
            self._send({"type": "doc.accept", "id": manifest.id, "offset": manifest.size})
            return
        if not self._accept(manifest):
            self._send({"type": "doc.reject", "id": manifest.id, "reason": "refused"})
            return
        incoming = self.incoming.get(manifest.id)
        if incoming is None or incoming.manifest != manifest:
            incoming = self.incoming[manifest.id] = Incoming(manifest)
        self._send({"type": "doc.accept", "id": manifest.id, "offset": len(incoming.data)})

    def _on_chunk(self, raw: bytes) -> None:
        try:
            doc_id, offset, payload = dp.parse_chunk(raw)
        except dp.DocumentProtocolError as exc:
            self.errors.append(exc.code)
            return
        incoming = self.incoming.get(doc_id)
        if incoming is None or offset != len(incoming.data):
            self.errors.append("out_of_order")  # never stitched in: the receipt would not match
            return
        if offset + len(payload) > incoming.manifest.size:
            self.errors.append("too_large")
            self.incoming.pop(doc_id)
            self._send({"type": "doc.reject", "id": doc_id, "reason": "too_large"})
            return
        before = len(incoming.data)
        incoming.data += payload
        incoming.chunks += 1
        self.bytes_received += len(payload)
        if before // PROGRESS_EVERY != len(incoming.data) // PROGRESS_EVERY:
            self._send({"type": "doc.progress", "id": doc_id, "offset": len(incoming.data)})

    def _on_end(self, doc_id: str) -> None:
        if doc_id in self.received:
            self._send(
                {
                    "type": "doc.receipt",
                    "id": doc_id,
                    "sha256": hashlib.sha256(self.received[doc_id]).hexdigest(),
                }
            )
            return
        incoming = self.incoming.get(doc_id)
        if incoming is None:
            return
        data = bytes(incoming.data)
        digest = hashlib.sha256(data).hexdigest()
        if len(data) != incoming.manifest.size or digest != incoming.manifest.sha256:
            self.incoming.pop(doc_id)
            self.errors.append("hash_mismatch")
            self._send({"type": "doc.reject", "id": doc_id, "reason": "hash_mismatch"})
            return
        self.incoming.pop(doc_id)
        self.received[doc_id] = data
        self._on_document(incoming.manifest, data)
        self._send({"type": "doc.receipt", "id": doc_id, "sha256": digest})
