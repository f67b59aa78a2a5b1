"""The documents of the current session as files, for the form view's file chooser only.

The chooser needs paths; the documents otherwise live encrypted in the outbox. They are written in
a private folder in memory-backed storage (the user's runtime folder or /dev/shm, 0700), and the
folder is wiped at the end of every session and at start-up: nothing of one citizen is offered to
the next.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER = "kiosk-client-documents"
SESSION_FOLDER = re.compile(r"(\d+)-[0-9a-f]{16}")


def memory_backed_root() -> Path:
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if candidate and Path(candidate).is_dir() and os.access(candidate, os.W_OK):
            return Path(candidate)
    return Path(tempfile.gettempdir())


class SessionFiles:
    def __init__(self, root: Path | None = None) -> None:
        self._root = (root or memory_backed_root()) / FOLDER
        self._folder: Path | None = None
        self._paths: list[str] = []
        self.clear_all()  # a crash may have left a session's files behind

    def add(self, name: str, data: bytes) -> Path:
        if self._folder is None:
            self._root.mkdir(mode=0o700, exist_ok=True)
            self._folder = self._root / f"{os.getpid()}-{secrets.token_hex(8)}"
            self._folder.mkdir(mode=0o700)
        safe = Path(name).name or "document.pdf"
        path = self._folder / safe
        counter = 1
        while path.exists():
            counter += 1
            path = self._folder / f"{Path(safe).stem} ({counter}){Path(safe).suffix}"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        self._paths.append(str(path))
        return path

    def paths(self) -> list[str]:
        return [p for p in self._paths if Path(p).exists()]

    def clear(self) -> None:
        """The session ended: its files go."""
        folder, self._folder = self._folder, None
        self._paths = []
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def clear_all(self) -> None:
        """At start-up (and when staff restart a kiosk): everything but another live kiosk's session."""
        self.clear()
        for entry in self._entries():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def leftovers(self) -> list[str]:
        """What is still in the folder (names relative to it, never content): after `clear`, nothing."""
        found = []
        for entry in self._entries():
            if entry.is_dir() and not entry.is_symlink():
                inside = [str(p.relative_to(self._root)) for p in entry.rglob("*") if not p.is_dir()]
                found.extend(inside or [entry.name + "/"])
            else:
                found.append(entry.name)
        return found

    def _entries(self) -> list[Path]:
        if not self._root.is_dir():
            return []
        return [e for e in self._root.iterdir() if not _another_live_kiosk(e.name)]


def _another_live_kiosk(name: str) -> bool:
    match = SESSION_FOLDER.fullmatch(name)
    if match is None or int(match.group(1)) == os.getpid():
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
