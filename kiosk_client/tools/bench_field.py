"""`kiosk-client bench field --profile adsl|valley-4g|satellite|cut`: the kiosk against the clerk
console in headless Chromium, and two Chromium peers, on the same emulated rural link
(tools/link_emulator.py), in one run; each figure for both, and the ratio kiosk/Chromium.

Each pair runs on a fresh link of the profile, one after the other (the kiosk's first): 2 shared cores
cannot carry two calls that both encode 640×480 video without each disturbing the other's figures
(one pair alone keeps the machine ≈ half busy: `cpu_busy`). Both pairs follow the same script
(`run_script` in bench_field_script.py):
  1. join: the clerk answers; from the answer to the first frame of the citizen the clerk sees;
  2. a steady call of `duration` s: frames shown at both ends, the link probe's round trips;
  3. documents: a 3-page letter (128 KiB), then a 10-page colour batch (3.47 MB), the same bytes on
     both sides, each from "send" to fully received at the clerk's end;
  4. profile `cut` only: the documents start, then the profile's cuts (10 s, then 60 s) take the link
     down; after each, from the link's return to the clerk's next frame.
Both ends' cameras are the synthetic face (tools/synthetic_face.py), 640×480 at 20 fps.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .bench_field_chromium import FRAME_RECORDER_JS, ChromiumPair, clerk_stats, frames_of, launch_in
from .bench_field_figures import goals, ratios
from .bench_field_kiosk import KioskSide, start_kiosk, stop_kiosk, wait_in_call
from .bench_field_script import Options, probed_link, run_script
from .bench_join_chromium import join, wait_for_join_button
from .field_setup import book, central_beyond
from .link_emulator import Profile, profile_named
from .synthetic_face import Image, LoopingFrames, face_frames, write_y4m

log = logging.getLogger(__name__)

LETTER_BYTES = 128 * 1024
BATCH_BYTES = 3_470_000
RTT_METHOD = (
    "a 64-byte UDP datagram every 100 ms from the kiosk side, echoed by the world side, through the "
    "same link queues as the call (tools/link_probe.py, its own process); the same measure for both"
)
ORDER = "sequential: the kiosk pair, then the Chromium pair, each on a fresh link of the profile"


def kiosk_default_uplink_control() -> bool:
    """Whether the kiosk runs its shared uplink control when nobody says (AiortcCallFactory's default)."""
    from ..adapters.rtc_aiortc import AiortcCallFactory

    return bool(inspect.signature(AiortcCallFactory).parameters["uplink_control"].default)


def document_bytes(size: int, seed: int) -> bytes:
    """Incompressible bytes that start like a PDF (scans are JPEG inside): the same on both sides."""
    head = b"%PDF-1.4\n"
    return head + random.Random(seed).randbytes(size - len(head))


class ConsoleDriver:
    """The kiosk engine and the clerk console (the real one, in Chromium on the world side)."""

    def __init__(self, page: Any, side: KioskSide, appointment_id: str, documents: dict[str, bytes]) -> None:
        self.page = page
        self.side = side
        self.appointment_id = appointment_id
        self.documents = documents

    async def join(self) -> tuple[float, float | None]:
        await wait_for_join_button(self.page, self.appointment_id, 90)
        result = await join(self.page, self.appointment_id, 60)
        await wait_in_call(self.side, 30)
        first = result.get("first_video_at")
        return float(result["answered_at"]), None if first is None else float(first)

    async def clerk_frames(self) -> list[float]:
        return await frames_of(self.page)

    async def kiosk_frames(self) -> list[float]:
        return list(self.side.shown.remote)

    async def send(self, label: str) -> float:
        return await asyncio.to_thread(self.side.send, self.documents[label], label)

    async def received_at(self, label: str) -> float | None:
        size = len(self.documents[label])
        at = await self.page.evaluate(
            "(size) => { const d = Object.values(window.clerkConsole.documents)"
            ".find((doc) => doc.manifest.size === size); return d ? d.at : null; }",
            size,
        )
        return None if at is None else float(at) / 1000

    async def clerk_stats(self) -> dict[str, float | None]:
        return await clerk_stats(self.page)

    def drops(self) -> list[float]:
        return self.side.drops()


class PairDriver:
    """Two Chromium peers; the kiosk-side one sends the camera and the documents."""

    def __init__(self, pair: ChromiumPair) -> None:
        self.pair = pair
        self._watch: asyncio.Task[None] | None = None
        self._failures: list[float] = []

    async def join(self) -> tuple[float, float | None]:
        answered = await self.pair.negotiate()
        first = await self.pair.first_frame_at_clerk(0.0, 60)
        self._watch = asyncio.get_running_loop().create_task(self.pair.keep_connected(self._failures))
        return answered, first

    async def clerk_frames(self) -> list[float]:
        return await frames_of(self.pair.clerk)

    async def kiosk_frames(self) -> list[float]:
        return await frames_of(self.pair.kiosk)

    async def send(self, label: str) -> float:
        sent_at = time.time()
        await self.pair.send_document(label)
        return sent_at

    async def received_at(self, label: str) -> float | None:
        return (await self.pair.document_times(label))[1]

    async def clerk_stats(self) -> dict[str, float | None]:
        return await clerk_stats(self.pair.clerk)

    def drops(self) -> list[float]:
        return list(self._failures)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)


def origin(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


async def kiosk_pair(
    options: Options, frames: list[Image], camera: Path, uplink_control: bool | None
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    workdir = options.workdir / "kiosk"
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        probed_link(options.profile, workdir, "kiosk") as (link, probe),
        central_beyond(link, workdir / "central.db") as central,
    ):
        booking = book(link, central, datetime.now(UTC) + timedelta(seconds=5))
        side = start_kiosk(
            link,
            central.url,
            booking.enrollment_code,
            workdir,
            LoopingFrames(frames),
            uplink_control=uplink_control,
        )
        try:
            async with async_playwright() as playwright:
                browser = await launch_in(playwright, link, "world", workdir, camera, origin(central.url))
                try:
                    page = await browser.new_page()
                    await page.goto(f"{central.url}/clerk#token={booking.clerk.token}")
                    await page.evaluate(FRAME_RECORDER_JS, "remote")
                    driver = ConsoleDriver(page, side, booking.appointment_id, options.documents)
                    return await run_script(driver, link, probe, options)
                finally:
                    await browser.close()
        finally:
            stop_kiosk(side)


async def chromium_pair(options: Options, camera: Path) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    workdir = options.workdir / "chromium"
    workdir.mkdir(parents=True, exist_ok=True)
    one_way = options.profile.up.delay_s
    with probed_link(options.profile, workdir, "chromium") as (link, probe):
        async with async_playwright() as playwright:
            kiosk = await launch_in(playwright, link, "kiosk", workdir, camera)
            clerk = await launch_in(playwright, link, "world", workdir, camera)
            try:
                pair = await ChromiumPair.open(kiosk, clerk, one_way)
                for label, data in options.documents.items():
                    await pair.load_document(label, data)
                driver = PairDriver(pair)
                try:
                    figures = await run_script(driver, link, probe, options)
                finally:
                    await driver.close()
                return figures
            finally:
                await kiosk.close()
                await clerk.close()


def bench_field(
    profile: str | Profile,
    duration_s: float = 60.0,
    *,
    letter_bytes: int = LETTER_BYTES,
    batch_bytes: int = BATCH_BYTES,
    skip_chromium_pair: bool = False,
    skip_kiosk_pair: bool = False,
    uplink_control: bool | None = None,
    progress: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    """One run of the bench on `profile`; the result as one JSON-ready dict. Smaller documents and
    profiles of their own are for the bench's test (a whole run costs minutes)."""
    workdir = Path(tempfile.mkdtemp(prefix="kiosk-bench-field-"))
    chosen = profile_named(profile)
    frames = face_frames()
    camera = write_y4m(frames, workdir / "face.y4m")
    documents = {"letter": document_bytes(letter_bytes, 1), "batch": document_bytes(batch_bytes, 2)}
    options = Options(chosen, duration_s, workdir, documents)
    started = time.monotonic()
    kiosk: dict[str, Any] = {}
    chromium: dict[str, Any] | None = None
    if not skip_kiosk_pair:
        progress(f"{chosen.name}: the kiosk and the clerk console…")
        kiosk = asyncio.run(kiosk_pair(options, frames, camera, uplink_control))
    del frames  # ≈ 90 MB
    if not skip_chromium_pair:
        progress(f"{chosen.name}: two Chromium peers…")
        chromium = asyncio.run(chromium_pair(options, camera))
    return {
        "benchmark": "field",
        "profile": chosen.name,
        "duration_s": duration_s,
        "uplink_control": uplink_control if uplink_control is not None else kiosk_default_uplink_control(),
        "method": {
            "order": ORDER,
            "rtt": RTT_METHOD,
            "camera": "synthetic moving face with sensor noise, 640×480 at 20 fps, both sides",
            "letter_bytes": letter_bytes,
            "batch_bytes": batch_bytes,
        },
        "kiosk": kiosk,
        "chromium": chromium,
        "ratio": ratios(kiosk, chromium) if chromium is not None and kiosk else None,
        "goals": goals(kiosk, chromium),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
