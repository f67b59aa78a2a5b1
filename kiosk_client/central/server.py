"""Running the reference central: in the foreground (CLI), or on its own thread (tests, demo)."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from ..core.staff_pin import hash_pin
from .app import create_app
from .guard import CentralOptions
from .store import Store

ADMIN_TOKEN_ENV = "KIOSK_CENTRAL_ADMIN_TOKEN"


def token_hint(token: str) -> str:
    """What may be shown of a secret (console, logs): enough to tell two apart, not to use one."""
    return f"{token[:4]}…"


def admin_token_file(path: Path) -> str:
    """The admin token kept in `path`, readable by its owner only; created on the first start.

    A file rather than the terminal: the start-up line ends up in journals and scroll-back that other
    people read; and rather than a command-line option, which every local user sees in `ps`.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise ValueError(
                f"{path} can be read by other users: the admin token in it may have leaked; "
                "delete the file (a new token is made) or `chmod 600` it"
            ) from None
        token = path.read_text().strip()
        if not token:
            raise ValueError(f"{path} is empty: delete it and a new admin token is made") from None
        return token
    token = secrets.token_urlsafe(24)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token


class CentralServer:
    """The reference central on the current event loop. `db_path`: a SQLite file, or a PostgreSQL URL.
    `reuse_port`: other processes may listen on the same port (SO_REUSEPORT; the kernel spreads the
    connections among them): several central processes on one PostgreSQL database."""

    def __init__(
        self,
        db_path: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_token: str | None = None,
        options: CentralOptions | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.store = Store(db_path)
        self.reuse_port = reuse_port
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.options = options or CentralOptions()
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self.url = ""

    def configure(self, config: dict[str, Any]) -> None:
        current = self.store.get_setting("kiosk_config") or {}
        config = dict(config)
        if "staff_pin" in config:  # as PUT /admin/config does: the PIN's hash only, never the PIN
            pin = config.pop("staff_pin")
            config["staff_pin_hash"] = None if pin is None else hash_pin(pin)
        current.update(config)
        self.store.put_setting("kiosk_config", current)

    async def start(self) -> str:
        self._runner = web.AppRunner(
            create_app(self.store, self.admin_token, self.options), access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.close()


class CentralThread:
    """The reference central on a thread of its own, so a test or the demo can use it from any loop."""

    def __init__(
        self,
        db_path: Path | str,
        admin_token: str | None = None,
        options: CentralOptions | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.server = CentralServer(db_path, host=host, admin_token=admin_token, options=options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="reference-central", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def admin_token(self) -> str:
        return self.server.admin_token

    def start(self) -> str:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> CentralThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
