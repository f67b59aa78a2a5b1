"""End to end on loopback: a real kiosk engine (aiortc, httpx) meets the clerk bot, the citizen rates
the session with one touch and the clerk rates it too; the council's export (JSON and CSV) counts
the session, its length, both ratings, and the appointment nobody came to as a no-show."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kiosk_client.core.session import Phase
from kiosk_client.runtime import LoopThread
from kiosk_client.tools.clerk_bot import ClerkBot

from .conftest import Site
from .kiosk_rig import Recorder, enrolled_token, make_engine, wait_until

pytestmark = pytest.mark.e2e


def test_a_session_and_its_ratings_show_in_the_councils_export(site: Site, tmp_path: Path) -> None:
    token = enrolled_token(site.url, site.enrollment_code)
    site.appointment_in(-3600, minutes=20)  # over an hour ago, never called: a no-show
    appointment = site.appointment_in(1)
    appointment_id = str(appointment["id"])
    kiosk_loop, bot_loop = LoopThread("engine"), LoopThread("bot")
    kiosk_loop.start()
    bot_loop.start()
    recorder = Recorder()
    engine = make_engine(site.url, token, tmp_path, recorder)
    # The question stays long enough for this test's touch; the thanks go quickly.
    engine._local_timing = replace(
        engine._local_timing, rating_for=timedelta(seconds=20), rating_thanks=timedelta(seconds=0.2)
    )
    kiosk_loop.submit(engine.run())
    bot = ClerkBot(site.url, site.clerk.token, hold_s=1.0, answer_at_start=False)
    try:
        start = datetime.fromisoformat(str(appointment["start"]))
        served = bot_loop.submit(bot.serve_appointment(appointment_id, start)).result(timeout=30)
        assert served.video_frames > 0  # the clerk saw the citizen
        wait_until(lambda: engine.session.phase is Phase.ENDED, 10)
        kiosk_loop.submit(engine.rate_session(5)).result(timeout=5)  # the citizen's one touch
        bot_loop.submit(bot.rate_session(appointment_id, 4, "=Usager satisfait")).result(timeout=5)
        wait_until(
            lambda: any(r["appointment_id"] == appointment_id for r in site.admin.session_reports()), 20
        )

        [row] = site.admin.usage()["rows"]
        assert (row["site"], row["service"]) == ("France Services de Test", "CAF")
        assert row["appointments"] == 2 and row["sessions"] == 1 and row["no_shows"] == 1
        [record] = recorder.records()
        assert record.first_answer_at is not None and record.connections == 1
        assert 0 < row["duration_total_seconds"] == row["duration_mean_seconds"] < 60
        assert row["calls_failed"] == row["calls_dropped"] == row["reset_checks_failed"] == 0
        assert row["citizen_ratings"]["faces"]["5"] == 1 and row["citizen_ratings"]["mean"] == 5.0
        assert row["clerk_ratings"]["faces"]["4"] == 1 and row["clerk_ratings"]["mean"] == 4.0
        assert [r["remark"] for r in row["clerk_remarks"]] == ["=Usager satisfait"]
        # Nothing that names anyone: no appointment, kiosk, clerk or citizen in the export.
        assert appointment_id not in str(row) and site.kiosk_id not in str(row) and "Martin" not in str(row)

        header, line = list(csv.reader(io.StringIO(site.admin.usage("csv"))))
        cells = dict(zip(header, line, strict=True))
        assert cells["sessions"] == "1" and cells["no_shows"] == "1"
        assert (
            cells["citizen_face_5"] == "1" and cells["clerk_face_4"] == "1" and cells["clerk_mean"] == "4.0"
        )
    finally:
        bot_loop.submit(bot.aclose()).result(timeout=5)
        kiosk_loop.stop()
        bot_loop.stop()
