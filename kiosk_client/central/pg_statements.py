"""The central's single statements on PostgreSQL, sent through libpq directly (psycopg's `pgconn`).

Every kiosk's schedule poll and heartbeat, and every step of a call's set-up, is one statement outside
any transaction. Through psycopg's cursors each costs ≈ 110 µs of this process's CPU more than the
statement itself (cursor, adaptation, result machinery: measured 155 µs against 43 µs for the
appointment of a call, on these machines), and a central process is one event loop: under a burst of
call set-ups, that CPU is what the answers queue behind. Here, each statement is prepared once per
connection and executed by name, its parameters sent as text and its values read from text by
column type: the types the central's schema uses (text, integers, booleans) and nothing else.
Transactions and anything unusual go through psycopg as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import errors, pq

from .database import PgRow

# Type OIDs: int8, int2, int4, oid / bool / float4, float8 (parameters typed as these; text ones are
# sent untyped, as psycopg does, for the server to infer from their use).
INT8, INT2, INT4, OID = 20, 21, 23, 26
BOOL = 16
FLOAT4, FLOAT8 = 700, 701
INTEGERS = frozenset({INT8, INT2, INT4, OID})
MAX_PREPARED = 200  # the central's statements are constants; beyond this, executed unprepared


class Unsupported(Exception):
    """A parameter this path does not send (raised before anything is sent): psycopg's cursor does
    it instead."""


class PgResult:
    """A statement's outcome as the store reads it (Cursor protocol): rows, or the rows it changed."""

    def __init__(self, rows: list[PgRow], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> PgRow | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[PgRow]:
        return self._rows


def _parameter(value: Any) -> tuple[bytes | None, int]:
    if value is None:
        return None, 0
    if isinstance(value, bool):  # before int: a bool is an int
        return (b"t" if value else b"f"), BOOL
    if isinstance(value, int):
        return str(value).encode(), INT8
    if isinstance(value, str):
        return value.encode(), 0
    if isinstance(value, float):
        return repr(value).encode(), FLOAT8
    raise Unsupported(type(value).__name__)


def _reader(oid: int) -> Any:
    """The schema's types; any other is read as its text (never raised: the statement has run)."""
    if oid in INTEGERS:
        return int
    if oid == BOOL:
        return lambda raw: raw == b"t"
    if oid in (FLOAT4, FLOAT8):
        return float
    return bytes.decode


class PreparedStatements:
    """One connection's prepared statements, by SQL text (in libpq's $n form)."""

    def __init__(self, pgconn: pq.abc.PGconn) -> None:
        self.pgconn = pgconn
        self._names: dict[tuple[str, tuple[int, ...]], bytes] = {}

    def execute(self, sql: str, parameters: Sequence[Any]) -> PgResult:
        values, types = [], []
        for value in parameters:
            raw, oid = _parameter(value)
            values.append(raw)
            types.append(oid)
        key = (sql, tuple(types))
        name = self._names.get(key)
        pgconn = self.pgconn
        if name is None and len(self._names) < MAX_PREPARED:
            name = f"kiosk_{len(self._names)}".encode()
            self._check(pgconn.prepare(name, sql.encode(), types))
            self._names[key] = name
        if name is None:
            result = pgconn.exec_params(sql.encode(), values, types)
        else:
            result = pgconn.exec_prepared(name, values)  # type: ignore[arg-type]  # None is NULL, as psycopg sends it
        self._check(result)
        if result.status == pq.ExecStatus.COMMAND_OK:
            return PgResult([], result.command_tuples or 0)
        columns = range(result.nfields)
        names = {(result.fname(n) or b"").decode(): n for n in columns}
        readers = [_reader(result.ftype(n)) for n in columns]
        rows = []
        for r in range(result.ntuples):
            row = []
            for n in columns:
                raw = result.get_value(r, n)
                row.append(None if raw is None else readers[n](raw))
            rows.append(PgRow(names, row))
        return PgResult(rows, result.command_tuples or len(rows))

    def _check(self, result: pq.abc.PGresult) -> None:
        if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            return
        # The error psycopg's cursor would raise (OperationalError when the connection is gone).
        raise errors.error_from_result(result, encoding="utf-8")
