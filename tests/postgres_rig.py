"""One private PostgreSQL server per test process (kiosk_client/tools/postgres_server.py), started at
first use and stopped when the process ends; each test gets a database of its own."""

from __future__ import annotations

import atexit
import itertools
import os

import pytest

from kiosk_client.tools.postgres_server import PostgresServer, PostgresUnavailable

_server: PostgresServer | None = None
_names = itertools.count()


def postgres_server() -> PostgresServer:
    """The server; a test skips only where PostgreSQL cannot be installed (not root, not CI)."""
    global _server
    if _server is None:
        try:
            server = PostgresServer(durable=False)
        except PostgresUnavailable as exc:
            if os.geteuid() == 0 or os.environ.get("CI"):
                pytest.fail(f"{exc}: scripts/bootstrap.sh installs it (as root); CI must run these tests")
            pytest.skip(f"{exc}; not root, so scripts/bootstrap.sh could not install it")
        _server = server.start()
        atexit.register(server.stop)
    return _server


def new_database() -> str:
    """The URL of a new, empty database on the server."""
    return postgres_server().create_database(f"central_{os.getpid()}_{next(_names)}")
