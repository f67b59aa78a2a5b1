"""SQLite persistence for the reference central. Tokens are stored as SHA-256 hashes only."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .commands import SCREENSHOTS_KEPT_PER_KIOSK

SCHEMA = """
CREATE TABLE IF NOT EXISTS kiosks (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, site_name TEXT NOT NULL, token_hash TEXT UNIQUE,
    last_seen TEXT, last_state TEXT, last_appointment TEXT, last_devices TEXT, software_version TEXT,
    last_preflight TEXT
);
CREATE TABLE IF NOT EXISTS enrollment_codes (
    code_hash TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL REFERENCES kiosks(id), expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clerks (
    id TEXT PRIMARY KEY, display_name TEXT NOT NULL, service TEXT NOT NULL, token_hash TEXT UNIQUE NOT NULL
);
CREATE TABLE IF NOT EXISTS appointments (
    id TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL REFERENCES kiosks(id), clerk_id TEXT NOT NULL REFERENCES clerks(id),
    service TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL, allowed_origins TEXT NOT NULL, start_url TEXT,
    citizen_name TEXT, walk_in INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS walk_in_codes (
    code_hash TEXT PRIMARY KEY, clerk_id TEXT NOT NULL REFERENCES clerks(id), created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, used_at TEXT, kiosk_id TEXT REFERENCES kiosks(id), appointment_id TEXT
);
CREATE TABLE IF NOT EXISTS walk_in_availability (
    clerk_id TEXT PRIMARY KEY REFERENCES clerks(id), service TEXT NOT NULL, since TEXT NOT NULL,
    expires_at TEXT NOT NULL, ended TEXT, appointment_id TEXT
);
CREATE TABLE IF NOT EXISTS calls (
    appointment_id TEXT PRIMARY KEY REFERENCES appointments(id), version INTEGER NOT NULL, call_id TEXT,
    offer TEXT, answer TEXT, ended INTEGER NOT NULL DEFAULT 0, ended_by TEXT, reason TEXT, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS expired_documents (
    kiosk_id TEXT NOT NULL REFERENCES kiosks(id), document_id TEXT NOT NULL, appointment_id TEXT,
    sha256 TEXT, reason TEXT NOT NULL, reported_at TEXT NOT NULL, PRIMARY KEY (kiosk_id, document_id)
);
CREATE TABLE IF NOT EXISTS session_reports (
    kiosk_id TEXT NOT NULL REFERENCES kiosks(id), report_id TEXT NOT NULL, appointment_id TEXT,
    trigger TEXT NOT NULL, passed INTEGER NOT NULL, document TEXT NOT NULL, reported_at TEXT NOT NULL,
    PRIMARY KEY (kiosk_id, report_id)
);
CREATE TABLE IF NOT EXISTS citizen_ratings (
    kiosk_id TEXT NOT NULL REFERENCES kiosks(id), service TEXT NOT NULL, day TEXT NOT NULL, rating TEXT NOT NULL,
    count INTEGER NOT NULL, PRIMARY KEY (kiosk_id, service, day, rating)
);
CREATE TABLE IF NOT EXISTS clerk_ratings (
    appointment_id TEXT PRIMARY KEY REFERENCES appointments(id), face INTEGER, remark TEXT, rated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kiosk_commands (
    id TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL REFERENCES kiosks(id), kind TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, delivered_at TEXT, finished_at TEXT
);
CREATE INDEX IF NOT EXISTS kiosk_commands_by_kiosk ON kiosk_commands (kiosk_id, state);
CREATE TABLE IF NOT EXISTS command_screenshots (
    command_id TEXT PRIMARY KEY REFERENCES kiosk_commands(id), kiosk_id TEXT NOT NULL REFERENCES kiosks(id),
    png_base64 TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, bytes INTEGER NOT NULL,
    taken_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bookings (
    source TEXT NOT NULL, external_id TEXT NOT NULL, appointment_id TEXT REFERENCES appointments(id),
    sequence INTEGER NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);
"""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CallRow:
    appointment_id: str
    version: int
    call_id: str | None
    offer: str | None
    answer: str | None
    ended: bool
    ended_by: str | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "call_id": self.call_id,
            "has_offer": self.offer is not None,
            "offer": {"type": "offer", "sdp": self.offer} if self.offer is not None else None,
            "has_answer": self.answer is not None,
            "answer": {"type": "answer", "sdp": self.answer} if self.answer is not None else None,
            "ended": self.ended,
            "ended_by": self.ended_by,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class BookedAppointment:
    """What a booking from a booking tool becomes here (see bookings.py for the mapping)."""

    kiosk_id: str
    clerk_id: str
    service: str
    start: datetime
    end: datetime
    citizen_name: str | None


class Store:
    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a power cut may lose the
            # last heartbeats, never the database. FULL made each of a fleet's heartbeats wait on the
            # disk, in the event loop (bench central: a third of the central's time at 3,000 kiosks).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
            # A database made before the citizen's display name existed: add the column (NULL, "not given").
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(appointments)")}
            if "citizen_name" not in columns:
                self._db.execute("ALTER TABLE appointments ADD COLUMN citizen_name TEXT")
            if "walk_in" not in columns:  # nor walk-in sessions: every appointment then was booked
                self._db.execute("ALTER TABLE appointments ADD COLUMN walk_in INTEGER NOT NULL DEFAULT 0")
            if "cancelled_at" not in columns:  # nor bookings cancelled in a booking tool (bookings.py)
                self._db.execute("ALTER TABLE appointments ADD COLUMN cancelled_at TEXT")
            # Likewise before kiosks reported their pre-flight.
            if "last_preflight" not in {row[1] for row in self._db.execute("PRAGMA table_info(kiosks)")}:
                self._db.execute("ALTER TABLE kiosks ADD COLUMN last_preflight TEXT")

    def close(self) -> None:
        self._db.close()

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def _exec(self, sql: str, *args: Any) -> None:
        with self._lock:
            self._db.execute(sql, args)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The lock held and one transaction: all of it is written, or none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- settings (the kiosk config served to every kiosk)
    def get_setting(self, key: str) -> Any:
        row = self._one("SELECT value FROM settings WHERE key=?", key)
        return json.loads(row["value"]) if row else None

    def put_setting(self, key: str, value: Any) -> None:
        self._exec("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", key, json.dumps(value))

    # --- kiosks and enrolment
    def create_kiosk(self, name: str, site_name: str) -> str:
        kiosk_id = new_id("kiosk")
        self._exec("INSERT INTO kiosks(id, name, site_name) VALUES (?, ?, ?)", kiosk_id, name, site_name)
        return kiosk_id

    def kiosk(self, kiosk_id: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM kiosks WHERE id=?", kiosk_id)

    def kiosks(self) -> list[sqlite3.Row]:
        return self._all("SELECT * FROM kiosks ORDER BY name")

    def create_enrollment_code(self, kiosk_id: str, valid_for: timedelta) -> tuple[str, datetime]:
        # Short, unambiguous, typed by IT staff on the kiosk: 4 groups of 4 from a no-lookalike alphabet.
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        code = "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
        expires = utcnow() + valid_for
        self._exec(
            "INSERT INTO enrollment_codes VALUES (?, ?, ?)", token_hash(code), kiosk_id, expires.isoformat()
        )
        return code, expires

    def redeem_enrollment_code(self, code: str) -> tuple[str, str] | None:
        """One-time: the code is deleted; the kiosk gets a new device token (any older one stops working)."""
        with self._lock:
            row = self._db.execute(
                "SELECT kiosk_id, expires_at FROM enrollment_codes WHERE code_hash=?",
                (token_hash(code.upper()),),
            ).fetchone()
            if row is None:
                return None
            self._db.execute("DELETE FROM enrollment_codes WHERE code_hash=?", (token_hash(code.upper()),))
            if datetime.fromisoformat(row["expires_at"]) < utcnow():
                return None
            token = secrets.token_urlsafe(32)
            self._db.execute(
                "UPDATE kiosks SET token_hash=? WHERE id=?", (token_hash(token), row["kiosk_id"])
            )
            return row["kiosk_id"], token

    def kiosk_by_token(self, token: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM kiosks WHERE token_hash=?", token_hash(token))

    def record_heartbeat(
        self,
        kiosk_id: str,
        state: str,
        appointment_id: str | None,
        devices: dict[str, str],
        version: str,
        preflight: dict[str, Any] | None = None,
    ) -> None:
        self._exec(
            "UPDATE kiosks SET last_seen=?, last_state=?, last_appointment=?, last_devices=?, software_version=?,"
            " last_preflight=COALESCE(?, last_preflight) WHERE id=?",
            utcnow().isoformat(), state, appointment_id, json.dumps(devices), version,
            json.dumps(preflight) if preflight is not None else None, kiosk_id,
        )  # fmt: skip

    def record_expired_document(
        self, kiosk_id: str, document_id: str, appointment_id: str | None, sha256: str | None, reason: str
    ) -> None:
        self._exec(
            "INSERT OR REPLACE INTO expired_documents VALUES (?, ?, ?, ?, ?, ?)",
            kiosk_id, document_id, appointment_id, sha256, reason, utcnow().isoformat(),
        )  # fmt: skip

    def expired_documents(self) -> list[sqlite3.Row]:
        return self._all("SELECT * FROM expired_documents ORDER BY reported_at")

    def record_session_report(self, kiosk_id: str, report: dict[str, Any]) -> None:
        """Kept once: a report sent again (the answer to the first try was lost) changes nothing.
        The citizen's rating is kept apart, as a count per kiosk, service, day and answer (no row of
        its own, so not even the order of arrival links an opinion to the appointment, hence to the
        person who gave it)."""
        reset = report["reset"]
        session = report.get("session")
        rating = None
        if isinstance(session, dict) and "citizen_rating" in session:
            rating = session["citizen_rating"]
            report = {**report, "session": {k: v for k, v in session.items() if k != "citizen_rating"}}
        with self._transaction() as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO session_reports VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kiosk_id, report["report_id"], reset.get("appointment_id"), reset["trigger"],
                 int(reset["passed"]), json.dumps(report), utcnow().isoformat()),
            ).rowcount  # fmt: skip
            if not inserted or rating is None or not isinstance(session, dict):
                return
            appointment = db.execute(
                "SELECT service, start FROM appointments WHERE id=? AND kiosk_id=?",
                (session["appointment_id"], kiosk_id),
            ).fetchone()
            if appointment is not None:  # another kiosk's appointment: not this kiosk's to rate
                db.execute(
                    "INSERT INTO citizen_ratings VALUES (?, ?, ?, ?, 1) "
                    "ON CONFLICT (kiosk_id, service, day, rating) DO UPDATE SET count = count + 1",
                    (kiosk_id, appointment["service"], appointment["start"][:10], str(rating)),
                )

    def session_reports(self) -> list[sqlite3.Row]:
        return self._all("SELECT * FROM session_reports ORDER BY reported_at, rowid")

    # --- clerks
    def create_clerk(self, display_name: str, service: str) -> tuple[str, str]:
        clerk_id, token = new_id("clerk"), secrets.token_urlsafe(32)
        self._exec(
            "INSERT INTO clerks VALUES (?, ?, ?, ?)", clerk_id, display_name, service, token_hash(token)
        )
        return clerk_id, token

    def clerk(self, clerk_id: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM clerks WHERE id=?", clerk_id)

    def clerk_by_token(self, token: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM clerks WHERE token_hash=?", token_hash(token))

    # --- appointments
    def create_appointment(
        self,
        kiosk_id: str,
        clerk_id: str,
        service: str,
        start: datetime,
        end: datetime,
        origins: list[str],
        start_url: str | None,
        citizen_name: str | None = None,
    ) -> str:
        with self._lock:
            return self._insert_appointment(
                kiosk_id, clerk_id, service, start, end, origins, start_url, citizen_name, walk_in=False
            )

    def _insert_appointment(
        self,
        kiosk_id: str,
        clerk_id: str,
        service: str,
        start: datetime,
        end: datetime,
        origins: list[str],
        start_url: str | None,
        citizen_name: str | None,
        *,
        walk_in: bool,
    ) -> str:
        """With the lock held."""
        appointment_id = new_id("appt")
        self._db.execute(
            "INSERT INTO appointments(id, kiosk_id, clerk_id, service, start, end, allowed_origins, start_url, citizen_name, walk_in) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (appointment_id, kiosk_id, clerk_id, service, start.isoformat(), end.isoformat(), json.dumps(origins), start_url,
             citizen_name, int(walk_in)),
        )  # fmt: skip
        return appointment_id

    def appointment(self, appointment_id: str) -> sqlite3.Row | None:
        return self._one(
            "SELECT a.*, c.display_name AS clerk_name, k.name AS kiosk_name, k.site_name AS site_name "
            "FROM appointments a JOIN clerks c ON c.id=a.clerk_id JOIN kiosks k ON k.id=a.kiosk_id WHERE a.id=?",
            appointment_id,
        )

    def appointments_for_kiosk(self, kiosk_id: str, since: datetime, until: datetime) -> list[sqlite3.Row]:
        return [
            r
            for r in self._all(
                "SELECT a.*, c.display_name AS clerk_name FROM appointments a JOIN clerks c ON c.id=a.clerk_id "
                "WHERE a.kiosk_id=? AND a.cancelled_at IS NULL ORDER BY a.start, a.id",
                kiosk_id,
            )
            if datetime.fromisoformat(r["end"]) > since and datetime.fromisoformat(r["start"]) < until
        ]

    def appointments_between(self, since: datetime, until: datetime) -> list[sqlite3.Row]:
        """Every kiosk's appointments overlapping [since, until), not cancelled, with `call_ended`
        (1 once its call ended for good, else 0). One query for the fleet view."""
        return [
            r
            for r in self._all(
                "SELECT a.*, COALESCE(c.ended, 0) AS call_ended FROM appointments a "
                "LEFT JOIN calls c ON c.appointment_id=a.id WHERE a.cancelled_at IS NULL ORDER BY a.start, a.id"
            )
            if datetime.fromisoformat(r["end"]) > since and datetime.fromisoformat(r["start"]) < until
        ]

    def appointments_for_clerk(self, clerk_id: str, since: datetime, until: datetime) -> list[sqlite3.Row]:
        return [
            r
            for r in self._all(
                "SELECT a.*, k.name AS kiosk_name, k.site_name AS site_name FROM appointments a "
                "JOIN kiosks k ON k.id=a.kiosk_id WHERE a.clerk_id=? AND a.cancelled_at IS NULL ORDER BY a.start, a.id",
                clerk_id,
            )
            if datetime.fromisoformat(r["end"]) > since and datetime.fromisoformat(r["start"]) < until
        ]

    # --- walk-in codes: a clerk's six digits, read out over the phone, that a kiosk trades once for an
    # appointment starting now. Kept hashed like every other code; six digits are no secret from
    # someone who can read the database, what protects a code is its short life, its single use and
    # the limit on wrong tries. Used and expired codes are kept for a day so that a kiosk hears
    # "used" or "expired" rather than "unknown", which tells the staff what to ask the clerk.
    WALK_IN_KEPT = timedelta(days=1)

    def create_walk_in_code(self, clerk_id: str, valid_for: timedelta, max_live: int) -> tuple[str, datetime]:
        now = utcnow().replace(microsecond=0)
        expires = now + valid_for
        with self._transaction() as db:
            rows = db.execute(
                "SELECT code_hash, clerk_id, created_at, expires_at, used_at FROM walk_in_codes"
            ).fetchall()
            for row in rows:
                if datetime.fromisoformat(row["expires_at"]) < now - self.WALK_IN_KEPT:
                    db.execute("DELETE FROM walk_in_codes WHERE code_hash=?", (row["code_hash"],))
            live = sorted(
                (r for r in rows if r["clerk_id"] == clerk_id and r["used_at"] is None
                 and datetime.fromisoformat(r["expires_at"]) > now),
                key=lambda r: datetime.fromisoformat(r["created_at"]),
            )  # fmt: skip
            for row in live[: max(0, len(live) - max_live + 1)]:
                # Withdrawn: expired now (a kiosk trying it hears "expired, ask for a new code").
                db.execute(
                    "UPDATE walk_in_codes SET expires_at=? WHERE code_hash=?",
                    (now.isoformat(), row["code_hash"]),
                )
            taken = {r["code_hash"] for r in rows}
            while True:  # a new code never equals one still kept, live or not: its answer must be its own
                code = f"{secrets.randbelow(1_000_000):06d}"
                if token_hash(code) not in taken:
                    break
            db.execute(
                "INSERT INTO walk_in_codes(code_hash, clerk_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (token_hash(code), clerk_id, utcnow().isoformat(), expires.isoformat()),
            )
        return code, expires

    def redeem_walk_in_code(self, code: str, kiosk_id: str, duration: timedelta) -> tuple[str, str | None]:
        """("ok", the new appointment's id), or ("unknown" | "expired" | "used", None) and nothing
        changed. The check, the appointment and the code's use are one transaction: a code opens one
        session, however many kiosks try it at once."""
        now = utcnow()
        with self._transaction() as db:
            row = db.execute(
                "SELECT w.*, c.service AS service FROM walk_in_codes w JOIN clerks c ON c.id=w.clerk_id "
                "WHERE w.code_hash=?",
                (token_hash(code),),
            ).fetchone()
            if row is None:
                return "unknown", None
            if row["used_at"] is not None:
                return "used", None
            if datetime.fromisoformat(row["expires_at"]) <= now:
                return "expired", None
            appointment_id = self._insert_appointment(
                kiosk_id, row["clerk_id"], row["service"], now, now + duration, [], None, None, walk_in=True
            )
            db.execute(
                "UPDATE walk_in_codes SET used_at=?, kiosk_id=?, appointment_id=? WHERE code_hash=?",
                (now.isoformat(), kiosk_id, appointment_id, row["code_hash"]),
            )
            return "ok", appointment_id

    # --- walk-in availability: a clerk says « available for walk-ins » from the console, which keeps
    # it alive (expires_at moves on at each keep-alive); a kiosk asking for a walk-in with the service
    # gets the available clerk who has waited longest. The row stays once ended, with why (turned_off,
    # expired, walk_in, in_call), so that the console can say it; only `ended IS NULL` and a future
    # expires_at mean available, and never while the clerk is in a call.

    def _clerk_in_call(self, db: sqlite3.Connection, clerk_id: str, now: datetime) -> bool:
        """With the lock held: a call of this clerk's answered and not ended, its appointment not over."""
        rows = db.execute(
            "SELECT a.end FROM calls c JOIN appointments a ON a.id=c.appointment_id "
            "WHERE a.clerk_id=? AND c.answer IS NOT NULL AND c.ended=0",
            (clerk_id,),
        ).fetchall()
        return any(datetime.fromisoformat(r["end"]) > now for r in rows)

    @staticmethod
    def _available(row: sqlite3.Row | None, now: datetime) -> bool:
        return row is not None and row["ended"] is None and datetime.fromisoformat(row["expires_at"]) > now

    def _availability_row(self, db: sqlite3.Connection, clerk_id: str, now: datetime) -> sqlite3.Row | None:
        """With the lock held: the clerk's row, marked expired (or in_call) first if it is."""
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM walk_in_availability WHERE clerk_id=?", (clerk_id,)
        ).fetchone()
        if row is None or row["ended"] is not None:
            return row
        ended = None
        if datetime.fromisoformat(row["expires_at"]) <= now:
            ended = "expired"
        elif self._clerk_in_call(db, clerk_id, now):
            ended = "in_call"
        if ended is None:
            return row
        db.execute("UPDATE walk_in_availability SET ended=? WHERE clerk_id=?", (ended, clerk_id))
        again: sqlite3.Row | None = db.execute(
            "SELECT * FROM walk_in_availability WHERE clerk_id=?", (clerk_id,)
        ).fetchone()
        return again

    def walk_in_availability(self, clerk_id: str) -> sqlite3.Row | None:
        with self._transaction() as db:
            return self._availability_row(db, clerk_id, utcnow())

    def set_walk_in_available(
        self, clerk_id: str, service: str, available: bool, lasts: timedelta
    ) -> tuple[str, sqlite3.Row | None]:
        """Turns the clerk's availability on (("ok", row); ("in_call", row) and nothing changed while
        the clerk is in a call) or off. Turning it on while it is on only extends it: the clerk keeps
        their place in the queue."""
        now = utcnow()
        with self._transaction() as db:
            row = self._availability_row(db, clerk_id, now)
            if not available:
                if self._available(row, now):
                    db.execute(
                        "UPDATE walk_in_availability SET ended='turned_off' WHERE clerk_id=?", (clerk_id,)
                    )
            elif self._clerk_in_call(db, clerk_id, now):
                return "in_call", row
            elif self._available(row, now):
                db.execute(
                    "UPDATE walk_in_availability SET expires_at=? WHERE clerk_id=?",
                    ((now + lasts).isoformat(), clerk_id),
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO walk_in_availability(clerk_id, service, since, expires_at) "
                    "VALUES (?, ?, ?, ?)",
                    (clerk_id, service, now.isoformat(), (now + lasts).isoformat()),
                )
            return "ok", db.execute(
                "SELECT * FROM walk_in_availability WHERE clerk_id=?", (clerk_id,)
            ).fetchone()

    def keep_walk_in_available(self, clerk_id: str, lasts: timedelta) -> sqlite3.Row | None:
        """The console is still there: an availability still on lasts `lasts` more. One that ended
        (expired, taken by a walk-in, a call) stays ended: only the clerk turns it on again."""
        now = utcnow()
        with self._transaction() as db:
            row = self._availability_row(db, clerk_id, now)
            if self._available(row, now):
                db.execute(
                    "UPDATE walk_in_availability SET expires_at=? WHERE clerk_id=?",
                    ((now + lasts).isoformat(), clerk_id),
                )
                row = db.execute(
                    "SELECT * FROM walk_in_availability WHERE clerk_id=?", (clerk_id,)
                ).fetchone()
            return row

    def end_walk_in_availability(self, clerk_id: str, reason: str) -> None:
        now = utcnow()
        with self._transaction() as db:
            row = self._availability_row(db, clerk_id, now)
            if self._available(row, now):
                db.execute("UPDATE walk_in_availability SET ended=? WHERE clerk_id=?", (reason, clerk_id))

    def _available_clerks(self, db: sqlite3.Connection, now: datetime) -> list[sqlite3.Row]:
        """With the lock held: the availabilities on, the longest waiting first."""
        rows = db.execute(
            "SELECT * FROM walk_in_availability WHERE ended IS NULL ORDER BY since, rowid"
        ).fetchall()
        return [
            r for r in rows
            if datetime.fromisoformat(r["expires_at"]) > now and not self._clerk_in_call(db, r["clerk_id"], now)
        ]  # fmt: skip

    def walk_in_services(self) -> list[tuple[str, int]]:
        """The services with a clerk available now, and how many, by name."""
        with self._lock:
            counts: dict[str, int] = {}
            for row in self._available_clerks(self._db, utcnow()):
                counts[row["service"]] = counts.get(row["service"], 0) + 1
        return sorted(counts.items())

    def take_walk_in_clerk(self, service: str, kiosk_id: str, duration: timedelta) -> tuple[str, str | None]:
        """("ok", the new appointment's id) with the available clerk of `service` who has waited
        longest, whose availability ends ("walk_in"); or ("unknown" | "none", None) and nothing
        changed. One transaction: a clerk is taken once, however many kiosks ask at once."""
        now = utcnow()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM clerks WHERE service=? LIMIT 1", (service,)).fetchone() is None:
                return "unknown", None
            chosen = next((r for r in self._available_clerks(db, now) if r["service"] == service), None)
            if chosen is None:
                return "none", None
            appointment_id = self._insert_appointment(
                kiosk_id, chosen["clerk_id"], service, now, now + duration, [], None, None, walk_in=True
            )
            db.execute(
                "UPDATE walk_in_availability SET ended='walk_in', appointment_id=? WHERE clerk_id=?",
                (appointment_id, chosen["clerk_id"]),
            )
            return "ok", appointment_id

    # --- calls (signalling state, one per appointment; every change bumps the version)
    def call(self, appointment_id: str) -> CallRow:
        row = self._one("SELECT * FROM calls WHERE appointment_id=?", appointment_id)
        if row is None:
            return CallRow(appointment_id, 0, None, None, None, False, None, None)
        return CallRow(
            appointment_id,
            row["version"],
            row["call_id"],
            row["offer"],
            row["answer"],
            bool(row["ended"]),
            row["ended_by"],
            row["reason"],
        )

    def _write_call(self, c: CallRow) -> None:
        self._exec(
            "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            c.appointment_id, c.version, c.call_id, c.offer, c.answer, int(c.ended), c.ended_by, c.reason, utcnow().isoformat(),
        )  # fmt: skip

    def post_offer(self, appointment_id: str, sdp: str) -> CallRow:
        old = self.call(appointment_id)
        new = CallRow(appointment_id, old.version + 1, new_id("call"), sdp, None, False, None, None)
        self._write_call(new)
        return new

    def post_answer(self, appointment_id: str, sdp: str) -> CallRow:
        old = self.call(appointment_id)
        new = CallRow(appointment_id, old.version + 1, old.call_id, old.offer, sdp, False, None, None)
        self._write_call(new)
        return new

    def hang_up(self, appointment_id: str, by: str, reason: str) -> CallRow:
        old = self.call(appointment_id)
        new = CallRow(appointment_id, old.version + 1, old.call_id, old.offer, old.answer, True, by, reason)
        self._write_call(new)
        return new

    # --- evaluation: the clerk's rating of a session, and what the usage figures are made of
    def rate_as_clerk(self, appointment_id: str, face: int | None, remark: str | None) -> bool:
        """False when this appointment was already rated (the first rating stands)."""
        with self._lock:
            return bool(
                self._db.execute(
                    "INSERT OR IGNORE INTO clerk_ratings VALUES (?, ?, ?, ?)",
                    (appointment_id, face, remark, utcnow().isoformat()),
                ).rowcount
            )

    def clerk_rating(self, appointment_id: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM clerk_ratings WHERE appointment_id=?", appointment_id)

    def usage_appointments(self) -> list[sqlite3.Row]:
        """Every appointment with its site, its call's state and its clerk's rating."""
        return self._all(
            "SELECT a.id, a.kiosk_id, a.service, a.start, a.end, a.walk_in, a.cancelled_at, k.site_name, "
            "c.answer IS NOT NULL AS answered, r.face AS clerk_face, r.rated_at AS clerk_rated_at, "
            "r.remark AS clerk_remark FROM appointments a JOIN kiosks k ON k.id=a.kiosk_id "
            "LEFT JOIN calls c ON c.appointment_id=a.id LEFT JOIN clerk_ratings r ON r.appointment_id=a.id "
            "ORDER BY a.start, a.id"
        )

    def usage_citizen_ratings(self) -> list[sqlite3.Row]:
        return self._all(
            "SELECT r.service, r.day, r.rating, r.count, k.site_name FROM citizen_ratings r "
            "JOIN kiosks k ON k.id=r.kiosk_id"
        )

    # --- bookings: appointments kept in a booking tool (RDV Service Public, an ICS feed), mirrored here
    # by bookings.py. One row per booking of a source, with the version of the latest news applied
    # (sequence, then time) and its state: "active" (its appointment is live), "cancelled" (cancelled in
    # the tool), "missing" (absent from a complete listing: it may come back), "removed" (deleted in the
    # tool: final) or "ignored" (no kiosk or clerk mapped for it, `reason` says which).
    BOOKING_STATES = ("active", "cancelled", "missing", "removed", "ignored")

    def apply_booking(
        self,
        source: str,
        external_id: str,
        sequence: int,
        version: datetime,
        state: str,
        reason: str | None,
        booked: BookedAppointment | None,
    ) -> tuple[str, str | None]:
        """(outcome, appointment id). Outcomes: "created", "updated", "unchanged", "cancelled",
        "ignored" (nothing mapped), "stale" (older than what was applied: nothing changed). News older
        than the latest applied never changes anything; on a tie a cancellation wins; "removed" is final:
        a replayed or late event never brings a cancelled or deleted booking back."""
        if state not in self.BOOKING_STATES or (state == "active") != (booked is not None):
            raise ValueError(f"booking state {state!r} with booked={booked is not None}")
        now = utcnow()
        with self._transaction() as db:
            row = db.execute(
                "SELECT * FROM bookings WHERE source=? AND external_id=?", (source, external_id)
            ).fetchone()
            appointment_id: str | None = row["appointment_id"] if row is not None else None
            if row is not None:
                old = (row["sequence"], datetime.fromisoformat(row["version"]))
                if (
                    row["state"] == "removed"
                    or (sequence, version) < old
                    or ((sequence, version) == old and row["state"] != "active" and state == "active")
                ):
                    return "stale", appointment_id
            current = (
                db.execute("SELECT * FROM appointments WHERE id=?", (appointment_id,)).fetchone()
                if appointment_id is not None
                else None
            )
            if booked is not None:
                fields = {
                    "kiosk_id": booked.kiosk_id, "clerk_id": booked.clerk_id, "service": booked.service,
                    "start": booked.start.astimezone(UTC).isoformat(), "end": booked.end.astimezone(UTC).isoformat(),
                    "citizen_name": booked.citizen_name,
                }  # fmt: skip
                if current is None:
                    appointment_id = self._insert_appointment(
                        booked.kiosk_id, booked.clerk_id, booked.service, booked.start.astimezone(UTC),
                        booked.end.astimezone(UTC), [], None, booked.citizen_name, walk_in=False,
                    )  # fmt: skip
                    outcome = "created"
                elif current["cancelled_at"] is None and all(current[k] == v for k, v in fields.items()):
                    outcome = "unchanged"
                else:
                    db.execute(
                        "UPDATE appointments SET kiosk_id=?, clerk_id=?, service=?, start=?, end=?, citizen_name=?,"
                        " cancelled_at=NULL WHERE id=?",
                        (*fields.values(), appointment_id),
                    )
                    outcome = "updated"
            elif current is not None and current["cancelled_at"] is None:
                db.execute(
                    "UPDATE appointments SET cancelled_at=? WHERE id=?", (now.isoformat(), appointment_id)
                )
                outcome = "cancelled"
            else:
                outcome = "ignored" if state == "ignored" else "unchanged"
            db.execute(
                "INSERT OR REPLACE INTO bookings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    source,
                    external_id,
                    appointment_id,
                    sequence,
                    version.isoformat(),
                    state,
                    reason,
                    now.isoformat(),
                ),
            )
            return outcome, appointment_id

    def booking(self, source: str, external_id: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM bookings WHERE source=? AND external_id=?", source, external_id)

    def bookings(self, source: str | None = None) -> list[sqlite3.Row]:
        """Each booking with its appointment's start (NULL when it has none), of one source or all."""
        return self._all(
            "SELECT b.*, a.start AS start FROM bookings b LEFT JOIN appointments a ON a.id=b.appointment_id"
            " WHERE ? IS NULL OR b.source=? ORDER BY b.source, b.external_id",
            source,
            source,
        )

    # --- commands from IT staff to a kiosk (commands.py, commands_api.py). Times are fixed-width UTC
    # text (commands.stamp), so expiry compares in SQL; the screenshot is base64 text, portable as is.
    _COMMAND_COLUMNS = (
        "c.*, s.width AS png_width, s.height AS png_height, s.bytes AS png_bytes"
        " FROM kiosk_commands c LEFT JOIN command_screenshots s ON s.command_id = c.id"
    )

    def create_command(
        self, kiosk_id: str, kind: str, created_at: str, expires_at: str, forget_before: str | None = None
    ) -> str:
        """A pending command; commands created before `forget_before` (with no screenshot kept) go."""
        if forget_before is not None:
            self._exec(
                "DELETE FROM kiosk_commands WHERE created_at < ?"
                " AND id NOT IN (SELECT command_id FROM command_screenshots)",
                forget_before,
            )
        command_id = new_id("cmd")
        self._exec(
            "INSERT INTO kiosk_commands (id, kiosk_id, kind, state, created_at, expires_at)"
            " VALUES (?, ?, ?, 'pending', ?, ?)",
            command_id, kiosk_id, kind, created_at, expires_at,
        )  # fmt: skip
        return command_id

    def pending_commands(self, kiosk_id: str, now: str) -> int:
        row = self._one(
            "SELECT COUNT(*) AS n FROM kiosk_commands WHERE kiosk_id=? AND state='pending' AND expires_at > ?",
            kiosk_id, now,
        )  # fmt: skip
        return int(row["n"]) if row is not None else 0

    def command(self, command_id: str) -> sqlite3.Row | None:
        return self._one(f"SELECT {self._COMMAND_COLUMNS} WHERE c.id=?", command_id)

    def commands(self, kiosk_id: str | None = None, limit: int = 200) -> list[sqlite3.Row]:
        """Newest first."""
        return self._all(
            f"SELECT {self._COMMAND_COLUMNS} WHERE ? IS NULL OR c.kiosk_id=? ORDER BY c.created_at DESC LIMIT ?",
            kiosk_id, kiosk_id, limit,
        )  # fmt: skip

    def deliver_commands(self, kiosk_id: str, now: str) -> list[sqlite3.Row]:
        """The kiosk's pending commands that have not expired, now `delivered` (never again pending)."""
        rows = self._all(
            "SELECT * FROM kiosk_commands WHERE kiosk_id=? AND state='pending' AND expires_at > ?"
            " ORDER BY created_at",
            kiosk_id, now,
        )  # fmt: skip
        for row in rows:
            self._exec(
                "UPDATE kiosk_commands SET state='delivered', delivered_at=? WHERE id=? AND state='pending'",
                now, row["id"],
            )  # fmt: skip
        return rows

    def finish_command(self, command_id: str, outcome: str, reason: str | None, now: str) -> None:
        """The kiosk's result, kept once: only a delivered command takes one (a result that arrives
        after the expiry still counts: the kiosk ran it in time)."""
        self._exec(
            "UPDATE kiosk_commands SET state=?, reason=?, finished_at=? WHERE id=? AND state='delivered'",
            outcome, reason, now, command_id,
        )  # fmt: skip

    def store_screenshot(
        self, command_id: str, kiosk_id: str, png_base64: str, size: tuple[int, int], length: int, now: str
    ) -> None:
        """Kept with its command; only the kiosk's latest few are kept."""
        self._exec(
            "INSERT INTO command_screenshots (command_id, kiosk_id, png_base64, width, height, bytes, taken_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            command_id, kiosk_id, png_base64, size[0], size[1], length, now,
        )  # fmt: skip
        kept = self._all(
            "SELECT command_id FROM command_screenshots WHERE kiosk_id=? ORDER BY taken_at DESC", kiosk_id
        )
        for row in kept[SCREENSHOTS_KEPT_PER_KIOSK:]:
            self._exec("DELETE FROM command_screenshots WHERE command_id=?", row["command_id"])

    def screenshot(self, command_id: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM command_screenshots WHERE command_id=?", command_id)
