"""The PdfRenderer port over poppler's command-line tools (Debian poppler-utils), out of process.

A PDF from the clerk is untrusted: it is never parsed in the kiosk's process. `pdfinfo` counts its
pages and `pdftoppm` draws them as PNG images, each in a subprocess of its own session with a
timeout (its whole process group is killed past it) and resource limits set by util-linux's
`prlimit` (address space, CPU seconds, file size, open files), so a hostile file can cost seconds of
a core and some memory, never hang or crash the kiosk.

Why not Qt's QtPdf: the PySide6 6.12 wheels do not ship the QtPdf module (only a QML plugin), and it
would parse in the kiosk's own process. Why not pypdfium2 in a worker: it would need a Python
interpreter per document (≈0.3 s and 40 MB) for what two small C programs do.

The PDF is written for the tools' sake to a private folder (0700) in memory-backed storage (the
user's runtime folder or /dev/shm) and the folder is removed as soon as the pages are read back:
the pages then live in memory only. `leftovers` and `wipe` serve the reset check between citizens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import tempfile
from pathlib import Path

from ..core.printing import PdfRefused

log = logging.getLogger(__name__)

FOLDER = "kiosk-client-print"
INFO_TIMEOUT_S = 10.0
RENDER_TIMEOUT_S = 45.0
PAGE_WIDTH_PX = 1100  # drawn this wide; the screen scales it down to what it has
MAX_PNG_BYTES = 8 * 1024 * 1024
LIMITS = (
    "--as=1073741824",  # 1 GiB of address space
    "--cpu=30",  # CPU seconds
    "--fsize=67108864",  # no file over 64 MiB
    "--nofile=64",
    "--core=0",
)
_PAGES = re.compile(rb"^Pages:\s+(\d+)\s*$", re.M)


def memory_backed_root() -> Path:
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if candidate and Path(candidate).is_dir() and os.access(candidate, os.W_OK):
            return Path(candidate)
    return Path(tempfile.gettempdir())


class PopplerRenderer:
    def __init__(self, root: Path | None = None, *, folder: str = FOLDER, tools: str = "/usr/bin") -> None:
        self._root = (root or memory_backed_root()) / folder
        self._tools = Path(tools)

    async def render(self, data: bytes, max_pages: int) -> tuple[bytes, ...]:
        if not data.startswith(b"%PDF-"):
            raise PdfRefused("not_pdf", "the file does not start as a PDF does")
        folder = await asyncio.to_thread(self._folder, data)
        try:
            pages = await self._count_pages(folder)
            if pages > max_pages:
                raise PdfRefused("too_many_pages", f"{pages} pages, at most {max_pages}")
            return await self._draw(folder, pages)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    def _folder(self, data: bytes) -> Path:
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = self._root / f"{os.getpid()}-{secrets.token_hex(8)}"
        folder.mkdir(mode=0o700)
        descriptor = os.open(folder / "document.pdf", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        return folder

    async def _count_pages(self, folder: Path) -> int:
        code, out, err = await self._run(
            [str(self._tools / "pdfinfo"), "document.pdf"], folder, INFO_TIMEOUT_S
        )
        if code != 0:
            if b"password" in err.lower() or b"encrypt" in err.lower():
                raise PdfRefused("encrypted", "the PDF is protected by a password")
            raise PdfRefused("unreadable", f"pdfinfo could not read it (exit {code})")
        if re.search(rb"^Encrypted:\s+yes", out, re.M) and b"print:no" in out.replace(b" ", b""):
            raise PdfRefused("encrypted", "the PDF forbids printing")
        match = _PAGES.search(out)
        if match is None or int(match.group(1)) < 1:
            raise PdfRefused("unreadable", "the PDF has no page")
        return int(match.group(1))

    async def _draw(self, folder: Path, pages: int) -> tuple[bytes, ...]:
        argv = [
            str(self._tools / "pdftoppm"),
            "-png",
            "-f",
            "1",
            "-l",
            str(pages),
            "-scale-to-x",
            str(PAGE_WIDTH_PX),
            "-scale-to-y",
            "-1",
            "document.pdf",
            "page",
        ]
        code, _, _ = await self._run(argv, folder, RENDER_TIMEOUT_S)
        files = await asyncio.to_thread(lambda: sorted(folder.glob("page-*.png")))
        if code != 0 or len(files) != pages:
            raise PdfRefused("unreadable", f"pdftoppm could not draw every page (exit {code})")
        return tuple(await asyncio.to_thread(_read_pages, files))

    async def _run(self, argv: list[str], folder: Path, timeout_s: float) -> tuple[int, bytes, bytes]:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": str(folder)}
        process = await asyncio.create_subprocess_exec(
            "prlimit",
            *LIMITS,
            "--",
            *argv,
            cwd=folder,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout kills whatever it started
        )
        try:
            async with asyncio.timeout(timeout_s):
                out, err = await process.communicate()
        except TimeoutError:
            _kill(process.pid)
            await process.wait()
            log.warning("printing: %s took over %.0f s and was killed", Path(argv[0]).name, timeout_s)
            raise PdfRefused("unreadable", "reading the PDF took too long") from None
        except asyncio.CancelledError:
            _kill(process.pid)
            with contextlib.suppress(Exception):
                await asyncio.shield(process.wait())
            raise
        if process.returncode is not None and process.returncode < 0:
            log.warning("printing: %s ended by signal %d", Path(argv[0]).name, -process.returncode)
        return process.returncode or 0, out[:65536], err[:65536]

    def leftovers(self) -> list[str]:
        if not self._root.exists():
            return []
        return [str(p.relative_to(self._root.parent)) for p in self._root.rglob("*") if not p.is_dir()]

    def wipe(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read_pages(files: list[Path]) -> list[bytes]:
    pages = []
    for path in files:
        if path.stat().st_size > MAX_PNG_BYTES:
            raise PdfRefused("unreadable", "a page drawn too large")
        pages.append(path.read_bytes())
    return pages
