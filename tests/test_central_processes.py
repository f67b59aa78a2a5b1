"""Several central processes on one PostgreSQL database (a real private server, tests/postgres_rig.py):
a long poll on one process wakes when the other process changes the call (LISTEN/NOTIFY); two
processes racing for one enrolment code, one walk-in code or one available clerk give it once;
`central --workers 2` serves one port from two processes; a database that goes down gets 503s and the
central recovers when it is back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import pytest

from kiosk_client.central.server import ADMIN_TOKEN_ENV, CentralThread
from kiosk_client.central.store import Store, utcnow
from kiosk_client.tools.central_process import CentralProcess
from kiosk_client.tools.postgres_server import PostgresServer

from .postgres_rig import new_database

V1 = "/api/v1"
HOUR = timedelta(hours=1)
OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\n"}


class Seeded:
    """A kiosk (enrolled: its device token), a clerk (their token) and an appointment under way."""

    def __init__(self, url: str) -> None:
        with closing(Store(url)) as store:
            self.kiosk_id = store.create_kiosk("Borne 1", "France Services de Test")
            code, _ = store.create_enrollment_code(self.kiosk_id, HOUR)
            redeemed = store.redeem_enrollment_code(code)
            assert redeemed is not None
            self.kiosk_token = redeemed[1]
            self.clerk_id, self.clerk_token = store.create_clerk("Mme Martin", "CAF")
            now = utcnow()
            self.appointment_id = store.create_appointment(
                self.kiosk_id, self.clerk_id, "CAF", now - HOUR, now + HOUR, [], None
            )

    def kiosk(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.kiosk_token}"}

    def clerk(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.clerk_token}"}


@pytest.fixture(scope="module")
def database() -> str:
    """One database for the module's tests (each seeds kiosks and clerks of its own)."""
    return new_database()


@pytest.fixture(scope="module")
def two(database: str) -> Iterator[tuple[CentralProcess, CentralProcess]]:
    """Two central processes on the one database, each on a port of its own."""
    with CentralProcess(database) as a, CentralProcess(database) as b:
        yield a, b


@pytest.mark.parametrize("offer_bytes", [40, 12_000], ids=["announced_with_the_call", "too_big_read_back"])
async def test_a_long_poll_on_one_process_wakes_when_the_other_changes_the_call(
    database: str, two: tuple[CentralProcess, CentralProcess], offer_bytes: int
) -> None:
    site = Seeded(database)
    offer = {"type": "offer", "sdp": OFFER["sdp"] + "a=x:" + "o" * offer_bytes + "\r\n"}
    a, b = two
    call = f"{V1}/appointments/{site.appointment_id}/call"
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as on_a, httpx.AsyncClient(base_url=b.url, timeout=30) as on_b:  # fmt: skip
        clerk_waits = asyncio.ensure_future(
            on_a.get(call, params={"after": 0, "wait": 20}, headers=site.clerk())
        )
        await asyncio.sleep(0.5)  # the clerk's long poll waits on process A
        assert not clerk_waits.done()
        offered = time.monotonic()
        put = await on_b.put(
            f"{V1}/appointments/{site.appointment_id}/offer", json=offer, headers=site.kiosk()
        )
        assert put.status_code == 201
        seen = await clerk_waits
        offer_to_clerk = time.monotonic() - offered
        assert seen.status_code == 200 and seen.json()["offer"]["sdp"] == offer["sdp"]
        # Tens of milliseconds; seconds on a busy CI machine; 20 s (the poll's timeout) with no relay.
        assert offer_to_clerk < 5.0, f"the offer reached the clerk after {offer_to_clerk:.2f} s"

        # And back: the kiosk waits on process B, the clerk answers on process A.
        version = put.json()["version"]
        kiosk_waits = asyncio.ensure_future(
            on_b.get(call, params={"after": version, "wait": 20}, headers=site.kiosk())
        )
        await asyncio.sleep(0.3)
        answered = time.monotonic()
        body = {**ANSWER, "call_id": put.json()["call_id"]}
        answer = await on_a.put(
            f"{V1}/appointments/{site.appointment_id}/answer", json=body, headers=site.clerk()
        )
        assert answer.status_code == 200
        got = await kiosk_waits
        assert got.status_code == 200 and got.json()["answer"]["sdp"] == ANSWER["sdp"]
        assert time.monotonic() - answered < 5.0
        # The answer is final across processes too: B refuses a second one.
        again = await on_b.put(
            f"{V1}/appointments/{site.appointment_id}/answer", json=body, headers=site.clerk()
        )
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_answered"


async def test_a_missed_notification_costs_the_long_poll_its_wait_not_the_news(
    database: str, two: tuple[CentralProcess, CentralProcess]
) -> None:
    """A change that no NOTIFY announces (its trigger off, as if the notification were lost): the long
    poll still ends at its own timeout, and with the change, not with "nothing new"."""
    import psycopg

    site = Seeded(database)
    call = f"{V1}/appointments/{site.appointment_id}/call"
    async with httpx.AsyncClient(base_url=two[0].url, timeout=30) as http:
        waits = asyncio.ensure_future(http.get(call, params={"after": 0, "wait": 3}, headers=site.clerk()))
        await asyncio.sleep(0.4)
        with psycopg.connect(database, autocommit=True) as quiet:
            quiet.execute("SET session_replication_role = replica")  # no trigger: no NOTIFY
            quiet.execute(
                "INSERT INTO calls(appointment_id, version, call_id, offer, ended, updated_at)"
                " VALUES (%s, 1, 'call_quiet', %s, 0, 'now')",
                (site.appointment_id, OFFER["sdp"]),
            )
        assert not waits.done()  # nothing woke it...
        seen = await waits  # ...until its timeout, when it looked again
        assert (
            seen.status_code == 200 and seen.json()["version"] == 1 and seen.json()["call_id"] == "call_quiet"
        )


async def test_two_processes_racing_for_one_enrolment_code_enrol_one_kiosk(
    database: str, two: tuple[CentralProcess, CentralProcess]
) -> None:
    with closing(Store(database)) as store:
        codes = [
            store.create_enrollment_code(store.create_kiosk(f"Borne {n}", "Site"), HOUR)[0] for n in range(2)
        ]
    async with httpx.AsyncClient(timeout=30) as http:
        for code in codes:  # two tries per process: under the five a minute one address may make
            answers = await asyncio.gather(
                *(http.post(f"{p.url}{V1}/enrollment", json={"code": code}) for p in two)
            )
            assert sorted(r.status_code for r in answers) == [201, 401], [r.text for r in answers]


async def test_two_processes_racing_for_one_walk_in_code_or_clerk_give_it_once(
    database: str, two: tuple[CentralProcess, CentralProcess]
) -> None:
    site = Seeded(database)
    with closing(Store(database)) as store:
        tokens = []
        for n in range(4):
            code, _ = store.create_enrollment_code(store.create_kiosk(f"Borne {n + 2}", "Site"), HOUR)
            redeemed = store.redeem_enrollment_code(code)
            assert redeemed is not None
            tokens.append(redeemed[1])
        walk_in_code, _ = store.create_walk_in_code(site.clerk_id, timedelta(minutes=5), 3)
    async with httpx.AsyncClient(timeout=30) as http:

        async def walk_in(body: dict[str, str]) -> list[int]:
            """Each kiosk asks at once, half of them on each process."""
            posts = [
                http.post(
                    f"{two[n % 2].url}{V1}/kiosk/walk-ins",
                    json=body,
                    headers={"Authorization": f"Bearer {t}"},
                )
                for n, t in enumerate(tokens)
            ]
            return sorted(r.status_code for r in await asyncio.gather(*posts))

        assert await walk_in({"code": walk_in_code}) == [201, 410, 410, 410]
        on = await http.put(
            f"{two[0].url}{V1}/clerk/walk-in-availability", json={"available": True}, headers=site.clerk()
        )
        assert on.status_code == 200 and on.json()["available"] is True
        assert await walk_in({"service": "CAF"}) == [201, 409, 409, 409]
        listed = await http.get(f"{two[1].url}{V1}/clerk/appointments", headers=site.clerk())
        assert sum(a["walk_in"] for a in listed.json()["appointments"]) == 2


def test_workers_share_one_port_and_stop_together(database: str) -> None:
    site = Seeded(database)
    with CentralProcess(database, workers=2) as central:
        parent = psutil.Process(central.pid)
        workers = parent.children()
        assert len(workers) == 1
        port = int(central.url.rsplit(":", 1)[1])
        for process in (parent, *workers):  # each listens on the port itself (SO_REUSEPORT)
            assert any(
                c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in process.net_connections()
            )
        # Fresh connections, spread by the kernel over both: every call set-up goes through.
        for _ in range(4):
            with httpx.Client(base_url=central.url, timeout=30) as kiosk_side:
                r = kiosk_side.get(f"{V1}/kiosk/schedule", headers=site.kiosk())
                assert r.status_code == 200 and r.json()["kiosk"]["id"] == site.kiosk_id
    workers[0].wait(10)  # its parent gone, the worker stops: nothing is left behind
    assert not workers[0].is_running()


def test_a_worker_that_dies_takes_the_central_down_for_its_supervisor_to_restart(database: str) -> None:
    central = CentralProcess(database, workers=2).start()
    try:
        parent = psutil.Process(central.pid)
        (worker,) = parent.children()
        worker.kill()
        assert parent.wait(15) == 1  # not serving on with one process fewer than asked for
    finally:
        central.stop()


def central_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk_client", "central", "--port", "0", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, ADMIN_TOKEN_ENV: "t" * 32},
    )


def test_a_bad_database_is_refused_clearly(tmp_path: Path) -> None:
    done = central_cli("--db", str(tmp_path / "c.db"), "--workers", "2")
    assert done.returncode == 2 and "--workers needs a PostgreSQL database" in done.stderr
    assert not (tmp_path / "c.db").exists()  # refused before anything was made
    done = central_cli("--db", "postgresql://[bad/x")
    assert (
        done.returncode == 2 and "is not a PostgreSQL URL" in done.stderr and "Traceback" not in done.stderr
    )
    done = central_cli("--db", f"postgresql:///central?host={tmp_path}&password=s3cret")  # no server there
    assert (
        done.returncode == 1 and "cannot reach PostgreSQL" in done.stderr and "Traceback" not in done.stderr
    )
    assert "s3cret" not in done.stderr


def test_a_database_that_goes_down_gets_503_and_the_central_recovers() -> None:
    with PostgresServer(durable=False) as pg:
        url = pg.create_database("central")
        site = Seeded(url)
        with CentralThread(url) as central, httpx.Client(base_url=central.url, timeout=30) as http:
            schedule = f"{V1}/kiosk/schedule"
            assert http.get(schedule, headers=site.kiosk()).status_code == 200
            pg.halt()
            down = http.get(schedule, headers=site.kiosk())
            assert down.status_code == 503 and down.json()["error"]["code"] == "unavailable"
            assert down.headers["Retry-After"] == "5"
            assert http.get(f"{V1}/health").status_code == 200  # what needs no database still answers
            pg.launch()
            back = http.get(schedule, headers=site.kiosk())
            assert back.status_code == 200 and back.json()["kiosk"]["id"] == site.kiosk_id


@pytest.mark.parametrize("sdp_bytes", [3_000, 12_000])
def test_a_change_is_announced_with_the_call_when_it_fits(database: str, sdp_bytes: int) -> None:
    """The announcement carries the call (the other processes' long polls answer without reading it
    back); a call too big for a notification is announced by its appointment id, to be read."""
    import psycopg

    site = Seeded(database)
    sdp = "v=0\r\n" + "a=x:" + "o" * sdp_bytes + "\r\n"
    with psycopg.connect(database, autocommit=True) as listener, closing(Store(database)) as store:
        listener.execute("LISTEN kiosk_call")
        written = store.post_offer(site.appointment_id, sdp)
        notes = [n.payload for n in listener.notifies(timeout=5.0, stop_after=1)]
        assert len(notes) == 1
        appointment_id, announced = store.call_change(notes[0])
        assert appointment_id == site.appointment_id
        if sdp_bytes < 7_000:
            assert announced == written  # every field, as written
        else:
            assert announced is None and notes[0] == site.appointment_id


async def test_the_listener_announces_at_once_and_listens_again_after_a_lost_connection(
    database: str,
) -> None:
    """What another process announces reaches the callback (no waiting for a poll); the listening
    connection killed, "" is announced once it listens again (every waiter looks again), and changes
    are heard again."""
    import psycopg

    site = Seeded(database)
    heard: list[str] = []
    news = asyncio.Event()

    def announce(announced: str) -> None:
        heard.append(announced)
        news.set()

    async def next_heard() -> str:
        await asyncio.wait_for(news.wait(), 10.0)
        news.clear()
        return heard.pop(0)

    with closing(Store(database)) as listening, closing(Store(database)) as other:
        listener = asyncio.ensure_future(listening.listen_for_calls(announce))
        try:
            assert await next_heard() == ""
            offered = other.post_offer(site.appointment_id, "v=0 offer")
            assert listening.call_change(await next_heard()) == (site.appointment_id, offered)
            with psycopg.connect(database, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname=current_database()"
                    " AND (query LIKE 'LISTEN%%' OR query = 'SELECT 1') AND pid <> pg_backend_pid()"
                ).fetchall()
            assert killed, "the listening connection was not found"
            assert await next_heard() == ""  # listening again: whatever changed meanwhile is looked at
            answered = other.post_answer(site.appointment_id, "v=0 answer")
            assert listening.call_change(await next_heard()) == (site.appointment_id, answered)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
