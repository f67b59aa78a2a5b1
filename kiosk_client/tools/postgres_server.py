"""A private PostgreSQL server for the tests and `bench central`: `initdb` in a temporary folder, the
server listening on a Unix socket in that folder only (no TCP port), stopped and removed after.

PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (Debian's package
makes it) or else `nobody`, which owns the folder. Needs the server's binaries (Debian: `postgresql`,
installed by scripts/bootstrap.sh)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "postgres_bindir"]


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed here."""


def postgres_bindir() -> Path | None:
    """Where initdb, pg_ctl and postgres are: $KIOSK_POSTGRES_BINDIR, Debian's newest version, or PATH."""
    if configured := os.environ.get("KIOSK_POSTGRES_BINDIR"):
        return Path(configured)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresServer:
    """`with PostgresServer() as pg: url = pg.create_database("central")`."""

    def __init__(self, *, durable: bool = True, max_connections: int = 200) -> None:
        """`durable=False`: no fsync at all (tests: a crash loses the throw-away cluster anyway).
        Either way commits do not wait on the disk (`synchronous_commit=off`, as the central's SQLite
        runs with synchronous=NORMAL: a power cut may lose the last commits, never the database)."""
        bindir = postgres_bindir()
        if bindir is None or not (bindir / "initdb").exists():
            raise PostgresUnavailable(
                "PostgreSQL's server is not installed (Debian: apt-get install postgresql; "
                "scripts/bootstrap.sh does it as root)"
            )
        self.bindir = bindir
        self.durable = durable
        self.max_connections = max_connections
        self.folder: Path | None = None
        self.user = ""  # the database superuser (the system user the server runs as)
        self._run_as: list[str] = []

    @property
    def socket_dir(self) -> Path:
        assert self.folder is not None, "not started"
        return self.folder

    def _system_user(self) -> str:
        if os.geteuid() != 0:
            return pwd.getpwuid(os.geteuid()).pw_name
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                return name
        raise PostgresUnavailable("running as root, and there is no `postgres` or `nobody` user to run it as")

    def _cmd(self, *argv: str) -> list[str]:
        # Run in the server's folder (`cwd=`): the unprivileged user may not enter the caller's.
        return [*self._run_as, *argv]

    def start(self) -> PostgresServer:
        self.user = self._system_user()
        self.folder = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            self._run_as = ["runuser", "-u", self.user, "--"]
        data = self.folder / "data"
        try:
            subprocess.run(
                self._cmd(
                    str(self.bindir / "initdb"), "-D", str(data), "-U", self.user, "--auth=trust",
                    "-E", "UTF8", "--locale=C", "--no-sync",
                ),
                check=True, capture_output=True, text=True, timeout=120, cwd=self.folder,
            )  # fmt: skip
            self.launch()
        except subprocess.CalledProcessError as exc:
            log = self.folder / "server.log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.strip()} {detail}") from exc
        return self

    def launch(self) -> None:
        """Starts the server on the cluster made by `start` (again after `halt`)."""
        folder = self.socket_dir
        options = [
            "-c listen_addresses=''",
            f"-c unix_socket_directories={folder}",
            f"-c max_connections={self.max_connections}",
            "-c synchronous_commit=off",
            "-c shared_buffers=64MB",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c full_page_writes=off"]
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "server.log"),
                "-o", " ".join(options), "-w", "-t", "60", "start",
            ),
            check=True, capture_output=True, text=True, timeout=90, cwd=folder,
        )  # fmt: skip

    def halt(self) -> None:
        """Stops the server, keeping its cluster (`launch` starts it again): a database going down for a
        restart. Its clients are disconnected; what was committed is kept (a "fast" shutdown: with
        synchronous_commit=off, an "immediate" one, a crash, may lose the last commits)."""
        data = self.socket_dir / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                self._cmd(str(self.bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
                capture_output=True,
                timeout=60,
                cwd=self.socket_dir,
            )

    def url(self, database: str = "postgres") -> str:
        """libpq's URL form for a Unix socket: the folder as `host`."""
        return f"postgresql:///{database}?host={self.socket_dir}&user={self.user}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        import psycopg

        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: letters, digits and _ only")
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    @property
    def pid(self) -> int | None:
        """The postmaster's process id (its children are the connections)."""
        if self.folder is None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        return None

    def stop(self) -> None:
        if self.folder is None:
            return
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
