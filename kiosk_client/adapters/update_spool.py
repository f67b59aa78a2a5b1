"""The kiosk's side of staged updates on disk (core/ports.UpdatesPort).

- the spool (default /var/lib/kiosk-client/updates, the kiosk user's): the downloaded wheel and
  `request.json`, which the root updater's path unit watches;
- the updater's status file (default /var/lib/kiosk-updater/status.json, root's, world-readable);
- the health mark (default /run/kiosk-client/healthy): the running version, once it is up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path

from ..core.releases import SHA256, VERSION, wheel_filename
from ..core.updates import InstallRequest, UpdaterReport
from .atomic_file import write_atomically

log = logging.getLogger(__name__)

REQUEST = "request.json"
BUSY = "busy"  # beside the health mark: why the kiosk must not be restarted now
MAX_STATUS_BYTES = 64 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def read_report(path: Path) -> UpdaterReport | None:
    """The updater's status file, or None when absent or unreadable (never a reason to fail)."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_STATUS_BYTES + 1)
        if len(raw) > MAX_STATUS_BYTES:
            return None
        data = json.loads(raw)
        failed = data.get("failed", [])
        return UpdaterReport(
            state=str(data["state"]),
            version=str(data["version"]),
            error=None if data.get("error") is None else str(data["error"])[:300],
            failed=frozenset(str(v) for v in failed if isinstance(v, str)),
            at=_moment(data.get("at")),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("the updater's status %s is unreadable: %s", path, exc)
        return None


class FileUpdates:
    def __init__(self, spool: Path, status_file: Path, health_mark: Path) -> None:
        self.spool = spool
        self.status_file = status_file
        self.health_mark = health_mark

    def wheel_path(self, version: str) -> Path:
        if not VERSION.match(version):
            raise ValueError(f"not a version: {version!r}")
        self.spool.mkdir(parents=True, exist_ok=True)
        return self.spool / wheel_filename(version)

    def has_wheel(self, version: str, sha256: str) -> bool:
        wanted = self.wheel_path(version)
        for old in self.spool.glob("*.whl*"):  # other versions, and downloads cut short
            if old != wanted:
                old.unlink(missing_ok=True)
        if wanted.is_symlink() or not wanted.is_file():
            return False
        if sha256_of(wanted) == sha256:
            return True
        wanted.unlink()  # damaged: downloaded again
        return False

    def request_pending(self) -> bool:
        return (self.spool / REQUEST).exists()

    def write_request(self, request: InstallRequest) -> None:
        if not SHA256.match(request.sha256) or "/" in request.wheel:
            raise ValueError("a malformed install request")
        self.spool.mkdir(parents=True, exist_ok=True)
        write_atomically(self.spool / REQUEST, json.dumps(request.to_json()).encode(), mode=0o644)

    def updater_report(self) -> UpdaterReport | None:
        return read_report(self.status_file)

    def mark_healthy(self, version: str) -> None:
        try:
            self.health_mark.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(
                self.health_mark, json.dumps({"version": version, "pid": os.getpid()}).encode(), mode=0o644
            )
        except OSError as exc:
            log.warning("the health mark %s could not be written: %s", self.health_mark, exc)

    def set_busy(self, reason: str | None) -> None:
        busy = self.health_mark.parent / BUSY
        if reason is None:
            busy.unlink(missing_ok=True)
            return
        busy.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(busy, reason.encode(), mode=0o644)
