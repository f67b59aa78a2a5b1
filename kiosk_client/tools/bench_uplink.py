"""The kiosk's uplink under load, on an emulated rural link: `python -m kiosk_client.tools.bench_uplink`.

The kiosk's call (AiortcCall, a moving and noisy synthetic camera at 640×480, 20 fps, and a still
form view) in the link's kiosk namespace; the clerk on the far side, either an aiortc peer in this
process or headless Chromium (the reference clerk, whose REMB, receiver reports and NACKs differ
from aiortc's). A letter or a batch goes on the documents channel as the core sends it (its pace, its
high-water mark); the figures: the uplink queue while it goes (link.stats(), frames that passed),
its time, the camera's bitrate and the clerk's gaps between pictures.

Prints one JSON line per run. BENCH_UPLINK_TRACE=1 also prints, every quarter of a second on stderr,
the link's own queue against what the control sees (its queue delay, estimate, shares, round trips)
and every new VP8 codec or large frame. Root only (network namespaces). Also used by
tests/test_field_uplink.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.document_transfer import HIGH_WATER, LOW_WATER, DocumentLink
from ..core.ports import CallEvent, DocumentsChannelOpened
from ..core.settings import AudioSettings, CameraSettings
from ..runtime import LoopThread
from .link_emulator import FieldLink, netns

log = logging.getLogger(__name__)

CHUNK = 16 * 1024
LETTER_BYTES = 128 * 1024  # 3 pages (FIELD-NETWORKS.md)
BATCH_BYTES = 3_470_000  # 10 colour pages
FREEZE_S = 0.2
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class NoisyCamera:
    """A face-sized blob moving over a gradient, with sensor noise: what a real camera costs to encode
    (a still card costs ≈65 kbit/s and hides every bitrate problem)."""

    def __init__(self, width: int = 640, height: int = 480, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self._noise = [rng.integers(-12, 13, (height, width, 3), dtype=np.int16) for _ in range(6)]
        y, x = np.mgrid[0:height, 0:width]
        self._base = np.stack(
            [x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=2
        )
        self._base = self._base.astype(np.int16)
        self._yx = (y, x)
        self._count = 0
        self._start = time.monotonic()

    def latest(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        self._count += 1
        t = time.monotonic() - self._start
        y, x = self._yx
        h, w = y.shape
        cy, cx = h / 2 + h / 4 * np.sin(t * 1.3), w / 2 + w / 3 * np.cos(t * 0.9)
        blob = ((y - cy) ** 2 + (x - cx) ** 2 < (h / 5) ** 2)[..., None] * np.array([60, 40, -50], np.int16)
        image = np.roll(self._base, int(t * 40) % w, axis=1) + blob + self._noise[self._count % 6]
        return np.asarray(np.clip(image, 0, 255), dtype=np.uint8)


@dataclass
class Gaps:
    """When each picture of one track arrived at the clerk's side."""

    times: list[float] = field(default_factory=list)

    def summary(self, since: float, until: float) -> dict[str, float]:
        ts = [t for t in self.times if since <= t <= until]
        gaps = [b - a for a, b in itertools.pairwise(ts)]
        span = max(until - since, 1e-9)
        return {
            "fps": round(len(ts) / span, 1),
            "freezes": sum(1 for g in gaps if g > FREEZE_S),
            "longest_gap_ms": round(1000 * max(gaps, default=0.0)),
        }


@dataclass
class ClerkSide:
    """What the far side saw: pictures per track, document bytes."""

    video: dict[str, Gaps] = field(default_factory=dict)
    document_bytes: int = 0
    document_done: asyncio.Event | None = None
    expected: int = 0
    done_at: float | None = None

    def on_bytes(self, n: int) -> None:
        self.document_bytes += n
        if self.expected and self.document_bytes >= self.expected and self.done_at is None:
            self.done_at = time.monotonic()


class AiortcClerk:
    """The clerk as an aiortc peer (the project's clerk bot answers the same way)."""

    def __init__(self, side: ClerkSide) -> None:
        self.side = side
        self.pc: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def answer(self, offer_sdp: str) -> str:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        self.pc = pc = RTCPeerConnection()

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind != "video":
                self._tasks.append(asyncio.ensure_future(self._drain(track, None)))
                return
            gaps = self.side.video.setdefault(f"video{len(self.side.video)}", Gaps())
            self._tasks.append(asyncio.ensure_future(self._drain(track, gaps)))

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            channel.on("message", lambda m: self.side.on_bytes(len(m)) if isinstance(m, bytes) else None)

        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def _drain(self, track: Any, gaps: Gaps | None) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                if gaps is not None:
                    gaps.times.append(time.monotonic())

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()


# The page Chromium runs: answers the offer (all candidates gathered, as aiortc does not trickle),
# stamps every presented picture of each video track and counts the documents' bytes.
CLERK_PAGE = """
<html><body><script>
window.frames_ = {}; window.docBytes = 0;
window.answer = async (offer) => {
  const pc = new RTCPeerConnection();
  window.pc = pc;
  pc.ontrack = (ev) => {
    if (ev.track.kind !== "video") { const a = new Audio(); a.srcObject = new MediaStream([ev.track]); return; }
    const name = "video" + Object.keys(window.frames_).length;
    const times = window.frames_[name] = [];
    const v = document.createElement("video");
    v.muted = true; v.autoplay = true; v.srcObject = new MediaStream([ev.track]);
    document.body.appendChild(v);
    const cb = (now, meta) => { times.push(performance.timeOrigin + meta.presentationTime); v.requestVideoFrameCallback(cb); };
    v.requestVideoFrameCallback(cb);
    v.play().catch(() => {});
  };
  pc.ondatachannel = (ev) => {
    ev.channel.binaryType = "arraybuffer";
    ev.channel.onmessage = (m) => { if (typeof m.data !== "string") window.docBytes += m.data.byteLength; };
  };
  await pc.setRemoteDescription({type: "offer", sdp: offer});
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") resolve(); };
  });
  return pc.localDescription.sdp;
};
window.take = () => { const out = {frames: window.frames_, docBytes: window.docBytes};
  window.frames_ = Object.fromEntries(Object.keys(window.frames_).map((k) => [k, window.frames_[k]]));
  return out; };
</script></body></html>
"""


class ChromiumClerk:
    """The clerk as headless Chromium in the world namespace (nsenter wrapper), driven by Playwright
    from a loop of this process."""

    def __init__(self, side: ClerkSide, namespace: str, workdir: Path) -> None:
        self.side = side
        self._namespace = namespace
        self._workdir = workdir
        self._pw: Any = None
        self._browser: Any = None
        self.page: Any = None
        self._poll: asyncio.Task[None] | None = None

    async def answer(self, offer_sdp: str) -> str:
        from playwright.async_api import async_playwright

        from .bench_join_chromium import CHROMIUM_ARGS

        wrapper = self._workdir / "chromium-in-netns"
        wrapper.write_text(f'#!/bin/sh\nexec nsenter --net=/run/netns/{self._namespace} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        self._pw = await async_playwright().start()
        self._browser = await self._pw.chromium.launch(
            executable_path=str(wrapper), args=CHROMIUM_ARGS, headless=True
        )
        self.page = await self._browser.new_page()
        await self.page.set_content(CLERK_PAGE)
        answer = str(await self.page.evaluate("(o) => window.answer(o)", offer_sdp))
        self._poll = asyncio.ensure_future(self._follow())
        return answer

    async def _follow(self) -> None:
        # Page time (ms since the epoch) to this process's monotonic clock.
        while True:
            await asyncio.sleep(0.5)
            data = await self.page.evaluate(
                "() => { const f = window.frames_; const out = {frames: {}, docBytes: window.docBytes};"
                " for (const k of Object.keys(f)) { out.frames[k] = f[k].splice(0); } return out; }"
            )
            offset = time.monotonic() - time.time()
            for name, stamps in data["frames"].items():
                gaps = self.side.video.setdefault(name, Gaps())
                gaps.times.extend(s / 1000 + offset for s in stamps)
            new = int(data["docBytes"]) - self.side.document_bytes
            if new > 0:
                self.side.on_bytes(new)

    async def close(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
        with contextlib.suppress(Exception):
            if self._browser is not None:
                await self._browser.close()
        with contextlib.suppress(Exception):
            if self._pw is not None:
                await self._pw.stop()


async def send_document(link: DocumentLink, size: int) -> None:
    """As the core's DocumentTransfers sends one (core/document_transfer.py _send_one)."""
    payload = os.urandom(CHUNK)
    position = 0
    while position < size:
        if link.buffered_amount() > HIGH_WATER:
            await link.drained(LOW_WATER)
            continue
        await link.ready()
        piece = payload[: min(CHUNK, size - position)]
        link.send_bytes(piece)
        position += len(piece)
        if position % (16 * CHUNK) == 0:
            await asyncio.sleep(0)


@dataclass
class Run:
    profile: str
    clerk: str
    uplink_control: bool
    document_bytes: int
    document_s: float | None
    queue_ms: dict[str, float]
    idle_queue_ms: dict[str, float]
    dropped: int
    camera_kbps: float
    camera_sent_fps: float
    camera: dict[str, float]
    form: dict[str, float]
    estimate_kbps: list[tuple[int, int, int, int, int]]  # estimate, camera, documents, REMB, queue ms
    join_s: float


@contextlib.contextmanager
def _loops(link: FieldLink) -> Iterator[tuple[LoopThread, LoopThread]]:
    kiosk, clerk = LoopThread("kiosk"), LoopThread("clerk")
    kiosk.start()
    clerk.start()
    kept: list[Any] = []

    def into(loop: LoopThread, namespace: str) -> None:
        async def enter() -> None:
            context = netns(namespace)
            context.__enter__()
            kept.append(context)

        loop.submit(enter()).result(timeout=5)

    into(kiosk, link.kiosk_ns)
    into(clerk, link.world_ns)
    try:
        yield kiosk, clerk
    finally:
        kiosk.stop()
        clerk.stop()


def measure(
    link: FieldLink,
    clerk_kind: str = "aiortc",
    uplink_control: bool | None = None,
    document_bytes: int = LETTER_BYTES,
    settle_s: float = 8.0,
    after_s: float = 2.0,
    timeout_s: float = 120.0,
) -> Run:
    """One call over `link`: settle, send one document, figures of the uplink meanwhile.
    `uplink_control` None: the call's default."""
    from ..adapters import rtc_aiortc
    from ..adapters.media_tracks import LatestFrame

    # The synthetic camera stands in for the placeholder card the kiosk sends without a device.
    rtc_aiortc.PlaceholderSource = NoisyCamera  # type: ignore[attr-defined,assignment]
    side = ClerkSide()
    links: list[DocumentLink] = []

    def on_event(event: CallEvent) -> None:
        if isinstance(event, DocumentsChannelOpened):
            links.append(event.link)

    page = np.full((480, 640, 3), 235, np.uint8)
    page[40:60, 40:600] = 30  # a still form: its keepalive pictures only
    with tempfile.TemporaryDirectory() as tmp, _loops(link) as (kiosk_loop, clerk_loop):
        # None: the call's default, as a kiosk runs it.
        default = inspect.signature(rtc_aiortc.AiortcCall).parameters["uplink_control"].default
        call = rtc_aiortc.AiortcCall(
            (),
            on_event,
            CameraSettings(device=None, width=640, height=480, fps=20),
            AudioSettings(microphone=None, speaker=None),
            None,
            {},
            LatestFrame(page),
            uplink_control=bool(default) if uplink_control is None else uplink_control,
        )
        clerk: AiortcClerk | ChromiumClerk = (
            AiortcClerk(side) if clerk_kind == "aiortc" else ChromiumClerk(side, link.world_ns, Path(tmp))
        )
        try:
            started = time.monotonic()
            offer = kiosk_loop.submit(call.create_offer()).result(timeout=30)
            answer = clerk_loop.submit(clerk.answer(offer.sdp)).result(timeout=60)
            from ..core.models import SessionDescription

            kiosk_loop.submit(call.accept_answer(SessionDescription(answer, "answer"))).result(timeout=30)
            deadline = time.monotonic() + 30
            while not (side.video.get("video0") and side.video["video0"].times and links):
                if time.monotonic() > deadline:
                    raise RuntimeError("no video reached the clerk")
                time.sleep(0.05)
            join_s = time.monotonic() - started
            if os.environ.get("BENCH_UPLINK_TRACE"):
                from aiortc.codecs import vpx

                original = vpx.Vp8Encoder.encode
                t0 = time.monotonic()

                def encode(self: Any, frame: Any, force_keyframe: bool = False) -> Any:
                    codec = self.codec
                    payloads, timestamp = original(self, frame, force_keyframe)
                    size = sum(len(p) for p in payloads)
                    if size > 6000 or codec is not self.codec:
                        print(
                            f"{time.monotonic() - t0:6.2f} frame {frame.width}x{frame.height} {size} B"
                            f" new codec {codec is not self.codec} at {self.target_bitrate}",
                            file=sys.stderr,
                        )
                    return payloads, timestamp

                vpx.Vp8Encoder.encode = encode  # type: ignore[method-assign]
                tracer = threading.Thread(target=_trace, args=(link, call, side), daemon=True)
                tracer.start()
            time.sleep(settle_s)
            link.reset_stats()
            time.sleep(3.0)
            idle = link.stats().up.queue_delay_ms
            estimates: list[tuple[int, int, int, int, int]] = []
            sent_before = _camera_bytes(kiosk_loop, call)
            frames_before = call._video.frames_sent if call._video else 0
            link.reset_stats()
            side.expected = side.document_bytes + document_bytes
            begin = time.monotonic()
            kiosk_loop.submit(send_document(links[0], document_bytes))
            deadline = begin + timeout_s
            while side.done_at is None and time.monotonic() < deadline:
                time.sleep(0.25)
                if call.uplink is not None and (last := call.uplink.last) is not None:
                    control = call.uplink.controller
                    queue = control.queue_s
                    estimates.append(
                        (
                            last.estimate_bps // 1000,
                            last.camera_bps // 1000,
                            last.documents_bps // 1000,
                            (control.video_ceiling() or 0) // 1000,
                            -1 if queue is None else round(queue * 1000),
                        )
                    )
            end = time.monotonic()
            stats = link.stats().up
            camera_kbps = (_camera_bytes(kiosk_loop, call) - sent_before) * 8 / 1000 / max(end - begin, 1e-9)
            time.sleep(after_s)
            video = {k: v.summary(begin, end) for k, v in side.video.items()}
            return Run(
                link.profile.name if hasattr(link.profile, "name") else str(link.profile),
                clerk_kind,
                call.uplink is not None,
                document_bytes,
                None if side.done_at is None else round(side.done_at - begin, 2),
                stats.queue_delay_ms,
                idle,
                stats.dropped_queue,
                round(camera_kbps),
                round(((call._video.frames_sent if call._video else 0) - frames_before) / (end - begin), 1),
                video.get("video0", {}),
                video.get("video1", {}),
                estimates[:: max(1, len(estimates) // 40)],
                round(join_s, 2),
            )
        finally:
            with contextlib.suppress(Exception):
                clerk_loop.submit(clerk.close()).result(timeout=10)
            with contextlib.suppress(Exception):
                kiosk_loop.submit(call.close()).result(timeout=10)


def _trace(link: FieldLink, call: Any, side: ClerkSide) -> None:
    """Every quarter of a second, on stderr: the link's own queue against what the control sees.
    (It reads the link's counters without resetting them: percentiles since the last reset.)"""
    start = time.monotonic()
    while True:
        time.sleep(0.25)
        if call.uplink is None:
            continue
        up = link.stats().up.queue_delay_ms
        c = call.uplink.controller
        last = call.uplink.last
        print(
            f"{time.monotonic() - start:6.2f} link p50/max {up['p50']:.0f}/{up['max']:.0f}"
            f" q {c.queue_s and round(c.queue_s * 1000)} E {c.estimate / 1000:.0f}"
            f" sent {c.sent_bps / 1000:.0f} cam {last and last.camera_bps // 1000}"
            f" docs {last and last.documents_bps // 1000} remb {(c.video_ceiling() or 0) // 1000}"
            f" got {side.document_bytes // 1024}K rtts {[round(r * 1000) for _, r in c._recent]}",
            file=sys.stderr,
        )


def _camera_bytes(loop: LoopThread, call: Any) -> int:
    async def read() -> int:
        total = 0
        for sender in call._pc.getSenders():
            if sender.track is not None and sender.track is call._video:
                stats = await sender.getStats()
                total += sum(
                    int(getattr(s, "bytesSent", 0)) for s in stats.values() if s.type == "outbound-rtp"
                )
        return total

    return loop.submit(read()).result(timeout=10)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--profile", default="adsl")
    p.add_argument("--clerk", choices=("aiortc", "chromium"), default="aiortc")
    p.add_argument("--control", choices=("on", "off", "both"), default="both")
    p.add_argument("--bytes", type=int, default=LETTER_BYTES)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--settle", type=float, default=8.0)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.control]
    for _ in range(args.runs):
        for mode in modes:
            with FieldLink(args.profile) as link:
                run = measure(link, args.clerk, mode, args.bytes, settle_s=args.settle)
            print(json.dumps(asdict(run)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
