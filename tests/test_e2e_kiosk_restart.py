"""A kiosk killed (`kill -9`) during a call comes back by itself, as systemd restarts it: the same
appointment, a new call the clerk answers, and the documents its outbox still held reach the clerk.
Also `kiosk-client bench recovery`, short."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk_client.adapters.central_http import enroll
from kiosk_client.adapters.outbox import EncryptedOutbox
from kiosk_client.central.admin import CentralAdmin
from kiosk_client.core.document_protocol import Manifest
from kiosk_client.tools.bench_recovery import Supervisor, _clerk, _media_after, _steady, bench_recovery
from kiosk_client.tools.central_process import CentralProcess
from kiosk_client.tools.clerk_bot import ClerkBot
from kiosk_client.tools.recovery_kiosk import OUTBOX_KEY_ENV
from kiosk_client.tools.sane_test_scanner import sane_test_folder

from .kiosk_rig import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.long]


async def test_a_killed_kiosk_rejoins_the_appointment_and_its_outbox_carries_on(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    with CentralProcess(tmp_path / "central.db") as central:
        admin = CentralAdmin(central.url, central.admin_token)
        admin.configure(join_before_seconds=3, poll_interval_seconds=1, no_show_after_seconds=600)
        kiosk_id = admin.create_kiosk("Kiosk", "Site")
        clerk = admin.create_clerk("Clerk", "CAF")
        start = datetime.now(UTC) + timedelta(seconds=2)
        appointment = str(admin.create_appointment(kiosk_id, clerk, "CAF", start, timedelta(hours=1))["id"])
        token = (await enroll(central.url, admin.enrollment_code(kiosk_id))).device_token
        admin.close()
        bot = ClerkBot(central.url, clerk.token, hold_s=3600)
        supervisor = Supervisor(
            central.url,
            token,
            tmp_path,
            restart_s=3.0,  # time to leave a document in the outbox while the kiosk is down
            extra_env={OUTBOX_KEY_ENV: key.hex(), "SANE_CONFIG_DIR": str(sane_test_folder(tmp_path))},
        )
        answering = asyncio.create_task(_clerk(bot, appointment, start))
        try:
            supervisor.start()
            assert await _steady(bot, 1.0, 90), (tmp_path / "kiosk.log").read_text(errors="replace")[-3000:]
            first_call = bot.reports[-1].call_id
            killed_at = supervisor.signal(signal.SIGKILL)
            await wait_for(lambda: bool(supervisor.exits), 10)
            # What the kiosk had sent but the clerk not yet confirmed when it died.
            data = b"%PDF-1.4 " + secrets.token_bytes(20_000)
            manifest = Manifest(
                secrets.token_hex(16),
                "Avis.pdf",
                "application/pdf",
                len(data),
                1,
                hashlib.sha256(data).hexdigest(),
            )
            outbox = EncryptedOutbox(tmp_path / "kiosk" / "outbox", key, reserve_bytes=0)
            await asyncio.to_thread(outbox.put, appointment, manifest, data)
            back = await _media_after(bot, killed_at, 60)
            assert back is not None, (tmp_path / "kiosk.log").read_text(errors="replace")[-3000:]
            call = next(r for r in bot.reports if r.first_video_at == back)
            assert call.appointment_id == appointment and call.call_id != first_call
            await wait_for(lambda: bool(bot.documents), 30)
            assert [(m.id, m.sha256) for m, _ in bot.documents] == [(manifest.id, manifest.sha256)]
            assert bot.documents[0][1] == data
            # Confirmed by the clerk: gone from the kiosk's disk.
            await wait_for(lambda: len(outbox) == 0, 30)
            assert len(supervisor.starts) == 2
        finally:
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
            supervisor.stop()
            await bot.aclose()


def test_bench_recovery_prints_every_figure() -> None:
    result = bench_recovery(runs=1)
    assert result["benchmark"] == "recovery" and result["failures"] == [], result
    for fault in ("kill9", "hung_qt", "hung_engine"):
        assert len(result[f"{fault}_to_media"]["samples_s"]) == 1, result
    for fault in ("hung_qt", "hung_engine"):
        assert len(result[f"{fault}_detected"]["samples_s"]) == 1, result
    assert len(result["renderer_to_form_back"]["samples_s"]) == 1, result  # the clerk was told
    assert result["kiosk_starts"] == 4 and result["watchdog_kills"] == 2
    assert isinstance(result["kill9_goal_met"], bool)
