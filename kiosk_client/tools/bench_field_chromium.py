"""Chromium for `bench field`: a headless browser inside one side of a field link, the page scripts
that stamp what the bench measures, and the reference pair (two Chromium peers on the same link).

The browser lives in the link's namespace; Playwright drives it over pipes, so the bench process
stays outside. Playwright is told to run a two-line wrapper that enters the namespace and starts the
browser (`nsenter --net=/run/netns/NAME chromium …`).

Frames shown: `requestVideoFrameCallback` on the <video> element, the frame's presentation time
taken to the wall clock in the page, so the bench compares it with its own `time.time()` (cuts,
answers). A gap over 200 ms between two presented frames is a freeze the person in front of the
screen sees.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bench_join_chromium import CHROMIUM, CHROMIUM_ARGS
from .link_emulator import FieldLink, Side

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Playwright

log = logging.getLogger(__name__)

# Every presented frame of the element `id`, as wall-clock milliseconds, in window.benchFrames[id].
# The console replaces the element's stream on every (re)connection; a callback waiting on the old
# one may never run, so a new chain starts whenever the stream changes, and a frame two chains both
# see is kept once (same presentation time).
FRAME_RECORDER_JS = """
(id) => {
  const video = document.getElementById(id);
  window.benchFrames = window.benchFrames || {};
  const frames = (window.benchFrames[id] = []);
  let last = null;
  let watched = undefined;
  const onFrame = (now, meta) => {
    if (meta.presentationTime !== last) {
      last = meta.presentationTime;
      frames.push(Date.now() - (performance.now() - meta.presentationTime));
    }
    video.requestVideoFrameCallback(onFrame);
  };
  const watch = () => {
    if (video.srcObject !== watched) {
      watched = video.srcObject;
      video.requestVideoFrameCallback(onFrame);
    }
  };
  watch();
  setInterval(watch, 100);
}
"""

# One peer of the reference pair: the same fake camera (the synthetic face) and microphone as the
# console, the other's video shown in #remote, documents counted as they arrive. No STUN or TURN:
# host candidates only, on the link's addresses (the namespace has no other interface but lo).
PAIR_PEER_JS = """
async () => {
  const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const pc = new RTCPeerConnection({ iceServers: [] });
  const video = document.createElement("video");
  Object.assign(video, { id: "remote", autoplay: true, muted: true, playsInline: true });
  document.body.append(video);
  const bench = (window.bench = { pc, media, received: {}, sent: {}, docs: {}, warm: null });
  for (const track of media.getTracks()) pc.addTrack(track, media);
  pc.addEventListener("track", (event) => {
    if (event.track.kind === "video") video.srcObject = new MediaStream([event.track]);
  });
  pc.addEventListener("datachannel", (event) => {
    const channel = event.channel;
    channel.binaryType = "arraybuffer";
    channel.addEventListener("message", (message) => {
      if (typeof message.data === "string") {
        bench.received[channel.label] = { size: JSON.parse(message.data).size, got: 0, doneAt: null };
        return;
      }
      const entry = bench.received[channel.label];
      entry.got += message.data.byteLength;
      if (entry.got >= entry.size && entry.doneAt === null) entry.doneAt = Date.now();
    });
  });
  bench.gathered = () => new Promise((resolve) => {
    // No trickle, as the kiosk: every candidate is in the description.
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 3000);
  });
  // A document as a browser application sends a file: a channel of its own, its size first, then
  // 16 KiB messages, paused while more than 1 MiB waits in the browser's buffer.
  bench.send = async (label) => {
    const data = bench.docs[label];
    bench.sent[label] = Date.now();
    const channel = pc.createDataChannel(label, { ordered: true });
    channel.bufferedAmountLowThreshold = 256 * 1024;
    await new Promise((resolve) => channel.addEventListener("open", resolve, { once: true }));
    channel.send(JSON.stringify({ size: data.length }));
    for (let offset = 0; offset < data.length; offset += 16384) {
      if (channel.bufferedAmount > 1024 * 1024) {
        await new Promise((resolve) => channel.addEventListener("bufferedamountlow", resolve, { once: true }));
      }
      channel.send(data.subarray(offset, offset + 16384));
    }
  };
}
"""

OFFER_JS = """
async (restart) => {
  const bench = window.bench;
  // The data channels' SCTP association is negotiated once, with the first offer.
  if (bench.warm === null) bench.warm = bench.pc.createDataChannel("warm");
  await bench.pc.setLocalDescription(await bench.pc.createOffer({ iceRestart: restart }));
  await bench.gathered();
  return bench.pc.localDescription.sdp;
}
"""

ANSWER_JS = """
async (sdp) => {
  const bench = window.bench;
  await bench.pc.setRemoteDescription({ type: "offer", sdp });
  await bench.pc.setLocalDescription(await bench.pc.createAnswer());
  await bench.gathered();
  return { sdp: bench.pc.localDescription.sdp, at: Date.now() / 1000 };
}
"""

# What Chromium's getStats says at the clerk's end (the console's connection or the pair's): the RTT
# of the selected candidate pair as its ICE measures it (a cross-check of the bench's probe), and the
# frames of the citizen's video (the track #remote shows) received and decoded so far — where the
# frames the clerk does not see went: never sent or lost, or received and not shown.
CLERK_STATS_JS = """
async () => {
  const pc = (window.bench || window.clerkConsole).pc;
  const source = document.getElementById("remote").srcObject;
  const result = { rtt: null, received: null, decoded: null };
  if (!pc || !source || !source.getVideoTracks().length) return result;
  const shown = source.getVideoTracks()[0].id;
  const stats = await pc.getStats();
  stats.forEach((report) => {
    if (report.type === "transport" && report.selectedCandidatePairId) {
      const pair = stats.get(report.selectedCandidatePairId);
      if (pair && pair.currentRoundTripTime !== undefined) result.rtt = pair.currentRoundTripTime;
    }
    if (report.type === "inbound-rtp" && report.kind === "video" && report.trackIdentifier === shown) {
      result.received = report.framesReceived;
      result.decoded = report.framesDecoded;
    }
  });
  return result;
}
"""

SECURE_PAGE = "http://localhost/bench-field"  # localhost is a secure context: getUserMedia works


def chromium_wrapper(namespace: str, workdir: Path) -> Path:
    """A script that starts Chromium inside `namespace`, for Playwright's `executable_path`."""
    path = workdir / f"chromium-{namespace}"
    path.write_text(f'#!/bin/sh\nexec nsenter --net=/run/netns/{namespace} {CHROMIUM} "$@"\n')
    path.chmod(0o755)
    return path


async def launch_in(
    playwright: Playwright, link: FieldLink, side: Side, workdir: Path, camera: Path, secure_origin: str = ""
) -> Browser:
    """Headless Chromium in `side`'s namespace, its fake camera playing `camera` (a .y4m file).
    `secure_origin`: an http origin to treat as secure (the console's, served on the link's address,
    needs getUserMedia)."""
    # Autoplay: the console shows the citizen with sound, which a browser holds back without a gesture.
    args = [
        *CHROMIUM_ARGS,
        f"--use-file-for-fake-video-capture={camera}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if secure_origin:
        args.append(f"--unsafely-treat-insecure-origin-as-secure={secure_origin}")
    return await playwright.chromium.launch(
        executable_path=str(chromium_wrapper(link.namespace(side), workdir)), args=args, headless=True
    )


async def frames_of(page: Page, element: str = "remote") -> list[float]:
    """The presented frames of `element` so far, wall clock in seconds."""
    stamps: list[float] = await page.evaluate(
        "(id) => (window.benchFrames && window.benchFrames[id]) || []", element
    )
    return [stamp / 1000 for stamp in stamps]


@dataclass
class ChromiumPair:
    """Two Chromium peers across the link: `kiosk` in the kiosk's namespace sends the camera and the
    documents, `clerk` in the world's; each shows the other's video. The bench process carries the
    offer and answer (page.evaluate), delayed by the link's one-way delay as if relayed."""

    kiosk: Page
    clerk: Page
    one_way_s: float
    restarts: int = 0

    @staticmethod
    async def open(kiosk_browser: Browser, clerk_browser: Browser, one_way_s: float) -> ChromiumPair:
        pages = []
        for browser in (kiosk_browser, clerk_browser):
            page = await browser.new_page()
            await page.route(
                SECURE_PAGE, lambda route: route.fulfill(content_type="text/html", body="<!doctype html>")
            )
            await page.goto(SECURE_PAGE)
            await page.evaluate(PAIR_PEER_JS)
            await page.evaluate(FRAME_RECORDER_JS, "remote")
            pages.append(page)
        return ChromiumPair(pages[0], pages[1], one_way_s)

    async def negotiate(self, restart: bool = False) -> float:
        """Offer from the kiosk side, answer from the clerk side; when the answer was made (wall s)."""
        offer = await self.kiosk.evaluate(OFFER_JS, restart)
        answer: dict[str, Any] = await self.clerk.evaluate(ANSWER_JS, offer)
        await asyncio.sleep(self.one_way_s)
        await self.kiosk.evaluate(
            "(sdp) => window.bench.pc.setRemoteDescription({type: 'answer', sdp})", answer["sdp"]
        )
        return float(answer["at"])

    async def first_frame_at_clerk(self, after: float, timeout_s: float) -> float | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            shown = [t for t in await frames_of(self.clerk) if t >= after]
            if shown:
                return shown[0]
            await asyncio.sleep(0.05)
        return None

    async def keep_connected(self, failures: list[float]) -> None:
        """What a browser application does when its connection fails (a long cut): an ICE restart,
        offered again every 5 s until it holds. Each failure's time (wall s) goes into `failures`.
        Runs until cancelled."""
        last = 0.0
        failed = False
        while True:
            await asyncio.sleep(0.5)
            # Chromium's iceConnectionState stays "disconnected"; its connectionState turns "failed"
            # ≈17 s into a cut, and from then on nothing recovers without a restart.
            state = await self.kiosk.evaluate("() => window.bench.pc.connectionState")
            if state == "failed" and not failed:
                failures.append(time.time())
            failed = state == "failed"
            if failed and time.monotonic() - last > 5:
                last = time.monotonic()
                self.restarts += 1
                log.info("pair: ICE failed, restarting it")
                await self.negotiate(restart=True)

    async def load_document(self, label: str, data: bytes) -> None:
        await self.kiosk.evaluate(
            "([label, b64]) => { window.bench.docs[label] = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)); }",
            [label, base64.b64encode(data).decode()],
        )

    async def send_document(self, label: str) -> None:
        """Start sending (it goes on in the page); `document_times` says when it arrived."""
        await self.kiosk.evaluate("(label) => { window.bench.send(label); }", label)

    async def document_times(self, label: str) -> tuple[float | None, float | None]:
        """(sent, fully received) wall-clock seconds; None while not yet."""
        sent = await self.kiosk.evaluate("(label) => window.bench.sent[label] || null", label)
        done = await self.clerk.evaluate(
            "(label) => (window.bench.received[label] || {}).doneAt || null", label
        )
        return (sent / 1000 if sent else None, done / 1000 if done else None)


async def clerk_stats(page: Page) -> dict[str, float | None]:
    """See CLERK_STATS_JS: {"rtt": s, "received": frames, "decoded": frames}, None where unknown."""
    stats: dict[str, float | None] = await page.evaluate(CLERK_STATS_JS)
    return stats
