"""The central's single statements through libpq directly (central/pg_statements.py), on a real
PostgreSQL server: the values the store sends and reads come back as psycopg's cursor gives them,
errors are psycopg's, each statement is prepared once per connection, and what this path does not
send goes through psycopg's cursor instead."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from kiosk_client.central.database import DatabaseUnavailable, PostgresDatabase
from kiosk_client.central.pg_statements import PreparedStatements, Unsupported

from .postgres_rig import new_database

TABLE = (
    "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, big BIGINT, flag BOOLEAN, x DOUBLE PRECISION, note TEXT)"
)


@pytest.fixture
def database() -> Iterator[PostgresDatabase]:
    db = PostgresDatabase(new_database())
    db.execute(TABLE)
    yield db
    db.close()


def test_values_go_and_come_back_as_psycopg_gives_them(database: PostgresDatabase) -> None:
    database.execute(
        "INSERT INTO t (id, n, big, flag, x, note) VALUES (?, ?, ?, ?, ?, ?)",
        ("a", 7, 2**40, True, 0.25, "é ? % $1 'quoted'"),
    )
    database.execute(
        "INSERT INTO t (id, n, big, flag, x, note) VALUES (?, ?, ?, ?, ?, ?)",
        ("b", -3, None, False, None, None),
    )
    fast = database.execute("SELECT * FROM t WHERE n > ? ORDER BY id", (-10,)).fetchall()
    with psycopg.connect(database.url, autocommit=True) as conn:
        slow = conn.execute("SELECT * FROM t WHERE n > %s ORDER BY id", (-10,)).fetchall()
    assert [tuple(row) for row in fast] == slow
    assert fast[0]["note"] == "é ? % $1 'quoted'" and fast[1]["flag"] is False and fast[0].keys()[0] == "id"
    count = database.execute(
        "SELECT COUNT(*) AS n, COALESCE(MAX(n), 0) AS top FROM t WHERE id=?", ("a",)
    ).fetchone()
    assert count is not None and (count["n"], count["top"]) == (1, 7)


def test_a_write_tells_how_many_rows_it_changed_and_returns_what_it_is_asked(
    database: PostgresDatabase,
) -> None:
    database.execute("INSERT INTO t (id, n) VALUES (?, ?)", ("a", 1))
    database.execute("INSERT INTO t (id, n) VALUES (?, ?)", ("b", 1))
    assert database.execute("UPDATE t SET n=n+1 WHERE n=?", (1,)).rowcount == 2
    assert database.execute("UPDATE t SET n=? WHERE id=?", (5, "none")).rowcount == 0
    returned = database.execute("UPDATE t SET n=? WHERE id=? RETURNING id, n", (9, "a")).fetchall()
    assert [tuple(r) for r in returned] == [("a", 9)]


def test_errors_are_psycopgs_and_the_connection_goes_on(database: PostgresDatabase) -> None:
    database.execute("INSERT INTO t (id, n) VALUES (?, ?)", ("a", 1))
    with pytest.raises(psycopg.errors.UniqueViolation):
        database.execute("INSERT INTO t (id, n) VALUES (?, ?)", ("a", 2))
    with pytest.raises(psycopg.errors.UndefinedColumn):
        database.execute("SELECT nothing FROM t WHERE id=?", ("a",))
    row = database.execute("SELECT n FROM t WHERE id=?", ("a",)).fetchone()
    assert row is not None and row["n"] == 1


def test_each_statement_is_prepared_once_per_connection(database: PostgresDatabase) -> None:
    for n in range(5):
        database.execute("INSERT INTO t (id, n) VALUES (?, ?)", (f"k{n}", n))
    prepared = database.execute(
        "SELECT COUNT(*) AS n FROM pg_prepared_statements WHERE name LIKE 'kiosk_%' AND statement LIKE 'INSERT%'"
    ).fetchone()
    assert prepared is not None and prepared["n"] == 1


def test_a_parameter_this_path_does_not_send_goes_through_psycopg(database: PostgresDatabase) -> None:
    statements = PreparedStatements(psycopg.connect(database.url, autocommit=True).pgconn)
    with pytest.raises(Unsupported):
        statements.execute("SELECT $1::bytea AS b", [b"\x00\x01"])
    row = database.execute("SELECT ?::bytea AS b", (b"\x00\x01",)).fetchone()
    assert row is not None and bytes(row["b"]) == b"\x00\x01"
    statements.pgconn.finish()


def test_a_lost_connection_is_said_unavailable_then_made_again(database: PostgresDatabase) -> None:
    database.execute("INSERT INTO t (id, n) VALUES (?, ?)", ("a", 1))
    with psycopg.connect(database.url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (database.backend_pid,))
    with pytest.raises(DatabaseUnavailable):
        database.execute("SELECT n FROM t WHERE id=?", ("a",))
    row = database.execute("SELECT n FROM t WHERE id=?", ("a",)).fetchone()  # a new connection, prepared anew
    assert row is not None and row["n"] == 1
