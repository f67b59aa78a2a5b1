"""The script both calls of `bench field` follow (see tools/bench_field.py), and the figures it
reads on the way: the same steps and measures whichever pair drives the call."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .bench_field_figures import first_after, probe_samples, rtt_figures, video_figures
from .link_emulator import FieldLink, Profile

SETTLE_S = 2.0  # after the first frame, before the steady window
RECOVERY_WAIT_S = 60.0  # after a cut: how long the clerk may wait for a picture before "never"


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
    answered, first = await driver.join()
    if first is None:
        raise RuntimeError("the clerk never saw the citizen: no call to measure")
    figures: dict[str, Any] = {"join_ms": round((first - answered) * 1000, 1)}
    await asyncio.sleep(SETTLE_S)
    steady_start = time.time()
    figures |= await steady_call(driver, link, options.duration_s)
    steady_end = time.time()
    documents_start = time.time()
    cuts, times = await send_documents(driver, link, options.profile)
    documents_end = cuts[0][0] if cuts else time.time()  # the window with the link up
    for label, (sent, done) in times.items():
        figures[f"{label}_s"] = None if done is None else round(done - sent, 2)
    figures["documents_lost"] = sum(1 for _, done in times.values() if done is None)

    clerk, kiosk = await driver.clerk_frames(), await driver.kiosk_frames()
    for side, frames in (("clerk", clerk), ("kiosk", kiosk)):
        for key, value in video_figures(frames, steady_start, steady_end).items():
            figures[f"{side}_{key}"] = value
    during = video_figures(clerk, documents_start, documents_end)
    figures["clerk_freezes_per_min_documents"] = during["freezes_per_min"]
    samples = probe_samples(probe.out)
    steady_rtt = rtt_figures(samples, steady_start, steady_end)
    documents_rtt = rtt_figures(samples, documents_start, documents_end)
    figures |= {
        "rtt_p50_ms": steady_rtt["p50"],
        "rtt_p95_ms": steady_rtt["p95"],
        "probes_lost_percent": steady_rtt["lost_percent"],
        "rtt_documents_p50_ms": documents_rtt["p50"],
        "rtt_documents_p95_ms": documents_rtt["p95"],
    }
    for (_, end), key in zip(cuts, ("recovery_10s_cut_s", "recovery_60s_cut_s"), strict=False):
        figures[key] = await recovery(driver, end)
    # A drop inside a cut (or just after, while the call recovers) is the cut's, not a failure.
    figures["call_drops"] = sum(
        1 for at in driver.drops() if not any(start <= at <= end + 10 for start, end in cuts)
    )
    return figures


async def steady_call(driver: Driver, link: FieldLink, duration_s: float) -> dict[str, Any]:
    """`duration_s` of call with nothing else on the link: what the link, the machine and the clerk's
    Chromium say of it (the frames are read afterwards, from the recordings)."""
    before = await driver.clerk_stats()
    start = time.time()
    link.reset_stats()
    cpu_before = cpu_counters()
    await asyncio.sleep(duration_s)
    span = time.time() - start
    cpu_after = cpu_counters()
    after = await driver.clerk_stats()
    figures: dict[str, Any] = {
        "ice_rtt_ms": None if after["rtt"] is None else round(after["rtt"] * 1000, 1),
        "up_queue_p95_ms": link.stats().up.queue_delay_ms["p95"],
        "cpu_busy": round((cpu_after[0] - cpu_before[0]) / max(cpu_after[1] - cpu_before[1], 1), 3),
    }
    for key in ("received", "decoded"):
        first, last = before[key], after[key]
        figures[f"clerk_{key}_fps"] = (
            None if first is None or last is None else round((last - first) / span, 2)
        )
    return figures


async def send_documents(
    driver: Driver, link: FieldLink, profile: Profile
) -> tuple[list[tuple[float, float]], dict[str, tuple[float, float | None]]]:
    """The letter, then the batch: (the cuts as wall-clock windows, {label: (sent, received)})."""
    cuts: list[tuple[float, float]] = []
    sent: dict[str, float] = {}
    if profile.cuts:
        # The documents cross the cuts: the letter goes at once, the batch a moment later, and the
        # link goes down under them.
        link.start_cut_schedule()
        schedule_start = time.time()
        cuts = [(schedule_start + at, schedule_start + at + down) for at, down in profile.cuts]
        sent["letter"] = await driver.send("letter")
        await asyncio.sleep(3)
        sent["batch"] = await driver.send("batch")
        await asyncio.sleep(max(0.0, cuts[-1][1] - time.time()) + 1)
        return cuts, {label: (at, await wait_received(driver, label, 300)) for label, at in sent.items()}
    times: dict[str, tuple[float, float | None]] = {}
    for label, timeout_s in (("letter", 120.0), ("batch", 400.0)):
        at = await driver.send(label)
        times[label] = (at, await wait_received(driver, label, timeout_s))
    return cuts, times


async def recovery(driver: Driver, link_back: float) -> float | None:
    """Seconds from the link's return to the clerk's next frame; None if none within RECOVERY_WAIT_S."""
    recovered = first_after(await driver.clerk_frames(), link_back)
    while recovered is None and time.time() < link_back + RECOVERY_WAIT_S:
        await asyncio.sleep(0.5)
        recovered = first_after(await driver.clerk_frames(), link_back)
    return recovered
