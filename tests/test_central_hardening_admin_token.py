"""The admin token is never printed or logged whole: `kiosk-client central` keeps it in a file only
its owner can read (or takes it from $KIOSK_CENTRAL_ADMIN_TOKEN), and shows a short prefix."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from kiosk_client.central.admin import CentralAdmin
from kiosk_client.tools.central_process import CentralProcess

ENV = {k: v for k, v in os.environ.items() if k != "KIOSK_CENTRAL_ADMIN_TOKEN"}


@contextmanager
def central_command(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "kiosk_client", "-v", "central", "--port", "0", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or ENV,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(10)


def kiosks(url: str, token: str) -> int:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        return client.get("/api/v1/admin/kiosks").status_code


def test_the_token_is_kept_in_an_owner_only_file_and_only_a_prefix_is_shown(tmp_path: Path) -> None:
    db = tmp_path / "central.db"
    with central_command("--db", str(db)) as process:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        token_file = tmp_path / "central.db.admin-token"
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token not in line and token[:8] not in line
        assert f"{token[:4]}…" in line and str(token_file) in line
        url = re.search(r"on (http://\S+) ", line)
        assert url is not None
        assert kiosks(url.group(1), token) == 200
        assert kiosks(url.group(1), token[:-1]) == 401
        process.terminate()
        output = line + process.stdout.read() + process.stderr.read()
    assert token not in output and token[:8] not in output

    # A restart keeps the token (scripts keep working) and still does not print it.
    with central_command("--db", str(db)) as again:
        assert again.stdout is not None
        line = again.stdout.readline()
        url = re.search(r"on (http://\S+) ", line)
        assert url is not None and token not in line
        assert kiosks(url.group(1), token) == 200


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text("a-token-that-may-have-leaked-already\n")
    token_file.chmod(0o644)
    with central_command("--db", str(tmp_path / "c.db"), "--admin-token-file", str(token_file)) as process:
        assert process.wait(30) == 2
        assert process.stdout is not None and process.stderr is not None
        out, err = process.stdout.read(), process.stderr.read()
    assert "can be read by other users" in err and "a-token-that" not in out + err


def test_the_token_can_come_from_the_environment(tmp_path: Path) -> None:
    token = "environment-token-0123456789abcdef"
    env = {**ENV, "KIOSK_CENTRAL_ADMIN_TOKEN": token}
    with central_command("--db", str(tmp_path / "c.db"), "--announce", env=env) as process:
        assert process.stdout is not None and process.stdin is not None
        announced = json.loads(process.stdout.readline())
        assert set(announced) == {"url"}  # the parent that chose the token needs nothing back
        assert kiosks(announced["url"], token) == 200
        process.stdin.close()  # --announce: the central stops when its parent's pipe closes
        assert process.wait(10) == 0
    assert not (tmp_path / "c.db.admin-token").exists()


def test_the_demo_and_benchmarks_still_get_the_token(tmp_path: Path) -> None:
    with CentralProcess(tmp_path / "c.db") as central:
        admin = CentralAdmin(central.url, central.admin_token)
        try:
            assert admin.create_kiosk("Borne 1", "Mairie").startswith("kiosk_")
        finally:
            admin.close()
