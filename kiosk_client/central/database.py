"""The SQL connection under the central's Store: SQLite (embedded, the default) or PostgreSQL (several
central processes on one database). The Store writes one SQL for both; this layer is the difference.

The rules a Store method follows to work on both (see README, "The central at scale"):
- `?` placeholders (turned into `%s` for PostgreSQL); no `%` is special.
- Standard SQL both accept: `INSERT ... ON CONFLICT (key) DO UPDATE SET col=excluded.col` or `ON CONFLICT
  DO NOTHING` (not SQLite's `INSERT OR REPLACE` / `OR IGNORE`), `DELETE ... RETURNING`, column lists in
  INSERTs, the column `end` quoted (`"end"`, a reserved word in PostgreSQL), `CAST(? AS TEXT) IS NULL`
  rather than a bare `? IS NULL` (PostgreSQL must know a parameter's type).
- Read-modify-write in `Store._transaction()`, reading the rows it will change with `SELECT ... FOR
  UPDATE` (or `LOCK TABLE name IN SHARE ROW EXCLUSIVE MODE` when it inserts rows it first checked were
  absent): PostgreSQL locks them against the other central processes; SQLite's `BEGIN IMMEDIATE` already
  holds the whole database's write lock, so both are dropped there. Or one conditional statement
  (`UPDATE ... WHERE version=? RETURNING ...`, see `Store._change_call`): no transaction, fewest round
  trips, and whoever changed the row first wins.
- Rows are read by column name (`row["id"]`): both kinds of rows also take an index, but only SQLite's
  `PRAGMA` answers need it.
- A new column: `Database.add_column(table, column, declaration)` (it checks the column is missing).
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg

    from .pg_statements import PreparedStatements

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# The channel on which a change of a call's state is announced to every central process; payload: the
# appointment's id (PostgreSQL delivers a notification when its transaction commits).
CALL_CHANNEL = "kiosk_call"
# PostgreSQL refuses a notification of 8,000 bytes or more.
MAX_NOTIFY_BYTES = 7900
SCHEMA_LOCK = 0x6B696F736B  # an advisory lock's key: "kiosk"
_FOR_UPDATE = re.compile(r"\s+FOR\s+(NO\s+KEY\s+)?UPDATE(\s+OF\s+\w+(\s*,\s*\w+)*)?(\s+SKIP\s+LOCKED)?", re.I)
_LOCK_TABLE = re.compile(r"^\s*LOCK\s+TABLE\b", re.I)


class Row(Protocol):
    """A row: by column name (and by position)."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What a transaction's body writes through (sqlite3.Connection's `execute`)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


class DatabaseUnavailable(Exception):
    """The database cannot be reached (PostgreSQL down, restarting): the central answers 503."""


class DatabaseUrlError(ValueError):
    """The PostgreSQL URL cannot be read."""


def is_postgres_url(target: Path | str) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def redacted(url: str) -> str:
    """A database URL as it may be shown: without its password (`user:password@`, `password=`)."""
    return re.sub(r"(password=)[^&\s]*", r"\1***", re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url))


class Database(ABC):
    """One connection, used under `lock` (the central is one event loop per process; a lock because
    a few calls come from worker threads)."""

    dialect: str

    def __init__(self) -> None:
        self.lock = threading.Lock()

    @abstractmethod
    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        """One statement, committed on its own (hold `lock`)."""

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """All of it is written, or none (hold `lock`)."""

    @abstractmethod
    def add_column(self, table: str, column: str, declaration: str) -> None:
        """Adds the column unless the table has it (a database made by an older central)."""

    @abstractmethod
    def create_schema(
        self, script: str, columns: Sequence[tuple[str, str, str]], rowid_tables: Sequence[str]
    ) -> None:
        """The tables (`CREATE TABLE IF NOT EXISTS` statements separated by `;`), then the columns
        added since (table, column, declaration). `rowid_tables`: the tables ordered by insertion
        (`ORDER BY ..., rowid`): SQLite has a rowid, PostgreSQL gets a column of that name."""

    @property
    def shared(self) -> bool:
        """Several central processes may use this database at once."""
        return False

    async def listen(self, announce: Callable[[str], None]) -> None:
        """Calls `announce` with what another process announced of each change of a call, until
        cancelled (see PostgresDatabase). Only where `shared`."""
        raise NotImplementedError("one process only: nothing to listen to")

    @abstractmethod
    def close(self) -> None: ...


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a power cut may lose the
        # last heartbeats, never the database. FULL made each of a fleet's heartbeats wait on the
        # disk, in the event loop (bench central: a third of the central's time at 3,000 kiosks).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")

    @staticmethod
    def _sql(sql: str) -> str:
        return _FOR_UPDATE.sub("", sql)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        if _LOCK_TABLE.match(sql):
            return self._db.execute("SELECT 0 WHERE 0")  # BEGIN IMMEDIATE holds the database's write lock
        return self._db.execute(self._sql(sql), tuple(parameters))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def create_schema(
        self, script: str, columns: Sequence[tuple[str, str, str]], rowid_tables: Sequence[str]
    ) -> None:
        self._db.executescript(script)
        for table, column, declaration in columns:
            self.add_column(table, column, declaration)

    def add_column(self, table: str, column: str, declaration: str) -> None:
        if column not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}:
            self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        self._db.close()


class PgRow:
    """A PostgreSQL row as sqlite3.Row reads: by column name or position, `keys()`, `dict(row)`."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, key: str | int, /) -> Any:
        return self._values[key] if isinstance(key, int) else self._values[self._index[key]]

    def keys(self) -> list[str]:
        return list(self._index)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"PgRow({dict(zip(self._index, self._values, strict=True))!r})"


def _pg_rows(cursor: Any) -> Any:
    description = cursor.description or []
    index = {column.name: n for n, column in enumerate(description)}

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(index, values)

    return make


class PostgresDatabase(Database):
    """One connection per central process (autocommit; transactions explicit), plus, once asked for
    `listen()`, a listening connection of its own. A lost connection is made again at the next
    statement; meanwhile statements raise DatabaseUnavailable."""

    dialect = "postgresql"
    CONNECT_TIMEOUT_S = 5

    def __init__(self, url: str) -> None:
        super().__init__()
        import psycopg

        from . import pg_statements  # it imports psycopg too

        self._psycopg = psycopg
        self._pg_statements = pg_statements
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._statements: PreparedStatements | None = None
        self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        self._conn = None
        try:
            conn = self._psycopg.connect(
                self.url, autocommit=True, row_factory=_pg_rows, connect_timeout=self.CONNECT_TIMEOUT_S
            )
        except self._psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot reach PostgreSQL at {redacted(self.url)}: {exc}") from exc
        except self._psycopg.ProgrammingError as exc:  # libpq could not parse it
            raise DatabaseUrlError(
                f"{redacted(self.url)} is not a PostgreSQL URL libpq reads: {exc}"
            ) from exc
        self._conn = conn
        self._statements = self._pg_statements.PreparedStatements(conn.pgconn)  # nothing prepared on it yet
        return conn

    @property
    def backend_pid(self) -> int | None:
        """The server process of this process's connection (its own notifications carry it)."""
        conn = self._conn
        return None if conn is None or conn.closed else conn.info.backend_pid

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _run(self, conn: psycopg.Connection[Any], sql: str, parameters: Sequence[Any]) -> Cursor:
        try:
            return conn.execute(self._sql(sql), tuple(parameters))
        except (self._psycopg.OperationalError, self._psycopg.InterfaceError) as exc:
            if conn.broken or conn.closed:
                raise DatabaseUnavailable(f"lost PostgreSQL: {exc}") from exc
            raise

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        conn = self._connect()
        assert self._statements is not None  # made with the connection
        try:
            return self._statements.execute(self._numbered(sql), parameters)
        except self._pg_statements.Unsupported:
            return self._run(conn, sql, parameters)
        except self._psycopg.Error as exc:
            if conn.broken or conn.closed or conn.pgconn.status != self._psycopg.pq.ConnStatus.OK:
                raise DatabaseUnavailable(f"lost PostgreSQL: {exc}") from exc
            raise

    @staticmethod
    @functools.lru_cache(maxsize=512)
    def _numbered(sql: str) -> str:
        """? placeholders as libpq's $1, $2… (the store's SQL has no ? inside its literals)."""
        parts = sql.split("?")
        return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        # In pipeline mode: BEGIN goes with the first statement, COMMIT with the last write, and a
        # statement whose result is not read does not wait for it (a call's change: two round trips
        # to the server instead of five; each is ≈ 0.1 ms, in which this process's loop waits).
        conn = self._connect()
        try:
            with conn.pipeline(), conn.transaction():
                yield _PgTransaction(self, conn)
        except (self._psycopg.OperationalError, self._psycopg.InterfaceError) as exc:
            if conn.broken or conn.closed:
                raise DatabaseUnavailable(f"lost PostgreSQL: {exc}") from exc
            raise

    def add_column(self, table: str, column: str, declaration: str) -> None:
        self.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {declaration}")

    def create_schema(
        self, script: str, columns: Sequence[tuple[str, str, str]], rowid_tables: Sequence[str]
    ) -> None:
        with self.transaction() as db:
            # Several central processes starting at once: one creates, the others then find it made.
            db.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            for table, column, declaration in columns:
                db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {declaration}")
            for table in rowid_tables:
                db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS rowid BIGSERIAL")
            # Every change of a call is announced to every central process when it commits, whoever
            # wrote it (this central, another one, a script): a trigger, which costs no round trip.
            # The announcement carries the call itself (JSON) when it fits in a notification: the
            # processes whose long polls wait on it then answer them without reading it back, a round
            # trip on the way of every offer and answer. A call too big (SDPs of many candidates) is
            # announced by its appointment id, and read.
            db.execute(
                "CREATE OR REPLACE FUNCTION kiosk_announce_call() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "DECLARE payload text; BEGIN "
                "payload := json_build_object('appointment_id', NEW.appointment_id, 'version', NEW.version,"
                " 'call_id', NEW.call_id, 'offer', NEW.offer, 'answer', NEW.answer, 'ended', NEW.ended,"
                " 'ended_by', NEW.ended_by, 'reason', NEW.reason)::text; "
                f"IF octet_length(payload) > {MAX_NOTIFY_BYTES} THEN payload := NEW.appointment_id; END IF; "
                f"PERFORM pg_notify('{CALL_CHANNEL}', payload); RETURN NEW; END $$"
            )
            db.execute(
                "CREATE OR REPLACE TRIGGER kiosk_announce_call AFTER INSERT OR UPDATE ON calls "
                "FOR EACH ROW EXECUTE FUNCTION kiosk_announce_call()"
            )

    @property
    def shared(self) -> bool:
        return True

    async def listen(self, announce: Callable[[str], None]) -> None:
        """Calls `announce` with "" once listening (and again after each reconnection: whatever changed
        meanwhile was missed, so every waiter should look again), then with what another process
        announced of each change of a call: the call as JSON, or its appointment id. Reconnects (every
        second) while PostgreSQL is away; runs until cancelled.

        The listening socket is read by a callback of the event loop itself, which announces at once:
        through psycopg's `notifies()` generator, each announcement took two more turns of the loop
        than a change made in this process, and under a burst of call set-ups each turn is the whole
        backlog's (measured: answers relayed from another process 130 ms later at the median)."""
        import asyncio

        psycopg = self._psycopg
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=self.CONNECT_TIMEOUT_S
                )
            except psycopg.OperationalError:
                await asyncio.sleep(1.0)
                continue
            try:
                await self._listen_on(conn, announce)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()
            await asyncio.sleep(1.0)

    async def _listen_on(self, conn: psycopg.AsyncConnection[Any], announce: Callable[[str], None]) -> None:
        """Until the connection is lost."""
        import asyncio

        psycopg = self._psycopg
        loop = asyncio.get_running_loop()
        lost = asyncio.Event()
        pgconn = conn.pgconn
        fd = pgconn.socket

        def deliver(notify: Any) -> None:
            if notify.pid != self.backend_pid:  # this process woke its own waiters already
                announce(notify.payload)

        def readable() -> None:
            try:
                pgconn.consume_input()
                while (raw := pgconn.notifies()) is not None:
                    deliver(psycopg.Notify(raw.relname.decode(), raw.extra.decode(), raw.be_pid))
            except psycopg.Error:
                lost.set()
                loop.remove_reader(fd)

        conn.add_notify_handler(deliver)  # those that come while it runs SELECT 1, below
        try:
            await conn.execute(f"LISTEN {CALL_CHANNEL}")
            announce("")
            while not lost.is_set():
                loop.add_reader(fd, readable)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), 10.0)
                loop.remove_reader(fd)
                if not lost.is_set():
                    # A connection dropped without a word is noticed here.
                    await conn.execute("SELECT 1")
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _PgTransaction:
    def __init__(self, database: PostgresDatabase, conn: psycopg.Connection[Any]) -> None:
        self._database, self._conn = database, conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self._database._run(self._conn, sql, parameters)


def open_database(target: Path | str) -> Database:
    """A PostgreSQL URL (postgresql://…) or the path of a SQLite file."""
    if is_postgres_url(target):
        return PostgresDatabase(str(target))
    return SqliteDatabase(target)
