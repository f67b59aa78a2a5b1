"""`kiosk-client bench central`: the reference central under a fleet's load.

Every kiosk polls its schedule (with its ETag, so mostly 304) and sends a heartbeat every
`poll_interval_s`, spread evenly; a third of the way in, `calls` call set-ups start at once: each
clerk waits on its call (long poll), its kiosk puts an offer, the clerk answers, and the kiosk's own
long poll returns the answer. Figures: the latency of a schedule poll and of a heartbeat as a kiosk
sees it, and the time from the clerk sending an answer to its kiosk holding it.

Two configurations, the same load: SQLite with one central process (the embedded default), then
PostgreSQL (a private server started for the run, tools/postgres_server.py) with `workers` central
processes sharing one port (`central --workers N`), whose long polls are woken across processes by
LISTEN/NOTIFY.

The fleet is written into the database before the central starts (the central rightly allows five
enrolments a minute from one address; the bench measures steady running, not enrolment). The fleet's
polls come from this process over loopback; the call set-ups from `call_processes` processes of their
own (one Python process sending and timing 300 set-ups at once measured itself, not the central). All
share this machine's cores with the central (and PostgreSQL): the figures are an upper bound on what
the central alone would take. So the load is sent lean (tools/lean_http.py, on uvloop): with aiohttp's
client it took as much CPU per request as the central did to answer, half the machine during the
burst of set-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from json import dumps, loads
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil

from ..central.store import Store, utcnow
from ..runtime import uvloop_factory
from .central_process import CentralProcess
from .lean_http import HttpError, LeanClient
from .link_emulator import percentiles
from .postgres_server import PostgresServer

log = logging.getLogger(__name__)

# Issue 13's goals at 3,000 kiosks.
GOAL_POLL_P95_MS = 100.0
GOAL_ANSWER_P95_MS = 300.0
LONG_POLL_S = 20.0
# An offer of a real call's size (aiortc's, two video tracks, audio and data: ≈ 4 KB).
OFFER = "v=0\r\n" + "a=x-bench:" + "o" * 4000 + "\r\n"
ANSWER = "v=0\r\n" + "a=x-bench:" + "a" * 3000 + "\r\n"


@dataclass
class Fleet:
    kiosk_tokens: list[str]
    # (appointment id, its kiosk's token, its clerk's token) for the call set-ups.
    calls: list[tuple[str, str, str]]


def seed_fleet(db: Path | str, kiosks: int, calls: int) -> Fleet:
    """Kiosks enrolled (with device tokens), one clerk per call and an appointment under way for each,
    in a SQLite file or a PostgreSQL database (its URL)."""
    store = Store(db)
    try:
        tokens: list[str] = []
        ids: list[str] = []
        for n in range(kiosks):
            kiosk_id = store.create_kiosk(f"Borne {n + 1}", f"France Services {n // 3 + 1}")
            code, _ = store.create_enrollment_code(kiosk_id, timedelta(hours=1))
            redeemed = store.redeem_enrollment_code(code)
            assert redeemed is not None
            ids.append(kiosk_id)
            tokens.append(redeemed[1])
        now = utcnow()
        appointments = []
        for n in range(min(calls, kiosks)):
            clerk_id, clerk_token = store.create_clerk(f"Conseiller {n + 1}", "caf")
            appointment_id = store.create_appointment(
                ids[n], clerk_id, "caf", now - timedelta(minutes=1), now + timedelta(hours=1), [], None
            )
            appointments.append((appointment_id, tokens[n], clerk_token))
        return Fleet(tokens, appointments)
    finally:
        store.close()


@dataclass
class Samples:
    poll: list[float] = field(default_factory=list)
    heartbeat: list[float] = field(default_factory=list)
    answer_to_kiosk: list[float] = field(default_factory=list)
    offer_to_clerk: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


class Load:
    def __init__(self, url: str, fleet: Fleet, interval_s: float, samples: Samples) -> None:
        self._api = "/api/v1"
        self._fleet = fleet
        self._interval = interval_s
        self._s = samples

    async def _timed(
        self,
        http: LeanClient,
        method: str,
        path: str,
        token: str,
        into: list[float] | None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any, str]:
        target = self._api + path + ("?" + urlencode(params) if params else "")
        body = b"" if json is None else dumps(json).encode()
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        if json is not None:
            sent["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(LONG_POLL_S + 15):
                response = await http.request(method, target, sent, body)
            got = loads(response.body) if response.status in (200, 201) else None
            if into is not None:
                into.append(time.perf_counter() - started)
            self._s.statuses[f"{method} {path.split('/')[1]} {response.status}"] += 1
            return response.status, got, response.headers.get("etag", "")
        except (HttpError, OSError, TimeoutError, ValueError) as exc:
            self._s.errors[f"{method} {path.split('/')[1]}: {type(exc).__name__}"] += 1
            return 0, None, ""

    async def kiosk(self, http: LeanClient, token: str, offset_s: float, until: float) -> None:
        etag = ""
        await asyncio.sleep(offset_s)
        while time.monotonic() < until:
            began = time.monotonic()
            headers = {"If-None-Match": etag} if etag else {}
            status, _, new_etag = await self._timed(
                http, "GET", "/kiosk/schedule", token, self._s.poll, headers=headers
            )
            if status == 200:
                etag = new_etag
            await self._timed(
                http,
                "POST",
                "/kiosk/heartbeat",
                token,
                self._s.heartbeat,
                json={
                    "state": "waiting",
                    "devices": {"camera": "ok", "scanner": "ok"},
                    "software_version": "bench",
                },
            )
            # Not past the run's end: the figures cover `duration_s`, and the run lasts no longer.
            await asyncio.sleep(
                max(0.0, min(self._interval - (time.monotonic() - began), until - time.monotonic()))
            )

    async def warm(self, http: LeanClient, connections: int) -> None:
        """Opens `connections` kept-alive connections: a clerk's console is already waiting on its call
        and a kiosk has just fetched its config when the offer goes, each over its own connection.
        Opening hundreds at once from this one process would measure this process, not the central."""
        await http.warm(connections)

    async def call(
        self, http: LeanClient, appointment_id: str, kiosk: str, clerk: str, go: asyncio.Event
    ) -> None:
        path = f"/appointments/{appointment_id}/call"
        clerk_waits = asyncio.ensure_future(
            self._timed(http, "GET", path, clerk, None, params={"after": "0", "wait": str(LONG_POLL_S)})
        )
        await go.wait()  # every clerk waits on its call, then the kiosks all offer at once
        offered = time.perf_counter()
        status, ticket, _ = await self._timed(
            http,
            "PUT",
            f"/appointments/{appointment_id}/offer",
            kiosk,
            None,
            json={"type": "offer", "sdp": OFFER},
        )
        if status != 201 or ticket is None:
            clerk_waits.cancel()
            return
        kiosk_waits = asyncio.ensure_future(
            self._timed(
                http,
                "GET",
                path,
                kiosk,
                None,
                params={"after": str(ticket["version"]), "wait": str(LONG_POLL_S)},
            )
        )
        status, seen, _ = await clerk_waits
        if status != 200 or seen is None or seen.get("offer") is None:
            self._s.errors["the clerk's long poll returned no offer"] += 1
            kiosk_waits.cancel()
            return
        self._s.offer_to_clerk.append(time.perf_counter() - offered)
        answered = time.perf_counter()
        status, _, _ = await self._timed(
            http,
            "PUT",
            f"/appointments/{appointment_id}/answer",
            clerk,
            None,
            json={"type": "answer", "sdp": ANSWER, "call_id": seen["call_id"]},
        )
        status, got, _ = await kiosk_waits
        if status == 200 and got is not None and got.get("answer"):
            self._s.answer_to_kiosk.append(time.perf_counter() - answered)
        else:
            self._s.errors["the kiosk's long poll returned no answer"] += 1


def _call_process(url: str, calls: list[tuple[str, str, str]], interval_s: float, pipe: Connection) -> None:
    """A process of its own sending and timing its share of the call set-ups: it warms its connections
    and starts its clerks' long polls when told "ready", then sets up its calls at "go"."""
    logging.basicConfig(level=logging.WARNING)
    samples = Samples()

    async def run() -> float:
        load = Load(url, Fleet([], calls), interval_s, samples)
        loop = asyncio.get_running_loop()
        http = LeanClient(url)
        try:
            await loop.run_in_executor(None, pipe.recv)  # "ready"
            cpu = time.process_time()
            await load.warm(http, 3 * len(calls))
            go = asyncio.Event()
            set_ups = asyncio.gather(*(load.call(http, *c, go) for c in calls))
            await asyncio.sleep(0.2)  # the clerks' long polls are on their way
            pipe.send("ready")
            await loop.run_in_executor(None, pipe.recv)  # "go"
            go.set()
            await set_ups
            return time.process_time() - cpu
        finally:
            await http.close()

    cpu = asyncio.run(run(), loop_factory=uvloop_factory())
    pipe.send(
        {
            "answer_to_kiosk": samples.answer_to_kiosk,
            "offer_to_clerk": samples.offer_to_clerk,
            "statuses": dict(samples.statuses),
            "errors": dict(samples.errors),
            "cpu": cpu,
        }
    )
    pipe.close()


@contextlib.contextmanager
def call_processes(url: str, fleet: Fleet, interval_s: float, count: int) -> Iterator[list[Connection]]:
    """`count` processes (spawned: nothing of this one's loop or connections is inherited), the calls
    dealt among them; their pipes."""
    context = multiprocessing.get_context("spawn")
    shares = [fleet.calls[n::count] for n in range(count)]
    pipes: list[Connection] = []
    processes = []
    try:
        for share in shares:
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_call_process, args=(url, share, interval_s, theirs), name="bench-calls", daemon=True
            )
            process.start()
            theirs.close()
            pipes.append(ours)
            processes.append(process)
        yield pipes
    finally:
        for process in processes:
            process.join(LONG_POLL_S + 30)
            if process.is_alive():
                process.kill()
                process.join()


async def _drive(
    url: str, fleet: Fleet, interval_s: float, duration_s: float, processes: int
) -> tuple[Samples, float]:
    samples = Samples()
    load = Load(url, fleet, interval_s, samples)
    loop = asyncio.get_running_loop()

    async def each(pipes: list[Connection], message: str | None) -> list[Any]:
        if message is not None:
            for pipe in pipes:
                pipe.send(message)
        return list(await asyncio.gather(*(loop.run_in_executor(None, pipe.recv) for pipe in pipes)))

    with call_processes(url, fleet, interval_s, processes if fleet.calls else 0) as pipes:
        http = LeanClient(url)
        try:
            until = time.monotonic() + duration_s
            count = len(fleet.kiosk_tokens)
            cpu, calls_cpu = time.process_time(), 0.0
            kiosks = [
                asyncio.ensure_future(load.kiosk(http, token, interval_s * n / count, until))
                for n, token in enumerate(fleet.kiosk_tokens)
            ]
            await asyncio.sleep(min(duration_s / 3, interval_s))
            await each(pipes, "ready")  # every clerk waits on its call...
            await asyncio.sleep(1.0)  # ...its long poll at the central
            for report in await each(pipes, "go"):  # then the kiosks all offer at once
                samples.answer_to_kiosk += report["answer_to_kiosk"]
                samples.offer_to_clerk += report["offer_to_clerk"]
                samples.statuses.update(report["statuses"])
                samples.errors.update(report["errors"])
                calls_cpu += report["cpu"]
            await asyncio.gather(*kiosks)
            return samples, time.process_time() - cpu + calls_cpu
        finally:
            await http.close()


def _tree_cpu(pid: int | None) -> float:
    """CPU seconds used so far by a process and its children (a central and its workers, PostgreSQL
    and its backends)."""
    if pid is None:
        return 0.0
    total = 0.0
    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(pid)
        for process in (parent, *parent.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
    return total


def run_configuration(
    kiosks: int,
    calls: int,
    interval_s: float,
    duration_s: float,
    store: str = "sqlite",
    workers: int = 1,
    call_processes: int = 2,
) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-central-")))
        database: Path | str = folder / "central.db"
        pg: PostgresServer | None = None
        if store == "postgresql":
            pg = stack.enter_context(PostgresServer())
            database = pg.create_database("central")
        seeded = time.monotonic()
        fleet = seed_fleet(database, kiosks, calls)
        seed_s = time.monotonic() - seeded
        central = stack.enter_context(CentralProcess(database, workers=workers))
        pg_pid = pg.pid if pg is not None else None
        central_before, db_before = _tree_cpu(central.pid), _tree_cpu(pg_pid)
        samples, load_cpu = asyncio.run(
            _drive(central.url, fleet, interval_s, duration_s, call_processes),
            loop_factory=uvloop_factory(),
        )
        central_cpu = _tree_cpu(central.pid) - central_before
        db_cpu = _tree_cpu(pg_pid) - db_before
    poll = percentiles(samples.poll)
    answer = percentiles(samples.answer_to_kiosk)
    return {
        "store": store,
        "processes": workers,
        "seed_s": round(seed_s, 1),
        "polls": len(samples.poll),
        "poll_ms": poll,
        "heartbeat_ms": percentiles(samples.heartbeat),
        "calls": len(samples.answer_to_kiosk),
        "answer_to_kiosk_ms": answer,
        "offer_to_clerk_ms": percentiles(samples.offer_to_clerk),
        "requests_per_s": round((len(samples.poll) + len(samples.heartbeat)) / duration_s, 1),
        # Shares of one core over the run: the central's processes, PostgreSQL's, the load's.
        "central_cpu_share": round(central_cpu / duration_s, 3),
        "database_cpu_share": round(db_cpu / duration_s, 3) if pg_pid is not None else None,
        "load_cpu_share": round(load_cpu / duration_s, 3),
        "statuses": dict(sorted(samples.statuses.items())),
        "errors": dict(samples.errors),
        "goals_met": poll["p95"] <= GOAL_POLL_P95_MS
        and answer["p95"] <= GOAL_ANSWER_P95_MS
        and len(samples.answer_to_kiosk) == min(calls, kiosks)
        and not samples.errors,
    }


def bench_central(
    kiosks: int = 3000,
    calls: int = 300,
    interval_s: float = 30.0,
    duration_s: float = 90.0,
    workers: int = 2,
    call_processes: int = 2,
) -> dict[str, Any]:
    """Both configurations in turn, under the same load: SQLite with one process, PostgreSQL with
    `workers` processes."""
    if kiosks < 1 or calls < 0 or interval_s <= 0 or duration_s <= 0:
        raise ValueError("kiosks >= 1, calls >= 0, interval and duration > 0")
    if workers < 1 or call_processes < 1:
        raise ValueError("workers >= 1 and call processes >= 1")
    return {
        "kiosks": kiosks,
        "calls": calls,
        "poll_interval_s": interval_s,
        "duration_s": duration_s,
        "call_processes": call_processes,
        "goals": {"poll_p95_ms": GOAL_POLL_P95_MS, "answer_to_kiosk_p95_ms": GOAL_ANSWER_P95_MS},
        "configurations": [
            run_configuration(kiosks, calls, interval_s, duration_s, "sqlite", 1, call_processes),
            run_configuration(kiosks, calls, interval_s, duration_s, "postgresql", workers, call_processes),
        ],
    }
