"""The engine-side probes of the reset check: open device files, the outbox's inventory, and the
out-of-service state and waiting reports in the local cache."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from kiosk_client.adapters.device_files import open_device_files
from kiosk_client.adapters.local_cache import FileCache
from kiosk_client.core.reset_check import OutOfService

from .test_outbox import manifest, outbox


def test_an_open_device_file_is_found_and_a_closed_one_is_not(tmp_path: Path) -> None:
    assert open_device_files() == []  # this process holds no camera or sound device (CI has none)
    device = tmp_path / "video0"
    device.write_bytes(b"")
    prefix = str(tmp_path / "video")
    with open(device, "rb"):
        assert open_device_files((prefix,)) == [str(device)]
    assert open_device_files((prefix,)) == []


def test_the_outbox_inventory_tells_sealed_documents_from_anything_else(tmp_path: Path) -> None:
    box = outbox(tmp_path)
    kept = manifest()
    box.put("a1", kept, b"%PDF-1.4 letter")
    (tmp_path / "letter.pdf").write_bytes(b"%PDF plaintext")  # planted
    forged = tmp_path / (secrets.token_hex(16) + ".doc")
    forged.write_bytes(b"KOB1" + os.urandom(64))  # looks like one, does not authenticate
    found = {entry.name: entry for entry in box.inventory()}
    assert found[kept.id + ".doc"].sealed and found[kept.id + ".doc"].appointment_id == "a1"
    assert not found["letter.pdf"].sealed and not found[forged.name].sealed


def test_the_out_of_service_state_and_waiting_reports_survive_a_restart(tmp_path: Path) -> None:
    cache = FileCache(tmp_path)
    assert cache.load_out_of_service() is None and cache.load_pending_reports() == []
    state = OutOfService(12.5, "a1", ("web_storage",))
    cache.save_out_of_service(state)
    cache.save_pending_reports([{"report_id": "r1"}])
    again = FileCache(tmp_path)
    assert again.load_out_of_service() == state
    assert again.load_pending_reports() == [{"report_id": "r1"}]
    again.save_out_of_service(None)
    assert FileCache(tmp_path).load_out_of_service() is None


def test_an_unreadable_out_of_service_state_keeps_the_kiosk_out(tmp_path: Path) -> None:
    (tmp_path / "out-of-service.json").write_text("{not json")
    state = FileCache(tmp_path).load_out_of_service()
    assert state is not None and state.failed_checks == ("unreadable_state",)
