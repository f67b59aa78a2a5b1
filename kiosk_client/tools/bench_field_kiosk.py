"""The kiosk's side of `bench field`: the real engine (aiortc, httpx, the encrypted outbox, the
document protocol) on an event loop moved into the link's kiosk namespace, with the synthetic face
as its camera, and a scanner that hands over prepared documents.

Why prepared documents: the figure is the time from "send" to "received by the clerk" of the same
bytes the Chromium pair sends; scanning and imaging (seconds of CPU per page at 300 dpi on these
2 cores) would only disturb the call before each send, and are measured by `bench documents`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..adapters.central_http import enroll
from ..adapters.media_tracks import FrameSource
from ..adapters.outbox import EncryptedOutbox
from ..app import build_engine, form_frames
from ..core.document_desk import DocumentPorts
from ..core.engine import KioskEngine
from ..core.events import KioskEvent, StateChanged
from ..core.models import RgbImage
from ..core.scanning import PageSink, ProcessedPage, RawPage, ScannerInfo, ScanRequest, ScanSource
from ..core.session import Phase
from ..core.settings import AudioSettings, CameraSettings, Settings
from ..runtime import LoopThread
from .field_setup import move_loop_into
from .link_emulator import FieldLink


class OnePageScanner:
    """A scanner that gives one small page at once: enough for the desk to make a document of."""

    async def devices(self) -> list[ScannerInfo]:
        return [ScannerInfo("bench:0", "Bench scanner", (ScanSource.FLATBED,))]

    async def scan(self, request: ScanRequest, on_page: PageSink) -> int:
        on_page(RawPage(8, 8, 1, request.dpi, bytes(64)))
        return 1


class PreparedDocuments:
    """A page processor whose PDF is whatever the bench put in `next` (the letter, the batch)."""

    def __init__(self) -> None:
        self.next = b""

    def process(self, page: RawPage) -> ProcessedPage | None:
        return ProcessedPage("gray", page.width, page.height, page.dpi, bytes(page.pixels), b"")

    def assemble(self, pages: list[ProcessedPage], title: str) -> bytes:
        return self.next


class ShownFrames:
    """The kiosk's screen: when each of the clerk's frames was handed over to be drawn (wall s)."""

    def __init__(self) -> None:
        self.remote: list[float] = []

    def remote_frame(self, image: RgbImage) -> None:
        self.remote.append(time.time())

    def local_frame(self, image: RgbImage) -> None:
        pass


@dataclass
class KioskSide:
    """The running engine and what the bench reads of it."""

    engine: KioskEngine
    loop: LoopThread
    shown: ShownFrames
    documents: PreparedDocuments
    # (wall s, phase, reconnecting) at each change: a drop is a change into reconnecting.
    phases: list[tuple[float, Phase, bool]] = field(default_factory=list)
    pages_ready: threading.Event = field(default_factory=threading.Event)

    def drops(self) -> list[float]:
        """When the call dropped (the kiosk started calling again), wall s."""
        drops, before = [], False
        for at, _, reconnecting in list(self.phases):
            if reconnecting and not before:
                drops.append(at)
            before = reconnecting
        return drops

    def send(self, data: bytes, name: str, timeout_s: float = 30) -> float:
        """The citizen scans one page and touches "send": returns when "send" was touched (wall s)."""
        self.pages_ready.clear()
        assert self.loop.submit(self.engine.scan_document("flatbed")).result(timeout_s)
        if not self.pages_ready.wait(timeout_s):
            raise TimeoutError("the bench scanner's page never reached the desk")
        self.documents.next = data
        sent_at = time.time()
        if not self.loop.submit(self.engine.send_document(name)).result(timeout_s):
            raise RuntimeError("the engine refused to send the document")
        return sent_at

    def stop(self) -> None:
        """The citizen hangs up (the call closes cleanly, across the link), then the loop stops."""
        with contextlib.suppress(Exception):
            self.loop.submit(self.engine.citizen_hang_up()).result(timeout=10)
            time.sleep(1.0)
        self.loop.stop(timeout=15)


def start_kiosk(
    link: FieldLink,
    central_url: str,
    enrollment_code: str,
    workdir: Path,
    camera: FrameSource,
    *,
    uplink_control: bool | None = None,
) -> KioskSide:
    """Enrol across the link and run the engine in the kiosk namespace (no UI, no sound card)."""
    loop = LoopThread("bench-kiosk")
    loop.start()
    kept: list[Any] = []
    move_loop_into(loop, link.kiosk_ns, kept)
    token = loop.submit(enroll(central_url, enrollment_code)).result(timeout=60).device_token
    shown = ShownFrames()
    prepared = PreparedDocuments()
    settings = Settings(
        central_url=central_url,
        data_dir=workdir / "kiosk",
        camera=CameraSettings(device=None, width=640, height=480, fps=20),
        audio=AudioSettings(microphone=None, speaker=None),
    )
    key = secrets.token_bytes(32)
    ports = DocumentPorts(
        scanner=OnePageScanner(),
        processor=prepared,
        store=EncryptedOutbox(settings.data_dir / "outbox", key),
    )
    side: KioskSide | None = None

    def publish(event: KioskEvent) -> None:
        if side is None or not isinstance(event, StateChanged):
            return
        snapshot = event.snapshot
        now = (snapshot.session.phase, snapshot.session.reconnecting)
        if not side.phases or side.phases[-1][1:] != now:
            side.phases.append((time.time(), *now))
        documents = snapshot.documents
        if documents is not None and documents.scanner == "idle" and documents.pages:
            side.pages_ready.set()

    engine = build_engine(
        settings,
        token,
        publish,
        shown,
        None,
        form_frames(),  # the card a kiosk sends while no form is shown: its second video track
        ended_screen=timedelta(seconds=1),
        camera_source=camera,
        uplink_control=uplink_control,
        documents=ports,
    )
    side = KioskSide(engine, loop, shown, prepared)
    loop.submit(engine.run())
    return side


async def wait_in_call(side: KioskSide, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(phase is Phase.IN_CALL for _, phase, _ in side.phases):
        if time.monotonic() > deadline:
            raise TimeoutError("the kiosk never got into the call")
        await asyncio.sleep(0.1)


def stop_kiosk(side: KioskSide) -> None:
    with contextlib.suppress(Exception):
        side.stop()
