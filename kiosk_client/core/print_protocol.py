"""Printing what the clerk sends: the clerk → kiosk direction of the "documents" data channel.

The same channel (ordered, reliable, DTLS peer to peer) and the same chunk framing as the scanned
documents that go the other way (core/document_protocol.py), with its own message types so that
neither direction can be mistaken for the other.

Clerk → kiosk (text, JSON): print.offer (a PDF's manifest: id, name, size, sha256), print.end (all
chunks sent), print.cancel (the clerk withdraws it).
Clerk → kiosk (binary): chunks — 32 ASCII hex characters of the document id, an 8-byte big-endian
offset, then at most MAX_CHUNK bytes of the PDF, in order.
Kiosk → clerk (text, JSON): print.status (what became of a document: accepted, received, shown,
printing, printed, print_failed, refused, closed — with a reason code when refused or failed),
print.error (a message that could not be read at all).

Limits: one document at a time, at most MAX_DOCUMENT_BYTES and MAX_PAGES pages; it must really be a
PDF (checked by rendering it out of the kiosk's process, adapters/pdf_poppler.py). A hostile or
malformed message or file is refused with a code and changes nothing on the kiosk's screen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import bounded_json
from .document_protocol import CHUNK_HEADER, ID_RE, MAX_CHUNK, MAX_MESSAGE_BYTES, SHA256_RE, VERSION

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MAX_PAGES = 20
MAX_NAME_CHARS = 120
CLERK_TYPES = ("print.offer", "print.end", "print.cancel")
STATES = (
    "accepted",  # the kiosk waits for the chunks
    "received",  # whole, its SHA-256 checked; being read
    "shown",  # on the citizen's screen (`pages`)
    "printing",  # the citizen touched « Imprimer »
    "printed",  # the printer says the job completed
    "print_failed",  # with `reason`: no_printer, printer_offline, out_of_paper, paper_jam, ...
    "refused",  # with `reason`: too_large, busy, malformed, hash_mismatch, not_pdf, too_many_pages, ...
    "closed",  # gone from the kiosk (the citizen closed it, the clerk withdrew it, the session ended)
)
REFUSALS = (
    "too_large",
    "busy",
    "malformed",
    "hash_mismatch",
    "not_pdf",
    "too_many_pages",
    "encrypted",
    "unreadable",
)


# print.status's reasons for print_failed (core/printing.py PrinterError codes).
PRINT_FAILURES = (
    "no_printer",
    "printer_offline",
    "out_of_paper",
    "paper_jam",
    "out_of_ink",
    "cover_open",
    "printer_stopped",
    "format_unsupported",
    "job_failed",
    "print_timeout",
)
# print.error's codes.
ERROR_CODES = (
    "too_large",
    "malformed",
    "unsupported_version",
    "unknown_type",
    "unknown_document",
    "busy",
    "internal_error",
)


class PrintProtocolError(Exception):
    """A message that cannot be accepted. `code` is stable; the message says what was wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class PrintOffer:
    id: str
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class PrintEnd:
    id: str


@dataclass(frozen=True, slots=True)
class PrintCancel:
    id: str


@dataclass(frozen=True, slots=True)
class PrintChunk:
    id: str
    offset: int
    data: bytes

    def __repr__(self) -> str:
        return f"PrintChunk({self.id}, {self.offset}, {len(self.data)} bytes)"


ClerkPrintMessage = PrintOffer | PrintEnd | PrintCancel | PrintChunk


def is_print_message(raw: str | bytes) -> bool:
    """Whether a message on the documents channel belongs to printing: every binary frame from the
    clerk does (chunks go only this way), and text whose type starts with "print.". Anything else is
    the scanned documents' (document_transfer answers it, or refuses it as before)."""
    if isinstance(raw, bytes):
        return True
    if len(raw) > MAX_MESSAGE_BYTES * 4:
        return False
    try:
        message = bounded_json.loads(raw)
    except bounded_json.UnsafeJson:
        return False
    return isinstance(message, dict) and str(message.get("type", "")).startswith("print.")


def _fields(message: dict[str, Any], *names: str) -> None:
    expected = {"v", "type", *names}
    extra, missing = set(message) - expected, expected - set(message)
    if extra:
        raise PrintProtocolError("malformed", f"unexpected field(s): {', '.join(sorted(extra))[:100]}")
    if missing:
        raise PrintProtocolError("malformed", f"missing field(s): {', '.join(sorted(missing))}")


def _id(value: Any) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise PrintProtocolError("malformed", "id must be 32 lowercase hex characters")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
        raise PrintProtocolError("malformed", f"name must be a non-empty string of at most {MAX_NAME_CHARS}")
    if any(
        ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) <= 0xDFFF or c in "\u2028\u2029\u202e"
        for c in value
    ):
        raise PrintProtocolError("malformed", "name holds control characters")
    if "/" in value or "\\" in value:
        raise PrintProtocolError("malformed", "name must not hold a path")
    return value


def parse_clerk_message(raw: str | bytes) -> ClerkPrintMessage:
    """A printing message from the clerk; PrintProtocolError otherwise."""
    if isinstance(raw, bytes):
        return parse_chunk(raw)
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise PrintProtocolError("too_large", f"message over {MAX_MESSAGE_BYTES} bytes")
    try:
        message = bounded_json.loads(raw)
    except bounded_json.UnsafeJson as exc:
        raise PrintProtocolError("malformed", str(exc)) from None
    if not isinstance(message, dict):
        raise PrintProtocolError("malformed", "not a JSON object")
    if type(message.get("v")) is not int or message["v"] != VERSION:
        raise PrintProtocolError("unsupported_version", f"version must be {VERSION}")
    kind = message.get("type")
    if kind == "print.offer":
        _fields(message, "doc")
        doc = message["doc"]
        if not isinstance(doc, dict) or set(doc) != {"id", "name", "size", "sha256"}:
            raise PrintProtocolError("malformed", "doc must hold exactly id, name, size, sha256")
        size, digest = doc["size"], doc["sha256"]
        # Within bounds, but maybe over MAX_DOCUMENT_BYTES: the desk refuses that one by its id.
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size < 2**53:
            raise PrintProtocolError("malformed", "size must be a positive integer")
        if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
            raise PrintProtocolError("malformed", "sha256 must be 64 lowercase hex characters")
        return PrintOffer(_id(doc["id"]), _name(doc["name"]), size, digest)
    if kind in ("print.end", "print.cancel"):
        _fields(message, "id")
        return (PrintEnd if kind == "print.end" else PrintCancel)(_id(message["id"]))
    raise PrintProtocolError("unknown_type", f"unknown message type {str(kind)[:40]!r}")


def parse_chunk(raw: bytes) -> PrintChunk:
    if len(raw) <= CHUNK_HEADER or len(raw) > CHUNK_HEADER + MAX_CHUNK:
        raise PrintProtocolError("malformed", "chunk of impossible length")
    try:
        doc_id = _id(raw[:32].decode("ascii"))
    except UnicodeDecodeError:
        raise PrintProtocolError("malformed", "chunk id is not ASCII") from None
    return PrintChunk(doc_id, int.from_bytes(raw[32:CHUNK_HEADER], "big"), raw[CHUNK_HEADER:])


def status(doc_id: str, state: str, reason: str | None = None, pages: int | None = None) -> str:
    if state not in STATES:
        raise ValueError(f"unknown print state {state!r}")
    message: dict[str, Any] = {"v": VERSION, "type": "print.status", "id": doc_id, "state": state}
    if reason is not None:
        message["reason"] = reason
    if pages is not None:
        message["pages"] = pages
    return json.dumps(message, separators=(",", ":"))


def error(code: str, message: str) -> str:
    return json.dumps(
        {"v": VERSION, "type": "print.error", "code": code, "message": message[:300]}, separators=(",", ":")
    )


# What a clerk app sends (tools, tests): the same layout as the kiosk's own chunks.
def offer(doc_id: str, name: str, size: int, sha256: str) -> str:
    doc = {"id": doc_id, "name": name, "size": size, "sha256": sha256}
    return json.dumps({"v": VERSION, "type": "print.offer", "doc": doc}, ensure_ascii=False)


def end(doc_id: str) -> str:
    return json.dumps({"v": VERSION, "type": "print.end", "id": doc_id})


def cancel(doc_id: str) -> str:
    return json.dumps({"v": VERSION, "type": "print.cancel", "id": doc_id})


def chunk(doc_id: str, offset: int, data: bytes) -> bytes:
    if len(data) > MAX_CHUNK:
        raise ValueError("chunk too large")
    return doc_id.encode("ascii") + offset.to_bytes(8, "big") + data
