"""Persistence for the reference central: SQLite (embedded, the default) or PostgreSQL (several central
processes on one database), one API for both (database.py holds the difference and the rules a method
follows to work on both). Tokens are stored as SHA-256 hashes only."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .commands import SCREENSHOTS_KEPT_PER_KIOSK
from .database import Connection, Database, DatabaseUnavailable, Row, open_database

__all__ = ["BookedAppointment", "CallRow", "DatabaseUnavailable", "Row", "Store"]

# Portable SQL (SQLite and PostgreSQL): `end` is quoted, a reserved word in PostgreSQL.
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
    service TEXT NOT NULL, start TEXT NOT NULL, "end" TEXT NOT NULL, allowed_origins TEXT NOT NULL, start_url TEXT,
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
CREATE TABLE IF NOT EXISTS command_screenshots (
    command_id TEXT PRIMARY KEY REFERENCES kiosk_commands(id), kiosk_id TEXT NOT NULL REFERENCES kiosks(id),
    png_base64 TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, bytes INTEGER NOT NULL,
    taken_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS software_releases (
    version TEXT PRIMARY KEY, filename TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
    uploaded_at TEXT NOT NULL, wheel_base64 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bookings (
    source TEXT NOT NULL, external_id TEXT NOT NULL, appointment_id TEXT REFERENCES appointments(id),
    sequence INTEGER NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (source, external_id)
);
"""
# What the hot paths look up (each kiosk's schedule poll, each clerk's list), not by primary key.
INDEXES = """
CREATE INDEX IF NOT EXISTS appointments_by_kiosk ON appointments(kiosk_id);
CREATE INDEX IF NOT EXISTS appointments_by_clerk ON appointments(clerk_id);
CREATE INDEX IF NOT EXISTS kiosk_commands_by_kiosk ON kiosk_commands (kiosk_id, state);
"""
# Columns added after their table was first made: (table, column, declaration), added when missing.
ADDED_COLUMNS = (
    ("appointments", "citizen_name", "TEXT"),  # the citizen's display name (NULL, "not given")
    ("appointments", "walk_in", "INTEGER NOT NULL DEFAULT 0"),  # before walk-ins, every one was booked
    ("appointments", "cancelled_at", "TEXT"),  # cancelled in a booking tool (bookings.py)
    ("kiosks", "last_preflight", "TEXT"),  # before kiosks reported their pre-flight
    ("kiosks", "last_update", "TEXT"),  # before kiosks installed their staged software target
)
# The tables read in insertion order (`ORDER BY ..., rowid`): PostgreSQL has no rowid, they get one.
ROWID_TABLES = ("walk_in_availability", "session_reports")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def day_before(moment: datetime) -> str:
    """A bound for SQL on the stored ISO 8601 texts, whose offsets differ (a booking's +01:00, UTC):
    compared as text, only the date is safe, and a day earlier than `moment`'s covers any offset
    (at most 14 hours). Rows past it are then filtered exactly (`overlaps`)."""
    return (moment - timedelta(days=1)).date().isoformat()


def overlaps(row: Row, since: datetime, until: datetime) -> bool:
    return datetime.fromisoformat(row["end"]) > since and datetime.fromisoformat(row["start"]) < until


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
    """`target`: the path of a SQLite file, or a PostgreSQL URL (postgresql://user@host/dbname)."""

    def __init__(self, target: Path | str) -> None:
        self._db: Database = open_database(target)
        self._lock = self._db.lock
        with self._lock:
            self._db.create_schema(SCHEMA + INDEXES, ADDED_COLUMNS, ROWID_TABLES)

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._db.dialect

    @property
    def shared(self) -> bool:
        """Several central processes may share this store (PostgreSQL): see `listen_for_calls`."""
        return self._db.shared

    async def listen_for_calls(self, announce: Callable[[str], None]) -> None:
        """Calls `announce` with what another central process announces of each change of a call, as
        it comes (see `call_change`; "" at first and after a lost connection: look at every call
        again), until cancelled. PostgreSQL only (`shared`)."""
        await self._db.listen(announce)

    @staticmethod
    def call_change(announced: str) -> tuple[str, CallRow | None]:
        """(appointment id, the call as changed) from an announcement of `listen_for_calls`; the call is
        None when the announcement did not carry it (too big, or "": every call): read it."""
        if not announced.startswith("{"):
            return announced, None
        fields = json.loads(announced)
        return fields["appointment_id"], CallRow(
            str(fields["appointment_id"]),
            int(fields["version"]),
            fields["call_id"],
            fields["offer"],
            fields["answer"],
            bool(fields["ended"]),
            fields["ended_by"],
            fields["reason"],
        )

    def close(self) -> None:
        self._db.close()

    def _one(self, sql: str, *args: Any) -> Row | None:
        with self._lock:
            row: Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, *args: Any) -> list[Row]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def _exec(self, sql: str, *args: Any) -> None:
        with self._lock:
            self._db.execute(sql, args)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """The lock held and one transaction: all of it is written, or none."""
        with self._lock, self._db.transaction() as db:
            yield db

    # --- settings (the kiosk config served to every kiosk)
    def get_setting(self, key: str) -> Any:
        row = self._one("SELECT value FROM settings WHERE key=?", key)
        return json.loads(row["value"]) if row else None

    def put_setting(self, key: str, value: Any) -> None:
        self._exec(
            "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            key,
            json.dumps(value),
        )

    # --- kiosks and enrolment
    def create_kiosk(self, name: str, site_name: str) -> str:
        kiosk_id = new_id("kiosk")
        self._exec("INSERT INTO kiosks(id, name, site_name) VALUES (?, ?, ?)", kiosk_id, name, site_name)
        return kiosk_id

    def kiosk(self, kiosk_id: str) -> Row | None:
        return self._one("SELECT * FROM kiosks WHERE id=?", kiosk_id)

    def kiosks(self) -> list[Row]:
        return self._all("SELECT * FROM kiosks ORDER BY name")

    def create_enrollment_code(self, kiosk_id: str, valid_for: timedelta) -> tuple[str, datetime]:
        # Short, unambiguous, typed by IT staff on the kiosk: 4 groups of 4 from a no-lookalike alphabet.
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        code = "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
        expires = utcnow() + valid_for
        self._exec(
            "INSERT INTO enrollment_codes(code_hash, kiosk_id, expires_at) VALUES (?, ?, ?)",
            token_hash(code),
            kiosk_id,
            expires.isoformat(),
        )
        return code, expires

    def redeem_enrollment_code(self, code: str) -> tuple[str, str] | None:
        """One-time: the code is deleted; the kiosk gets a new device token (any older one stops working).
        The delete says who redeemed it: of two central processes redeeming one code at once, one
        deletes the row and the other finds none."""
        with self._transaction() as db:
            row = db.execute(
                "DELETE FROM enrollment_codes WHERE code_hash=? RETURNING kiosk_id, expires_at",
                (token_hash(code.upper()),),
            ).fetchone()
            if row is None:
                return None
            if datetime.fromisoformat(row["expires_at"]) < utcnow():
                return None  # and the expired code is gone
            token = secrets.token_urlsafe(32)
            db.execute("UPDATE kiosks SET token_hash=? WHERE id=?", (token_hash(token), row["kiosk_id"]))
            return row["kiosk_id"], token

    def kiosk_by_token(self, token: str) -> Row | None:
        return self._one("SELECT * FROM kiosks WHERE token_hash=?", token_hash(token))

    def record_heartbeat(
        self,
        kiosk_id: str,
        state: str,
        appointment_id: str | None,
        devices: dict[str, str],
        version: str,
        preflight: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
    ) -> None:
        """`update`: what the kiosk said of its staged update (None: nothing, which clears the last)."""
        self._exec(
            self._HEARTBEAT + " WHERE id=?",
            *self._heartbeat_values(state, appointment_id, devices, version, preflight, update), kiosk_id,
        )  # fmt: skip

    _HEARTBEAT = (
        "UPDATE kiosks SET last_seen=?, last_state=?, last_appointment=?, last_devices=?, software_version=?,"
        " last_preflight=COALESCE(?, last_preflight), last_update=?"
    )

    @staticmethod
    def _heartbeat_values(
        state: str,
        appointment_id: str | None,
        devices: dict[str, str],
        version: str,
        preflight: dict[str, Any] | None,
        update: dict[str, Any] | None,
    ) -> tuple[Any, ...]:
        return (
            utcnow().isoformat(), state, appointment_id, json.dumps(devices), version,
            json.dumps(preflight) if preflight is not None else None,
            json.dumps(update) if update is not None else None,
        )  # fmt: skip

    def heartbeat_by_token(
        self,
        token: str,
        now: str,
        state: str,
        appointment_id: str | None,
        devices: dict[str, str],
        version: str,
        preflight: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
    ) -> tuple[str, int] | None:
        """A heartbeat recorded for the kiosk whose device token this is, in one statement (every kiosk
        sends one every few seconds): (its id, how many commands wait for it at `now`), or None for an
        unknown token (nothing written)."""
        row = self._one(
            self._HEARTBEAT + " WHERE token_hash=? RETURNING id, (SELECT COUNT(*) FROM kiosk_commands c"
            " WHERE c.kiosk_id=kiosks.id AND c.state='pending' AND c.expires_at > ?) AS pending",
            *self._heartbeat_values(state, appointment_id, devices, version, preflight, update),
            token_hash(token), now,
        )  # fmt: skip
        return None if row is None else (str(row["id"]), int(row["pending"]))

    def record_expired_document(
        self, kiosk_id: str, document_id: str, appointment_id: str | None, sha256: str | None, reason: str
    ) -> None:
        self._exec(
            "INSERT INTO expired_documents(kiosk_id, document_id, appointment_id, sha256, reason, reported_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kiosk_id, document_id) DO UPDATE SET"
            " appointment_id=excluded.appointment_id, sha256=excluded.sha256, reason=excluded.reason,"
            " reported_at=excluded.reported_at",
            kiosk_id, document_id, appointment_id, sha256, reason, utcnow().isoformat(),
        )  # fmt: skip

    def expired_documents(self) -> list[Row]:
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
                "INSERT INTO session_reports(kiosk_id, report_id, appointment_id, trigger, passed, document, reported_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING report_id",
                (kiosk_id, report["report_id"], reset.get("appointment_id"), reset["trigger"],
                 int(reset["passed"]), json.dumps(report), utcnow().isoformat()),
            ).fetchone()  # fmt: skip
            if inserted is None or rating is None or not isinstance(session, dict):
                return
            appointment = db.execute(
                "SELECT service, start FROM appointments WHERE id=? AND kiosk_id=?",
                (session["appointment_id"], kiosk_id),
            ).fetchone()
            if appointment is not None:  # another kiosk's appointment: not this kiosk's to rate
                # One statement that adds one whoever else counts at the same time (both databases
                # serialize the conflicting inserts on the primary key).
                db.execute(
                    "INSERT INTO citizen_ratings(kiosk_id, service, day, rating, count) VALUES (?, ?, ?, ?, 1)"
                    " ON CONFLICT (kiosk_id, service, day, rating) DO UPDATE SET count = citizen_ratings.count + 1",
                    (kiosk_id, appointment["service"], appointment["start"][:10], str(rating)),
                )  # fmt: skip

    def session_reports(self) -> list[Row]:
        return self._all("SELECT * FROM session_reports ORDER BY reported_at, rowid")

    # --- clerks
    def create_clerk(self, display_name: str, service: str) -> tuple[str, str]:
        clerk_id, token = new_id("clerk"), secrets.token_urlsafe(32)
        self._exec(
            "INSERT INTO clerks(id, display_name, service, token_hash) VALUES (?, ?, ?, ?)",
            clerk_id,
            display_name,
            service,
            token_hash(token),
        )
        return clerk_id, token

    def clerk(self, clerk_id: str) -> Row | None:
        return self._one("SELECT * FROM clerks WHERE id=?", clerk_id)

    def clerk_by_token(self, token: str) -> Row | None:
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
        with self._transaction() as db:
            return self._insert_appointment(
                db, kiosk_id, clerk_id, service, start, end, origins, start_url, citizen_name, walk_in=False
            )

    def _insert_appointment(
        self,
        db: Connection,
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
        """Within a transaction."""
        appointment_id = new_id("appt")
        db.execute(
            "INSERT INTO appointments(id, kiosk_id, clerk_id, service, start, \"end\", allowed_origins, start_url, citizen_name, walk_in) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (appointment_id, kiosk_id, clerk_id, service, start.isoformat(), end.isoformat(), json.dumps(origins), start_url,
             citizen_name, int(walk_in)),
        )  # fmt: skip
        return appointment_id

    def appointment(self, appointment_id: str) -> Row | None:
        return self._one(
            "SELECT a.*, c.display_name AS clerk_name, k.name AS kiosk_name, k.site_name AS site_name "
            "FROM appointments a JOIN clerks c ON c.id=a.clerk_id JOIN kiosks k ON k.id=a.kiosk_id WHERE a.id=?",
            appointment_id,
        )

    def appointment_with_parties(self, appointment_id: str) -> Row | None:
        """As `appointment`, with what a call's request needs besides, in the same statement (each one
        is a round trip in which a central process's loop waits): its kiosk's and its clerk's token
        hashes (`kiosk_token_hash`, `clerk_token_hash`: who may act on it), its call (`call_of(row)`)
        and whether its clerk's walk-in availability is on (`clerk_walk_in_open`)."""
        return self._one(
            "SELECT a.*, c.display_name AS clerk_name, k.name AS kiosk_name, k.site_name AS site_name,"
            " k.token_hash AS kiosk_token_hash, c.token_hash AS clerk_token_hash,"
            " l.version AS call_version, l.call_id AS call_call_id, l.offer AS call_offer,"
            " l.answer AS call_answer, l.ended AS call_ended, l.ended_by AS call_ended_by,"
            " l.reason AS call_reason,"
            " (SELECT COUNT(*) FROM walk_in_availability w WHERE w.clerk_id=a.clerk_id AND w.ended IS NULL)"
            " AS clerk_walk_in_open "
            "FROM appointments a JOIN clerks c ON c.id=a.clerk_id JOIN kiosks k ON k.id=a.kiosk_id"
            " LEFT JOIN calls l ON l.appointment_id=a.id WHERE a.id=?",
            appointment_id,
        )

    @staticmethod
    def call_of(row: Row) -> CallRow:
        """The call read with `appointment_with_parties` (its columns prefixed `call_`)."""
        return Store._call_row(row["id"], row if row["call_version"] is not None else None, "call_")

    def appointments_for_kiosk(self, kiosk_id: str, since: datetime, until: datetime) -> list[Row]:
        return [
            r
            for r in self._all(
                "SELECT a.*, c.display_name AS clerk_name FROM appointments a JOIN clerks c ON c.id=a.clerk_id "
                'WHERE a.kiosk_id=? AND a.cancelled_at IS NULL AND a."end" >= ? ORDER BY a.start, a.id',
                kiosk_id,
                day_before(since),
            )
            if overlaps(r, since, until)
        ]

    def kiosk_schedule(self, token: str, since: datetime, until: datetime) -> tuple[Row, list[Row]] | None:
        """The kiosk whose device token this is and its appointments overlapping [since, until), in one
        statement (a schedule poll every few seconds from every kiosk); None for an unknown token."""
        rows = self._all(
            "SELECT k.id AS kiosk_id, k.name AS kiosk_name, k.site_name AS kiosk_site_name, a.id,"
            ' a.service, a.start, a."end", a.allowed_origins, a.start_url, c.display_name AS clerk_name '
            "FROM kiosks k LEFT JOIN appointments a ON a.kiosk_id=k.id AND a.cancelled_at IS NULL"
            ' AND a."end" >= ? LEFT JOIN clerks c ON c.id=a.clerk_id WHERE k.token_hash=?'
            " ORDER BY a.start, a.id",
            day_before(since), token_hash(token),
        )  # fmt: skip
        if not rows:
            return None
        return rows[0], [r for r in rows if r["id"] is not None and overlaps(r, since, until)]

    def appointments_between(self, since: datetime, until: datetime) -> list[Row]:
        """Every kiosk's appointments overlapping [since, until), not cancelled, with `call_ended`
        (1 once its call ended for good, else 0). One query for the fleet view."""
        return [
            r
            for r in self._all(
                "SELECT a.*, COALESCE(c.ended, 0) AS call_ended FROM appointments a "
                "LEFT JOIN calls c ON c.appointment_id=a.id WHERE a.cancelled_at IS NULL"
                ' AND a."end" >= ? ORDER BY a.start, a.id',
                day_before(since),
            )
            if overlaps(r, since, until)
        ]

    def appointments_for_clerk(self, clerk_id: str, since: datetime, until: datetime) -> list[Row]:
        return [
            r
            for r in self._all(
                "SELECT a.*, k.name AS kiosk_name, k.site_name AS site_name FROM appointments a "
                "JOIN kiosks k ON k.id=a.kiosk_id WHERE a.clerk_id=? AND a.cancelled_at IS NULL"
                ' AND a."end" >= ? ORDER BY a.start, a.id',
                clerk_id,
                day_before(since),
            )
            if overlaps(r, since, until)
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
            # Every code is read and a new one must differ from all: no other process adds one meanwhile.
            db.execute("LOCK TABLE walk_in_codes IN SHARE ROW EXCLUSIVE MODE")
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
                "WHERE w.code_hash=? FOR UPDATE OF w",
                (token_hash(code),),
            ).fetchone()
            if row is None:
                return "unknown", None
            if row["used_at"] is not None:
                return "used", None
            if datetime.fromisoformat(row["expires_at"]) <= now:
                return "expired", None
            appointment_id = self._insert_appointment(
                db,
                kiosk_id,
                row["clerk_id"],
                row["service"],
                now,
                now + duration,
                [],
                None,
                None,
                walk_in=True,
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

    def _clerk_in_call(self, db: Connection, clerk_id: str, now: datetime) -> bool:
        """Within a transaction: a call of this clerk's answered and not ended, its appointment not over."""
        rows = db.execute(
            'SELECT a."end" FROM calls c JOIN appointments a ON a.id=c.appointment_id '
            "WHERE a.clerk_id=? AND c.answer IS NOT NULL AND c.ended=0",
            (clerk_id,),
        ).fetchall()
        return any(datetime.fromisoformat(r["end"]) > now for r in rows)

    @staticmethod
    def _available(row: Row | None, now: datetime) -> bool:
        return row is not None and row["ended"] is None and datetime.fromisoformat(row["expires_at"]) > now

    def _availability_row(self, db: Connection, clerk_id: str, now: datetime) -> Row | None:
        """Within a transaction: the clerk's row (locked until it ends), marked expired (or in_call)
        first if it is."""
        row: Row | None = db.execute(
            "SELECT * FROM walk_in_availability WHERE clerk_id=? FOR UPDATE", (clerk_id,)
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
        again: Row | None = db.execute(
            "SELECT * FROM walk_in_availability WHERE clerk_id=?", (clerk_id,)
        ).fetchone()
        return again

    def walk_in_availability(self, clerk_id: str) -> Row | None:
        with self._transaction() as db:
            return self._availability_row(db, clerk_id, utcnow())

    def set_walk_in_available(
        self, clerk_id: str, service: str, available: bool, lasts: timedelta
    ) -> tuple[str, Row | None]:
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
                    "INSERT INTO walk_in_availability(clerk_id, service, since, expires_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (clerk_id) DO UPDATE SET service=excluded.service, since=excluded.since,"
                    " expires_at=excluded.expires_at, ended=NULL, appointment_id=NULL",
                    (clerk_id, service, now.isoformat(), (now + lasts).isoformat()),
                )
            return "ok", db.execute(
                "SELECT * FROM walk_in_availability WHERE clerk_id=?", (clerk_id,)
            ).fetchone()

    def keep_walk_in_available(self, clerk_id: str, lasts: timedelta) -> Row | None:
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
        if (
            self._one("SELECT 1 FROM walk_in_availability WHERE clerk_id=? AND ended IS NULL", clerk_id)
            is None
        ):
            return  # nothing to end (most clerks, at each answer): no transaction
        now = utcnow()
        with self._transaction() as db:
            row = self._availability_row(db, clerk_id, now)
            if self._available(row, now):
                db.execute("UPDATE walk_in_availability SET ended=? WHERE clerk_id=?", (reason, clerk_id))

    def _available_clerks(self, db: Connection, now: datetime, service: str | None = None) -> list[Row]:
        """Within a transaction: the availabilities on (of `service`: locked, to take one), the longest
        waiting first."""
        if service is None:
            rows = db.execute(
                "SELECT * FROM walk_in_availability WHERE ended IS NULL ORDER BY since, rowid"
            ).fetchall()
        else:
            # Locked: a process taking one of them at the same time waits, then sees it taken.
            rows = db.execute(
                "SELECT * FROM walk_in_availability WHERE ended IS NULL AND service=? ORDER BY since, rowid"
                " FOR UPDATE",
                (service,),
            ).fetchall()
        return [
            r for r in rows
            if datetime.fromisoformat(r["expires_at"]) > now and not self._clerk_in_call(db, r["clerk_id"], now)
        ]  # fmt: skip

    def walk_in_services(self) -> list[tuple[str, int]]:
        """The services with a clerk available now, and how many, by name."""
        with self._transaction() as db:
            counts: dict[str, int] = {}
            for row in self._available_clerks(db, utcnow()):
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
            chosen = next(iter(self._available_clerks(db, now, service)), None)
            if chosen is None:
                return "none", None
            appointment_id = self._insert_appointment(
                db, kiosk_id, chosen["clerk_id"], service, now, now + duration, [], None, None, walk_in=True
            )
            db.execute(
                "UPDATE walk_in_availability SET ended='walk_in', appointment_id=? WHERE clerk_id=?",
                (appointment_id, chosen["clerk_id"]),
            )
            return "ok", appointment_id

    # --- calls (signalling state, one per appointment; every change bumps the version). A change is
    # a compare-and-set: the call is read, `check` (which raises to refuse) and the change see it, and
    # the write applies only if the version is still the one read; otherwise (another central process
    # changed the call meanwhile) all of it again on the new state. One statement each, no
    # transaction: on PostgreSQL each round trip blocks the process's loop, so they are counted. With
    # PostgreSQL, a trigger announces every change to every process (database.CALL_CHANNEL).
    @staticmethod
    def _call_row(appointment_id: str, row: Row | None, prefix: str = "") -> CallRow:
        if row is None:
            return CallRow(appointment_id, 0, None, None, None, False, None, None)
        return CallRow(
            appointment_id,
            row[prefix + "version"],
            row[prefix + "call_id"],
            row[prefix + "offer"],
            row[prefix + "answer"],
            bool(row[prefix + "ended"]),
            row[prefix + "ended_by"],
            row[prefix + "reason"],
        )

    def call(self, appointment_id: str) -> CallRow:
        return self._call_row(
            appointment_id, self._one("SELECT * FROM calls WHERE appointment_id=?", appointment_id)
        )

    def _change_call(
        self,
        appointment_id: str,
        change: Callable[[CallRow], CallRow | None],
        check: Callable[[CallRow], None] | None,
        known: CallRow | None = None,
    ) -> CallRow:
        """The call as `change` makes it from the current one (None: left as it is). `known`: the call
        as the request read it a moment ago, tried first (saves a read); if it has changed since, the
        write does not apply and all of it goes again on the call as it is."""
        for _ in range(100):
            old = known if known is not None else self.call(appointment_id)
            if check is not None:
                try:
                    check(old)
                except Exception:
                    if known is None:
                        raise
                    known = None  # refused on what may be stale: judged again on the call as it is
                    continue
            known = None
            new = change(old)
            if new is None:
                return old
            # Written only over the version read (a first change: only if there is still no row).
            written = self._one(
                "INSERT INTO calls(appointment_id, version, call_id, offer, answer, ended, ended_by, reason, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (appointment_id) DO UPDATE SET"
                " version=excluded.version, call_id=excluded.call_id, offer=excluded.offer, answer=excluded.answer,"
                " ended=excluded.ended, ended_by=excluded.ended_by, reason=excluded.reason,"
                " updated_at=excluded.updated_at WHERE calls.version=? RETURNING version",
                new.appointment_id, new.version, new.call_id, new.offer, new.answer, int(new.ended),
                new.ended_by, new.reason, utcnow().isoformat(), old.version,
            )  # fmt: skip
            if written is not None:
                return new
        raise RuntimeError(f"the call of {appointment_id} kept changing under this change")

    def post_offer(
        self,
        appointment_id: str,
        sdp: str,
        check: Callable[[CallRow], None] | None = None,
        known: CallRow | None = None,
    ) -> CallRow:
        return self._change_call(
            appointment_id,
            lambda old: CallRow(
                appointment_id, old.version + 1, new_id("call"), sdp, None, False, None, None
            ),
            check,
            known,
        )

    def post_answer(
        self,
        appointment_id: str,
        sdp: str,
        check: Callable[[CallRow], None] | None = None,
        known: CallRow | None = None,
    ) -> CallRow:
        return self._change_call(
            appointment_id,
            lambda old: CallRow(
                appointment_id, old.version + 1, old.call_id, old.offer, sdp, False, None, None
            ),
            check,
            known,
        )

    def hang_up(
        self, appointment_id: str, by: str, reason: str, check: Callable[[CallRow], None] | None = None
    ) -> CallRow:
        """Ended once: hanging up an ended call changes nothing (and returns it)."""
        return self._change_call(
            appointment_id,
            lambda old: (
                None
                if old.ended
                else CallRow(
                    appointment_id, old.version + 1, old.call_id, old.offer, old.answer, True, by, reason
                )
            ),
            check,
        )

    # --- evaluation: the clerk's rating of a session, and what the usage figures are made of
    def rate_as_clerk(self, appointment_id: str, face: int | None, remark: str | None) -> bool:
        """False when this appointment was already rated (the first rating stands)."""
        rated = self._one(
            "INSERT INTO clerk_ratings(appointment_id, face, remark, rated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING appointment_id",
            appointment_id, face, remark, utcnow().isoformat(),
        )  # fmt: skip
        return rated is not None

    def clerk_rating(self, appointment_id: str) -> Row | None:
        return self._one("SELECT * FROM clerk_ratings WHERE appointment_id=?", appointment_id)

    def usage_appointments(self) -> list[Row]:
        """Every appointment with its site, its call's state and its clerk's rating."""
        return self._all(
            'SELECT a.id, a.kiosk_id, a.service, a.start, a."end", a.walk_in, a.cancelled_at, k.site_name, '
            "CASE WHEN c.answer IS NULL THEN 0 ELSE 1 END AS answered, r.face AS clerk_face, "
            "r.rated_at AS clerk_rated_at, r.remark AS clerk_remark FROM appointments a JOIN kiosks k ON k.id=a.kiosk_id "
            "LEFT JOIN calls c ON c.appointment_id=a.id LEFT JOIN clerk_ratings r ON r.appointment_id=a.id "
            "ORDER BY a.start, a.id"
        )

    def usage_citizen_ratings(self) -> list[Row]:
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
            # Locked: the same news applied by two central processes at once (a webhook retried) take turns.
            db.execute("LOCK TABLE bookings IN SHARE ROW EXCLUSIVE MODE")
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
                        db, booked.kiosk_id, booked.clerk_id, booked.service, booked.start.astimezone(UTC),
                        booked.end.astimezone(UTC), [], None, booked.citizen_name, walk_in=False,
                    )  # fmt: skip
                    outcome = "created"
                elif current["cancelled_at"] is None and all(current[k] == v for k, v in fields.items()):
                    outcome = "unchanged"
                else:
                    db.execute(
                        'UPDATE appointments SET kiosk_id=?, clerk_id=?, service=?, start=?, "end"=?, citizen_name=?,'
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
                "INSERT INTO bookings(source, external_id, appointment_id, sequence, version, state, reason, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, external_id) DO UPDATE SET"
                " appointment_id=excluded.appointment_id, sequence=excluded.sequence, version=excluded.version,"
                " state=excluded.state, reason=excluded.reason, updated_at=excluded.updated_at",
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

    def booking(self, source: str, external_id: str) -> Row | None:
        return self._one("SELECT * FROM bookings WHERE source=? AND external_id=?", source, external_id)

    def bookings(self, source: str | None = None) -> list[Row]:
        """Each booking with its appointment's start (NULL when it has none), of one source or all."""
        return self._all(
            "SELECT b.*, a.start AS start FROM bookings b LEFT JOIN appointments a ON a.id=b.appointment_id"
            " WHERE CAST(? AS TEXT) IS NULL OR b.source=? ORDER BY b.source, b.external_id",
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
        command_id = new_id("cmd")
        with self._transaction() as db:
            if forget_before is not None:
                db.execute(
                    "DELETE FROM kiosk_commands WHERE created_at < ?"
                    " AND id NOT IN (SELECT command_id FROM command_screenshots)",
                    (forget_before,),
                )
            db.execute(
                "INSERT INTO kiosk_commands (id, kiosk_id, kind, state, created_at, expires_at)"
                " VALUES (?, ?, ?, 'pending', ?, ?)",
                (command_id, kiosk_id, kind, created_at, expires_at),
            )
        return command_id

    def pending_commands(self, kiosk_id: str, now: str) -> int:
        row = self._one(
            "SELECT COUNT(*) AS n FROM kiosk_commands WHERE kiosk_id=? AND state='pending' AND expires_at > ?",
            kiosk_id, now,
        )  # fmt: skip
        return int(row["n"]) if row is not None else 0

    def command(self, command_id: str) -> Row | None:
        return self._one(f"SELECT {self._COMMAND_COLUMNS} WHERE c.id=?", command_id)

    def commands(self, kiosk_id: str | None = None, limit: int = 200) -> list[Row]:
        """Newest first."""
        return self._all(
            f"SELECT {self._COMMAND_COLUMNS} WHERE CAST(? AS TEXT) IS NULL OR c.kiosk_id=? ORDER BY c.created_at DESC LIMIT ?",
            kiosk_id, kiosk_id, limit,
        )  # fmt: skip

    def deliver_commands(self, kiosk_id: str, now: str) -> list[Row]:
        """The kiosk's pending commands that have not expired, now `delivered` (never again pending)."""
        if not self.pending_commands(kiosk_id, now):  # nearly every heartbeat: a read, no write
            return []
        # One conditional statement: two heartbeats of one kiosk at once (two central processes)
        # never both get the same command.
        rows = self._all(
            "UPDATE kiosk_commands SET state='delivered', delivered_at=?"
            " WHERE kiosk_id=? AND state='pending' AND expires_at > ? RETURNING *",
            now, kiosk_id, now,
        )  # fmt: skip
        return sorted(rows, key=lambda row: (row["created_at"], row["id"]))

    def finish_command(self, command_id: str, outcome: str, reason: str | None, now: str) -> bool:
        """The kiosk's result, kept once: only a delivered command takes one (a result that arrives
        after the expiry still counts: the kiosk ran it in time). False when it already had one."""
        finished = self._one(
            "UPDATE kiosk_commands SET state=?, reason=?, finished_at=? WHERE id=? AND state='delivered' RETURNING id",
            outcome, reason, now, command_id,
        )  # fmt: skip
        return finished is not None

    def store_screenshot(
        self, command_id: str, kiosk_id: str, png_base64: str, size: tuple[int, int], length: int, now: str
    ) -> None:
        """Kept with its command; only the kiosk's latest few are kept."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO command_screenshots (command_id, kiosk_id, png_base64, width, height, bytes, taken_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (command_id, kiosk_id, png_base64, size[0], size[1], length, now),
            )  # fmt: skip
            # The older ones go in one statement (no list read then deleted one by one).
            db.execute(
                "DELETE FROM command_screenshots WHERE kiosk_id=? AND command_id NOT IN (SELECT command_id"
                " FROM command_screenshots WHERE kiosk_id=? ORDER BY taken_at DESC, command_id DESC LIMIT ?)",
                (kiosk_id, kiosk_id, SCREENSHOTS_KEPT_PER_KIOSK),
            )  # fmt: skip

    def screenshot(self, command_id: str) -> Row | None:
        return self._one("SELECT * FROM command_screenshots WHERE command_id=?", command_id)

    # --- software releases (staged updates: the wheels kiosks download)
    def put_release(self, version: str, filename: str, sha256: str, wheel_base64: str, length: int) -> bool:
        """False when this version was already uploaded: a version names one wheel, for good (a kiosk
        that checked a hash must never be handed other bytes under the same name)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM software_releases WHERE version=?", (version,)).fetchone():
                return False
            db.execute(
                "INSERT INTO software_releases (version, filename, sha256, bytes, uploaded_at, wheel_base64)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (version, filename, sha256, length, utcnow().isoformat(), wheel_base64),
            )  # fmt: skip
        return True

    def releases(self) -> list[Row]:
        """Without their wheels (a listing must not read megabytes per release)."""
        return self._all(
            "SELECT version, filename, sha256, bytes, uploaded_at FROM software_releases ORDER BY uploaded_at"
        )

    def release(self, version: str) -> Row | None:
        return self._one(
            "SELECT version, filename, sha256, bytes, uploaded_at FROM software_releases WHERE version=?",
            version,
        )

    def release_wheel(self, version: str) -> str | None:
        row = self._one("SELECT wheel_base64 FROM software_releases WHERE version=?", version)
        return None if row is None else str(row["wheel_base64"])
