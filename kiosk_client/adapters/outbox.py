"""The document outbox: each document waits on disk, encrypted, until the clerk's side confirms it.

One file per document: a plaintext header that says nothing about the citizen (id, appointment,
times), then AES-256-GCM over the manifest and the PDF, the header bound in as associated data so
a changed expiry is caught like a changed byte. The key lives in the OS keyring. Writes are atomic
(a temporary file, fsync, rename): a document is either whole on disk or absent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..core.document_desk import ExpiredDocument
from ..core.document_protocol import ID_RE, Manifest
from ..core.errors import OutboxCorrupt, OutboxError, OutboxFull
from ..core.reset_check import OutboxEntry

log = logging.getLogger(__name__)

MAGIC = b"KOB1"
SUFFIX = ".doc"
DEFAULT_RETENTION_S = 24 * 3600
DEFAULT_RESERVE = 64 * 1024 * 1024  # never fill the disk the kiosk itself needs


@dataclass(frozen=True, slots=True)
class StoredDocument:
    manifest: Manifest
    appointment_id: str
    created_at: float
    expires_at: float


class EncryptedOutbox:
    def __init__(
        self,
        folder: Path,
        key: bytes,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        reserve_bytes: int = DEFAULT_RESERVE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) != 32:
            raise OutboxError("the outbox key must be 32 bytes")
        self._folder = folder
        self._aead = AESGCM(key)
        self._retention_s = retention_s
        self._reserve = reserve_bytes
        self._clock = clock
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for leftover in folder.glob("*.tmp"):  # a write cut short by a crash or power loss
            leftover.unlink(missing_ok=True)

    def _path(self, doc_id: str) -> Path:
        if not ID_RE.fullmatch(doc_id):
            raise OutboxError("not a document id")
        return self._folder / (doc_id + SUFFIX)

    def put(self, appointment_id: str, manifest: Manifest, data: bytes) -> StoredDocument:
        now = self._clock()
        stored = StoredDocument(manifest, appointment_id, now, now + self._retention_s)
        header = json.dumps(
            {
                "id": manifest.id,
                "appointment_id": appointment_id,
                "created_at": stored.created_at,
                "expires_at": stored.expires_at,
            }
        ).encode()
        manifest_json = json.dumps(manifest.to_json()).encode()
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(
            nonce, len(manifest_json).to_bytes(4, "big") + manifest_json + data, header
        )
        blob = MAGIC + len(header).to_bytes(4, "big") + header + nonce + sealed
        free = shutil.disk_usage(self._folder).free
        if free - len(blob) < self._reserve:
            raise OutboxFull(f"only {free // (1024 * 1024)} MB free: the document cannot be kept")
        path = self._path(manifest.id)
        temporary = path.with_suffix(".tmp")
        try:
            with open(temporary, "xb") as file:
                file.write(blob)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            if exc.errno == 28:  # ENOSPC
                raise OutboxFull("the disk is full: the document cannot be kept") from None
            raise OutboxError(f"the document cannot be kept: {exc.strerror}") from None
        return stored

    def _read(self, path: Path) -> tuple[StoredDocument, bytes]:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise OutboxError(f"the document cannot be read: {exc.strerror}") from None
        try:
            if raw[:4] != MAGIC:
                raise ValueError("not an outbox file")
            length = int.from_bytes(raw[4:8], "big")
            header_raw = raw[8 : 8 + length]
            header = json.loads(header_raw)
            nonce = raw[8 + length : 20 + length]
            plain = self._aead.decrypt(nonce, raw[20 + length :], header_raw)
            manifest_length = int.from_bytes(plain[:4], "big")
            manifest = Manifest(**json.loads(plain[4 : 4 + manifest_length]))
            data = plain[4 + manifest_length :]
            stored = StoredDocument(
                manifest,
                str(header["appointment_id"]),
                float(header["created_at"]),
                float(header["expires_at"]),
            )
        except (InvalidTag, ValueError, KeyError, TypeError) as exc:
            raise OutboxCorrupt(f"{path.name} fails its check ({type(exc).__name__})") from None
        return stored, data

    def get(self, doc_id: str) -> tuple[StoredDocument, bytes]:
        return self._read(self._path(doc_id))

    def read(self, doc_id: str) -> bytes:
        return self.get(doc_id)[1]

    def pending_manifests(self, appointment_id: str) -> list[Manifest]:
        return [stored.manifest for stored in self.pending(appointment_id)]

    def pending(self, appointment_id: str | None = None) -> list[StoredDocument]:
        """Documents waiting, oldest first (those of one appointment if given); corrupt ones are
        reported in the log and left for the sweep."""
        found = []
        for path in sorted(self._folder.glob("*" + SUFFIX)):
            if appointment_id is not None and _appointment_in_header(path) not in (None, appointment_id):
                continue  # another appointment's: not worth decrypting (called as a call starts)
            try:
                stored, _ = self._read(path)
            except OutboxError as exc:
                log.error("outbox: %s", exc)
                continue
            if appointment_id is None or stored.appointment_id == appointment_id:
                found.append(stored)
        return sorted(found, key=lambda s: s.created_at)

    def remove(self, doc_id: str) -> bool:
        """Deletes a document (confirmed by the clerk, or given up); True if it was there."""
        path = self._path(doc_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def sweep(self) -> list[StoredDocument | str]:
        """Destroys documents past their retention, and files that fail their check; returns what was
        destroyed (the document, or the file name of an unreadable one) so the central can be told."""
        now = self._clock()
        destroyed: list[StoredDocument | str] = []
        for path in sorted(self._folder.glob("*" + SUFFIX)):
            try:
                stored, _ = self._read(path)
            except OutboxCorrupt:
                if _removed(path):
                    destroyed.append(path.name)
                continue
            except OutboxError:
                continue
            if stored.expires_at <= now and _removed(path):
                destroyed.append(stored)
        return destroyed

    def expire(self) -> list[ExpiredDocument]:
        out = []
        for gone in self.sweep():
            if isinstance(gone, str):
                out.append(ExpiredDocument(gone.removesuffix(SUFFIX)[:32], None, None, "unreadable"))
            else:
                out.append(
                    ExpiredDocument(gone.manifest.id, gone.appointment_id, gone.manifest.sha256, "retention")
                )
        return out

    def inventory(self) -> list[OutboxEntry]:
        """Every file in the folder: a document is `sealed` only if it decrypts and authenticates
        under the kiosk's key; anything else (a temporary, a stray or planted file) is not."""
        found = []
        for path in sorted(self._folder.iterdir()):
            if path.suffix != SUFFIX or not path.is_file():
                found.append(OutboxEntry(path.name, sealed=False))
                continue
            try:
                stored, _ = self._read(path)
            except OutboxError:
                found.append(OutboxEntry(path.name, sealed=False))
                continue
            found.append(
                OutboxEntry(path.name, True, stored.manifest.id, stored.appointment_id, stored.expires_at)
            )
        return found

    def __len__(self) -> int:
        return sum(1 for _ in self._folder.glob("*" + SUFFIX))


def _removed(path: Path) -> bool:
    """True if this call removed the file. Two sweeps can run at once (the engine's round and the
    reset check's): only the one that removed a document reports it, so the central hears once."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _appointment_in_header(path: Path) -> str | None:
    """The appointment a file's plaintext header names, None if it cannot be read. Unauthenticated,
    so only ever used to pass a file over: whatever is used from a file is checked by _read."""
    try:
        with open(path, "rb") as file:
            start = file.read(8)
            if start[:4] != MAGIC:
                return None
            header = json.loads(file.read(int.from_bytes(start[4:8], "big")))
        return str(header["appointment_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
