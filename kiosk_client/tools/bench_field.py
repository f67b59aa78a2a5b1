"""`kiosk-client bench field --profile adsl|valley-4g|satellite|cut`: the kiosk against the clerk
console in headless Chromium, and two Chromium peers, on the same emulated rural link
(tools/link_emulator.py), in one run; each figure for both, and the ratio kiosk/Chromium.

Each pair runs on a fresh link of the profile, one after the other (the kiosk's first): 2 shared cores
cannot carry two calls that both encode 640×480 video without each disturbing the other's figures
(one pair alone keeps the machine ≈ half busy: `cpu_busy`). Both pairs follow the same script
(`run_script`):
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
import contextlib
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from .bench_field_chromium import FRAME_RECORDER_JS, ChromiumPair, clerk_stats, frames_of, launch_in
from .bench_field_figures import first_after, goals, probe_samples, ratios, rtt_figures, video_figures
from .bench_field_kiosk import KioskSide, start_kiosk, stop_kiosk, wait_in_call
from .bench_join_chromium import join, wait_for_join_button
from .field_setup import book, central_beyond
from .link_emulator import FieldLink, Profile, profile_named
from .synthetic_face import Image, LoopingFrames, face_frames, write_y4m

log = logging.getLogger(__name__)

LETTER_BYTES = 128 * 1024
BATCH_BYTES = 3_470_000
SETTLE_S = 2.0  # after the first frame, before the steady window
RECOVERY_WAIT_S = 60.0  # after a cut: how long the clerk may wait for a picture before "never"
RTT_METHOD = (
    "a 64-byte UDP datagram every 100 ms from the kiosk side, echoed by the world side, through the "
    "same link queues as the call (tools/link_probe.py, its own process); the same measure for both"
)
ORDER = "sequential: the kiosk pair, then the Chromium pair, each on a fresh link of the profile"


def document_bytes(size: int, seed: int) -> bytes:
    """Incompressible bytes that start like a PDF (scans are JPEG inside): the same on both sides."""
    head = b"%PDF-1.4\n"
    return head + random.Random(seed).randbytes(size - len(head))


class Driver(Protocol):
    """One pair (the kiosk and its clerk console, or two Chromium peers) as the script drives it."""

    async def join(self) -> tuple[float, float | None]:
        """The clerk answers: (answered, first frame shown at the clerk) wall s."""
        ...

    async def clerk_frames(self) -> list[float]: ...

    async def kiosk_frames(self) -> list[float]: ...

    async def send(self, label: str) -> float:
        """The kiosk side sends the document; when "send" was touched (wall s)."""
        ...

    async def received_at(self, label: str) -> float | None: ...

    async def clerk_stats(self) -> dict[str, float | None]:
        """Chromium's getStats at the clerk's end (bench_field_chromium.CLERK_STATS_JS)."""
        ...

    def drops(self) -> list[float]: ...


@dataclass
class Options:
    profile: Profile
    duration_s: float
    workdir: Path
    documents: dict[str, bytes]


class LinkProbe:
    """The probe process (tools/link_probe.py) across `link`, writing to `out`."""

    def __init__(self, link: FieldLink, out: Path) -> None:
        self.out = out
        self._process = subprocess.Popen(
            [
                sys.executable, "-m", "kiosk_client.tools.link_probe", "--kiosk-ns", link.kiosk_ns,
                "--world-ns", link.world_ns, "--out", str(out),
            ],
            stdin=subprocess.PIPE,
        )  # fmt: skip

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@contextlib.contextmanager
def probed_link(profile: Profile, workdir: Path, name: str) -> Iterator[tuple[FieldLink, LinkProbe]]:
    with FieldLink(profile) as link:
        probe = LinkProbe(link, workdir / f"{name}-rtt.txt")
        try:
            yield link, probe
        finally:
            probe.close()


def cpu_counters() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


async def wait_received(driver: Driver, label: str, timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (done := await driver.received_at(label)) is not None:
            return done
        await asyncio.sleep(0.1)
    return None


async def run_script(driver: Driver, link: FieldLink, probe: LinkProbe, options: Options) -> dict[str, Any]:
    """The same steps and figures for either pair (see the module's docstring)."""
    figures: dict[str, Any] = {}
    answered, first = await driver.join()
    figures["join_ms"] = None if first is None else round((first - answered) * 1000, 1)
    if first is None:
        raise RuntimeError("the clerk never saw the citizen: no call to measure")
    await asyncio.sleep(SETTLE_S)

    stats_before = await driver.clerk_stats()
    steady_start = time.time()
    link.reset_stats()
    cpu_before = cpu_counters()
    await asyncio.sleep(options.duration_s)
    steady_end = time.time()
    cpu_after = cpu_counters()
    stats_after = await driver.clerk_stats()
    up = link.stats().up
    rtt = stats_after["rtt"]
    figures["ice_rtt_ms"] = None if rtt is None else round(rtt * 1000, 1)
    for key in ("received", "decoded"):
        before, after = stats_before[key], stats_after[key]
        span = steady_end - steady_start
        figures[f"clerk_{key}_fps"] = (
            None if before is None or after is None else round((after - before) / span, 2)
        )
    figures["up_queue_p95_ms"] = up.queue_delay_ms["p95"]
    figures["cpu_busy"] = round((cpu_after[0] - cpu_before[0]) / max(cpu_after[1] - cpu_before[1], 1), 3)

    cuts: list[tuple[float, float]] = []
    sent: dict[str, float] = {}
    received: dict[str, float | None] = {}
    documents_start = time.time()
    if options.profile.cuts:
        # The documents cross the cuts: the letter goes at once, the batch a moment later, and the
        # link goes down under them.
        link.start_cut_schedule()
        schedule_start = time.time()
        cuts = [(schedule_start + at, schedule_start + at + down) for at, down in options.profile.cuts]
        sent["letter"] = await driver.send("letter")
        await asyncio.sleep(3)
        sent["batch"] = await driver.send("batch")
        await asyncio.sleep(max(0.0, cuts[-1][1] - time.time()) + 1)
        for label in ("letter", "batch"):
            received[label] = await wait_received(driver, label, 300)
    else:
        for label, timeout_s in (("letter", 120.0), ("batch", 400.0)):
            sent[label] = await driver.send(label)
            received[label] = await wait_received(driver, label, timeout_s)
    documents_end = time.time()

    for label in ("letter", "batch"):
        done = received[label]
        figures[f"{label}_s"] = None if done is None else round(done - sent[label], 2)
    figures["documents_lost"] = sum(1 for label in ("letter", "batch") if received[label] is None)

    clerk, kiosk = await driver.clerk_frames(), await driver.kiosk_frames()
    for side, frames in (("clerk", clerk), ("kiosk", kiosk)):
        for key, value in video_figures(frames, steady_start, steady_end).items():
            figures[f"{side}_{key}"] = value
    during = video_figures(clerk, documents_start, cuts[0][0] if cuts else documents_end)
    figures["clerk_freezes_per_min_documents"] = during["freezes_per_min"]
    samples = probe_samples(probe.out)
    steady_rtt = rtt_figures(samples, steady_start, steady_end)
    documents_rtt = rtt_figures(samples, documents_start, cuts[0][0] if cuts else documents_end)
    figures |= {
        "rtt_p50_ms": steady_rtt["p50"],
        "rtt_p95_ms": steady_rtt["p95"],
        "probes_lost_percent": steady_rtt["lost_percent"],
        "rtt_documents_p50_ms": documents_rtt["p50"],
        "rtt_documents_p95_ms": documents_rtt["p95"],
    }
    for (_, end), key in zip(cuts, ("recovery_10s_cut_s", "recovery_60s_cut_s"), strict=False):
        wait_until = end + RECOVERY_WAIT_S
        recovered = first_after(await driver.clerk_frames(), end)
        while recovered is None and time.time() < wait_until:
            await asyncio.sleep(0.5)
            recovered = first_after(await driver.clerk_frames(), end)
        figures[key] = recovered
    # A drop inside a cut (or just after, while the call recovers) is the cut's, not a failure.
    figures["call_drops"] = sum(
        1 for at in driver.drops() if not any(start <= at <= end + 10 for start, end in cuts)
    )
    return figures


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
    options: Options, frames: list[Image], camera: Path, uplink_control: bool
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
    uplink_control: bool = False,
    progress: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    """One run of the bench on `profile`; the result as one JSON-ready dict. Smaller documents and
    profiles of their own are for the bench's test (a whole run costs minutes)."""
    from .bench_field_figures import goals as goals_of

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
        "uplink_control": uplink_control,
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
        "goals": goals_of(kiosk, chromium),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


__all__ = ["bench_field", "goals"]
