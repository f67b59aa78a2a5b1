"""The encrypted outbox: a document is whole on disk or absent, unreadable without the key,
deleted once confirmed, destroyed after its retention."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from kiosk_client.adapters.outbox import EncryptedOutbox
from kiosk_client.core.document_protocol import Manifest
from kiosk_client.core.errors import OutboxCorrupt, OutboxFull

PDF = b"%PDF-1.4\n" + b"Madame Elodie Muller, 12 rue de l'Eglise " * 200


def manifest(data: bytes = PDF) -> Manifest:
    return Manifest(
        secrets.token_hex(16),
        "Justificatif.pdf",
        "application/pdf",
        len(data),
        1,
        hashlib.sha256(data).hexdigest(),
    )


def outbox(folder: Path, key: bytes | None = None, **kwargs: object) -> EncryptedOutbox:
    return EncryptedOutbox(folder, key or b"k" * 32, reserve_bytes=0, **kwargs)  # type: ignore[arg-type]


def test_a_document_is_kept_encrypted_and_given_back_whole(tmp_path: Path) -> None:
    box = outbox(tmp_path)
    m = manifest()
    box.put("appt-1", m, PDF)
    (file,) = tmp_path.iterdir()
    on_disk = file.read_bytes()
    assert b"Elodie" not in on_disk and b"Justificatif" not in on_disk and b"%PDF" not in on_disk
    stored, data = box.get(m.id)
    assert data == PDF and stored.manifest == m and stored.appointment_id == "appt-1"
    assert [s.manifest.id for s in box.pending("appt-1")] == [m.id]
    assert box.pending("appt-2") == []


def test_confirmed_documents_are_deleted(tmp_path: Path) -> None:
    box = outbox(tmp_path)
    m = manifest()
    box.put("appt-1", m, PDF)
    assert box.remove(m.id) and len(box) == 0 and not list(tmp_path.iterdir())
    assert not box.remove(m.id)


def test_another_key_or_a_changed_byte_is_caught(tmp_path: Path) -> None:
    m = manifest()
    outbox(tmp_path).put("appt-1", m, PDF)
    with pytest.raises(OutboxCorrupt):
        outbox(tmp_path, key=b"x" * 32).get(m.id)
    path = tmp_path / f"{m.id}.doc"
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(OutboxCorrupt):
        outbox(tmp_path).get(m.id)


def test_a_pushed_back_expiry_is_caught_too(tmp_path: Path) -> None:
    m = manifest()
    outbox(tmp_path).put("appt-1", m, PDF)
    path = tmp_path / f"{m.id}.doc"
    path.write_bytes(path.read_bytes().replace(b'"expires_at": ', b'"expires_at": 9', 1))
    with pytest.raises(OutboxCorrupt):
        outbox(tmp_path).get(m.id)


def test_documents_past_their_retention_are_destroyed_and_reported(tmp_path: Path) -> None:
    now = [1000.0]
    box = outbox(tmp_path, retention_s=3600, clock=lambda: now[0])
    old, new = manifest(), manifest()
    box.put("appt-1", old, PDF)
    now[0] += 1800
    box.put("appt-2", new, PDF)
    now[0] += 1801
    destroyed = box.sweep()
    assert [d.manifest.id for d in destroyed if not isinstance(d, str)] == [old.id]
    assert [s.manifest.id for s in box.pending()] == [new.id]


def test_a_disk_without_room_keeps_nothing(tmp_path: Path) -> None:
    box = EncryptedOutbox(tmp_path, b"k" * 32, reserve_bytes=10**15)  # more than any disk has free
    with pytest.raises(OutboxFull):
        box.put("appt-1", manifest(), PDF)
    assert not list(tmp_path.iterdir())


def test_a_write_cut_short_leaves_no_partial_file(tmp_path: Path) -> None:
    (tmp_path / f"{secrets.token_hex(16)}.tmp").write_bytes(b"half a document")  # power cut mid-write
    box = outbox(tmp_path)
    assert not list(tmp_path.glob("*.tmp")) and len(box) == 0
