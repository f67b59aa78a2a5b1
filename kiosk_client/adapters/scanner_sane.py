"""The scanner port over pyinsane2, which runs in a worker process (scanner_worker) per job.

A fresh process per job: a scanner plugged in after start-up is found on the next job, and a driver
that crashes or hangs is killed without touching the kiosk. The worker reports progress while it
reads; if it goes silent for `stall_timeout_s` it is considered hung and killed. Pages already
received are kept (the error says how many).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from ..core.errors import (
    FeederEmpty,
    NoScanner,
    PaperJammed,
    ScannerDisconnected,
    ScannerError,
    ScannerNotResponding,
    SourceUnsupported,
)
from ..core.scanning import PageSink, RawPage, ScannerInfo, ScanRequest, ScanSource

log = logging.getLogger(__name__)

MAX_HEADER = 64 * 1024
MAX_PAGE_BYTES = 400 * 1024 * 1024  # an A4 colour page at 1200 dpi
ERRORS: dict[str, type[ScannerError]] = {
    "no_scanner": NoScanner,
    "feeder_empty": FeederEmpty,
    "paper_jammed": PaperJammed,
    "scanner_disconnected": ScannerDisconnected,
    "source_unsupported": SourceUnsupported,
}


class WorkerProtocolError(ScannerError):
    code = "scanner_failed"


class SaneScanner:
    def __init__(
        self,
        device: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        stall_timeout_s: float = 30.0,
        worker: tuple[str, ...] = (sys.executable, "-m", "kiosk_client.adapters.scanner_worker"),
    ) -> None:
        self._device = device
        self._env = dict(os.environ) | dict(env or {}) | {"PYINSANE_SINGLE_THREAD": "1"}
        self._stall_timeout_s = stall_timeout_s
        self._worker = worker
        self.worker_pid: int | None = None  # the running worker's, for tests and diagnostics
        self._lock = asyncio.Lock()  # one scanner, one job at a time

    async def devices(self) -> list[ScannerInfo]:
        async with self._lock:
            found: list[ScannerInfo] = []

            async def on_frame(header: dict[str, Any], _: bytes) -> bool:
                if header.get("type") == "devices":
                    found.extend(_device_info(d) for d in header.get("devices", []) if isinstance(d, dict))
                    return True
                return False

            await self._run({"op": "devices"}, on_frame, pages=lambda: 0)
            return found

    async def scan(self, request: ScanRequest, on_page: PageSink) -> int:
        async with self._lock:
            job = {
                "op": "scan",
                "device": request.device or self._device,
                "source": request.source.value,
                "dpi": request.dpi,
                "colour": request.colour,
            }
            count = 0

            async def on_frame(header: dict[str, Any], payload: bytes) -> bool:
                nonlocal count
                kind = header.get("type")
                if kind == "page":
                    page = _page(header, payload)
                    count += 1
                    on_page(page)
                elif kind == "done":
                    return True
                return False

            await self._run(job, on_frame, pages=lambda: count)
            return count

    async def _run(self, job: dict[str, Any], on_frame: Any, pages: Any) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._worker,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self._env,
            limit=1 << 20,
        )
        self.worker_pid = process.pid
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(json.dumps(job).encode() + b"\n")
            await process.stdin.drain()
            process.stdin.close()
            while True:
                try:
                    async with asyncio.timeout(self._stall_timeout_s):
                        header, payload = await _read_frame(process.stdout)
                except TimeoutError:
                    raise ScannerNotResponding(
                        f"the scanner has not answered for {self._stall_timeout_s:.0f} s", pages()
                    ) from None
                except asyncio.IncompleteReadError:
                    code = await process.wait()
                    raise ScannerError(f"the scanner driver stopped (exit {code})", pages()) from None
                if header.get("type") == "error":
                    error = ERRORS.get(str(header.get("code")), ScannerError)
                    raise error(str(header.get("message", "scanner error"))[:300], pages())
                if await on_frame(header, payload):
                    return
        finally:
            self.worker_pid = None
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(Exception):
                    await process.wait()


async def _read_frame(stream: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    length = int.from_bytes(await stream.readexactly(4), "big")
    if not 0 < length <= MAX_HEADER:
        raise WorkerProtocolError("the scanner worker sent a malformed frame")
    try:
        header = json.loads(await stream.readexactly(length))
    except ValueError:
        raise WorkerProtocolError("the scanner worker sent a malformed frame") from None
    if not isinstance(header, dict):
        raise WorkerProtocolError("the scanner worker sent a malformed frame")
    size = header.get("size", 0)
    if not isinstance(size, int) or not 0 <= size <= MAX_PAGE_BYTES:
        raise WorkerProtocolError("the scanner worker announced an impossible page")
    return header, await stream.readexactly(size) if size else b""


def _device_info(raw: dict[str, Any]) -> ScannerInfo:
    sources = tuple(ScanSource(s) for s in raw.get("sources", []) if s in {x.value for x in ScanSource})
    return ScannerInfo(
        id=str(raw.get("id", "")), label=str(raw.get("label", "")), sources=sources or (ScanSource.FLATBED,)
    )


def _page(header: dict[str, Any], payload: bytes) -> RawPage:
    try:
        return RawPage(
            width=int(header["width"]),
            height=int(header["height"]),
            channels=int(header["channels"]),
            dpi=int(header["dpi"]),
            pixels=payload,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WorkerProtocolError(f"the scanner worker sent a malformed page: {exc}") from None
