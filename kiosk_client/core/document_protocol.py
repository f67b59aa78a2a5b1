"""The document-transfer protocol on the "documents" data channel (ordered, reliable), version 1.

The channel is DTLS-encrypted peer to peer: neither the central nor a TURN relay can read it.

Kiosk → clerk (text, JSON): doc.offer (the manifest), doc.end, doc.error (a clerk message refused).
Kiosk → clerk (binary): chunks — 32 ASCII hex characters of the document id, an 8-byte big-endian
offset, then at most MAX_CHUNK bytes of the document.
Clerk → kiosk (text, JSON): doc.request (asks the citizen for a paper), doc.accept (send from
`offset`: 0, or what the clerk already holds after a dropped call), doc.progress (bytes the clerk has
stored), doc.receipt (the SHA-256 it computed; the kiosk deletes its copy only if it is the one it
announced), doc.reject (with a reason).

Every clerk message is checked here: unknown types or fields, wrong types, offsets beyond the
document, oversized messages are refused with a ProtocolViolation, and nothing else happens.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from . import bounded_json

VERSION = 1
MAX_MESSAGE_BYTES = 8 * 1024
MAX_CHUNK = 16 * 1024
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
MAX_PAGES = 200
MAX_NAME_CHARS = 120
MAX_LABEL_CHARS = 120
ID_RE = re.compile(r"[0-9a-f]{32}")  # fullmatch: "$" would let a trailing newline in
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MIME_TYPES = ("application/pdf",)
CLERK_TYPES = ("doc.request", "doc.accept", "doc.progress", "doc.receipt", "doc.reject")
REJECT_REASONS = ("refused", "hash_mismatch", "too_large", "malformed", "storage_failed")
CHUNK_HEADER = 32 + 8


class DocumentProtocolError(Exception):
    """A message that cannot be accepted. `code` is stable; the message says what was wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Manifest:
    id: str
    name: str
    mime: str
    size: int
    pages: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DocRequest:
    label: str  # what the clerk asks for, e.g. "justificatif de domicile"


@dataclass(frozen=True, slots=True)
class DocAccept:
    id: str
    offset: int


@dataclass(frozen=True, slots=True)
class DocProgress:
    id: str
    offset: int


@dataclass(frozen=True, slots=True)
class DocReceipt:
    id: str
    sha256: str


@dataclass(frozen=True, slots=True)
class DocReject:
    id: str
    reason: str


ClerkDocMessage = DocRequest | DocAccept | DocProgress | DocReceipt | DocReject


def parse_object(raw: str | bytes) -> dict[str, Any]:
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        raise DocumentProtocolError("too_large", f"message over {MAX_MESSAGE_BYTES} bytes")
    try:
        message = bounded_json.loads(raw)
    except bounded_json.UnsafeJson as exc:
        raise DocumentProtocolError("malformed", str(exc)) from None
    if not isinstance(message, dict):
        raise DocumentProtocolError("malformed", "not a JSON object")
    if type(message.get("v")) is not int or message["v"] != VERSION:  # not true, not 1.0
        raise DocumentProtocolError("unsupported_version", f"version must be {VERSION}")
    if not isinstance(message.get("type"), str):
        raise DocumentProtocolError("malformed", "type missing")
    return message


def _fields(message: dict[str, Any], *names: str) -> None:
    expected = {"v", "type", *names}
    extra = set(message) - expected
    missing = expected - set(message)
    if extra:
        raise DocumentProtocolError("malformed", f"unexpected field(s): {', '.join(sorted(extra))[:100]}")
    if missing:
        raise DocumentProtocolError("malformed", f"missing field(s): {', '.join(sorted(missing))}")


def _id(value: Any) -> str:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise DocumentProtocolError("malformed", "id must be 32 lowercase hex characters")
    return value


def _offset(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DOCUMENT_BYTES:
        raise DocumentProtocolError("malformed", "offset must be an integer within the document")
    return value


def _text(value: Any, limit: int, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise DocumentProtocolError("malformed", f"{what} must be a non-empty string of at most {limit}")
    if any(
        ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) <= 0xDFFF or c in "\u2028\u2029\u202e"
        for c in value
    ):
        raise DocumentProtocolError("malformed", f"{what} holds control characters")
    return value


def parse_clerk_message(raw: str | bytes) -> ClerkDocMessage:
    """A message from the clerk on the documents channel; DocumentProtocolError otherwise."""
    if isinstance(raw, bytes):
        raise DocumentProtocolError("malformed", "the clerk's messages are text frames, never binary")
    message = parse_object(raw)
    kind = message["type"]
    if kind == "doc.request":
        _fields(message, "label")
        return DocRequest(_text(message["label"], MAX_LABEL_CHARS, "label"))
    if kind in ("doc.accept", "doc.progress"):
        _fields(message, "id", "offset")
        cls = DocAccept if kind == "doc.accept" else DocProgress
        return cls(_id(message["id"]), _offset(message["offset"]))
    if kind == "doc.receipt":
        _fields(message, "id", "sha256")
        digest = message["sha256"]
        if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
            raise DocumentProtocolError("malformed", "sha256 must be 64 lowercase hex characters")
        return DocReceipt(_id(message["id"]), digest)
    if kind == "doc.reject":
        _fields(message, "id", "reason")
        if message["reason"] not in REJECT_REASONS:
            raise DocumentProtocolError("malformed", f"reason must be one of {', '.join(REJECT_REASONS)}")
        return DocReject(_id(message["id"]), str(message["reason"]))
    raise DocumentProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")


def what_it_was(raw: str | bytes) -> dict[str, str]:
    """For a refused message: its type and document id, when they can be read and are well formed
    (so that an error can name them without echoing anything else the clerk sent)."""
    if isinstance(raw, bytes) or len(raw) > MAX_MESSAGE_BYTES:
        return {}
    try:
        message = bounded_json.loads(raw)
    except bounded_json.UnsafeJson:
        return {}
    if not isinstance(message, dict):
        return {}
    about: dict[str, str] = {}
    if message.get("type") in CLERK_TYPES:
        about["refused"] = message["type"]
    if isinstance(message.get("id"), str) and ID_RE.fullmatch(message["id"]):
        about["id"] = message["id"]
    return about


def parse_manifest(raw: str | bytes) -> Manifest:
    """A doc.offer from the kiosk, as the clerk's side checks it before accepting anything."""
    return manifest_of(parse_object(raw))


def manifest_of(message: dict[str, Any]) -> Manifest:
    """The manifest of an already parsed doc.offer (see parse_object)."""
    if message["type"] != "doc.offer":
        raise DocumentProtocolError("unknown_type", "expected doc.offer")
    _fields(message, "doc")
    doc = message["doc"]
    if not isinstance(doc, dict) or set(doc) != {"id", "name", "mime", "size", "pages", "sha256"}:
        raise DocumentProtocolError("malformed", "doc must hold exactly id, name, mime, size, pages, sha256")
    size, pages, digest = doc["size"], doc["pages"], doc["sha256"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_DOCUMENT_BYTES:
        raise DocumentProtocolError("too_large", f"size must be within 1..{MAX_DOCUMENT_BYTES}")
    if isinstance(pages, bool) or not isinstance(pages, int) or not 0 < pages <= MAX_PAGES:
        raise DocumentProtocolError("malformed", f"pages must be within 1..{MAX_PAGES}")
    if doc["mime"] not in MIME_TYPES:
        raise DocumentProtocolError("malformed", "unsupported type")
    if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
        raise DocumentProtocolError("malformed", "sha256 must be 64 lowercase hex characters")
    name = _text(doc["name"], MAX_NAME_CHARS, "name")
    if "/" in name or "\\" in name:
        raise DocumentProtocolError("malformed", "name must not hold a path")
    return Manifest(_id(doc["id"]), name, doc["mime"], size, pages, digest)


def encode(message: dict[str, Any]) -> str:
    return json.dumps({"v": VERSION, **message}, ensure_ascii=False, separators=(",", ":"))


def offer(manifest: Manifest) -> str:
    return encode({"type": "doc.offer", "doc": manifest.to_json()})


def chunk(doc_id: str, offset: int, data: bytes) -> bytes:
    if len(data) > MAX_CHUNK:
        raise ValueError("chunk too large")
    return doc_id.encode("ascii") + offset.to_bytes(8, "big") + data


def parse_chunk(raw: bytes) -> tuple[str, int, bytes]:
    if len(raw) <= CHUNK_HEADER or len(raw) > CHUNK_HEADER + MAX_CHUNK:
        raise DocumentProtocolError("malformed", "chunk of impossible length")
    try:
        doc_id = _id(raw[:32].decode("ascii"))
    except UnicodeDecodeError:
        raise DocumentProtocolError("malformed", "chunk id is not ASCII") from None
    return doc_id, int.from_bytes(raw[32:CHUNK_HEADER], "big"), raw[CHUNK_HEADER:]
