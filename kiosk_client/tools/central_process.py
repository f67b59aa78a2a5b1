"""The reference central in a child process (demo, benchmarks): isolated from the kiosk's process."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..central.server import ADMIN_TOKEN_ENV


class CentralProcess:
    """`db_path`: a SQLite file or a PostgreSQL URL; `host` is the address it listens on; `wrap`
    prefixes its command line, e.g. `ip netns exec NAME` to run it inside a field link's world
    namespace (see `link_emulator.FieldLink.netns_argv`); `workers`: processes sharing its port
    (PostgreSQL only), this one's child processes."""

    def __init__(
        self, db_path: Path | str, host: str = "127.0.0.1", wrap: Sequence[str] = (), workers: int = 1
    ) -> None:
        self._db = db_path
        self._host = host
        self._wrap = list(wrap)
        self._workers = workers
        self._process: subprocess.Popen[str] | None = None
        self.url = ""
        # Made here and handed down in the child's environment: the central never prints it, and
        # nothing else on the machine can read it (unlike a command-line argument).
        self.admin_token = secrets.token_urlsafe(24)

    def start(self) -> CentralProcess:
        self._process = subprocess.Popen(
            [
                *self._wrap,
                sys.executable,
                "-m",
                "kiosk_client",
                "central",
                "--db",
                str(self._db),
                "--host",
                self._host,
                "--port",
                "0",
                "--announce",
                *(["--workers", str(self._workers)] if self._workers != 1 else []),
            ],
            stdin=subprocess.PIPE,  # the child stops when this pipe closes, even if we are killed
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, ADMIN_TOKEN_ENV: self.admin_token},
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the reference central did not start (exit {self._process.wait(5)})")
        self.url = json.loads(line)["url"]
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> CentralProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BotProcess:
    """The clerk bot in a child process; its report is read from a JSON file when it exits."""

    MODULE: tuple[str, ...] = ("kiosk_client", "clerk-bot")

    def __init__(self, central_url: str, clerk_token: str, count: int, hold_s: float, report: Path) -> None:
        self.report_path = report
        self._process = subprocess.Popen(
            [
                sys.executable, "-m", *self.MODULE, "--central", central_url, f"--token={clerk_token}",
                "--count", str(count), "--hold", str(hold_s), "--report", str(report), "--child",
            ],
            stdin=subprocess.PIPE,  # the child stops (and closes what it opened) when this pipe closes
        )  # fmt: skip

    def wait(self, timeout: float) -> list[dict[str, object]]:
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            # Closing the pipe lets the child close what it opened (a browser); killing it outright
            # would orphan it.
            if self._process.stdin is not None:
                self._process.stdin.close()
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if not self.report_path.exists():
            return []
        return list(json.loads(self.report_path.read_text())["calls"])

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(5)
