"""A userspace link emulator: the kiosk and "the world" in two network namespaces, joined by a rural link.

Why userspace: this kernel has no netem (`tc qdisc add dev lo root netem delay 10ms` fails with
"Specified qdisc kind is unknown"), so delay, jitter, loss and cuts cannot be asked of `tc`. Network
namespaces, veth pairs and AF_PACKET raw sockets all work as root, and that is enough:

    [kiosk netns]  fl0 10.77.0.2 ─veth─ kfl…k ┐                        ┌ kfl…w ─veth─ fl0 10.77.0.1  [world netns]
                                              └─ forwarder process ────┘
                                      (root netns: no address, no bridge, ARP off)

The root-side ends of the two veth pairs carry no address and are joined by nothing but the forwarder,
a child process that reads each Ethernet frame from one end (AF_PACKET) and writes it to the other
after the link model, so nothing crosses except through the emulator: stop it and the link is dead.
Both namespaces know each other's MAC address statically and have IPv6 off, so no ARP or neighbour
discovery rides the (lossy) link and only the traffic under test crosses it.

The model, per direction (`Direction`), applied when a frame arrives:
  - cut: while the link is down (a `cut(seconds)`, or a window of a cut schedule), every frame that
    arrives or would be delivered is dropped;
  - loss: each frame is dropped with probability `loss` (independently, per direction);
  - rate: a token bucket (`rate_bps`, depth `burst_bytes`, one full frame by default, so frames leave
    paced at the link rate) computed analytically, which gives each frame the time it leaves the queue;
  - queue limit: a frame that would wait longer than `queue_limit_s` in that queue is dropped
    (drop-tail measured in time, FIELD-NETWORKS: "Queues ≤ 400 ms then drop");
  - delay + jitter: one-way `delay_s` plus a jitter within ±`jitter_s`. Without reordering (the
    default) the jitter is a piecewise-linear random walk that never changes faster than time passes,
    so frames keep their order without piling up on the largest delay (which independent samples with
    a "no reordering" clamp do at high packet rates); with `reorder=True` each frame draws its own.
Frames are counted in full (Ethernet header included, no FCS or preamble) against the rate.

The forwarder runs in its own process (a thread per direction, select() with a timer heap) so that a
busy test or bench process (aiortc, Chromium, Qt) cannot hold a GIL that delays frames; it is niced
up when allowed, and it removes the namespaces itself if its parent dies without closing the link.

Names: every run is `kfl<pid in hex>-<n>` (veth `…k`/`…w`, namespaces `…-kiosk`/`…-world`), so
parallel runs never clash; at start, leftovers of this prefix whose process is gone are swept.
"""

from __future__ import annotations

import argparse
import array
import atexit
import contextlib
import dataclasses
import fcntl
import heapq
import itertools
import json
import logging
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any, Literal

import httpx

log = logging.getLogger(__name__)

Side = Literal["kiosk", "world"]
SIDES: tuple[Side, Side] = ("kiosk", "world")

PREFIX = "kfl"
# Addresses exist only inside the namespaces this module makes (never in the root namespace), so
# every run can use the same ones without clashing.
KIOSK_IP = "10.77.0.2"
WORLD_IP = "10.77.0.1"
PREFIX_LEN = 24
INNER_IF = "fl0"
MACS: dict[Side, str] = {"kiosk": "02:77:00:00:00:02", "world": "02:77:00:00:00:01"}
IPS: dict[Side, str] = {"kiosk": KIOSK_IP, "world": WORLD_IP}

_NAME = re.compile(rf"^{PREFIX}([0-9a-f]+)-([0-9a-f]+)(k|w|-kiosk|-world)$")
_run_numbers = itertools.count(1)
_live_bases: set[str] = set()  # this process's open links: never swept as leftovers

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23  # Linux >= 4.20; not exported by the socket module
SOL_PACKET = 263
SO_RCVBUFFORCE = 33  # root may exceed rmem_max; not exported by the socket module
SO_TIMESTAMPNS = 35  # the kernel's receive time (CLOCK_REALTIME) on each frame; also SCM_TIMESTAMPNS
SIOCETHTOOL = 0x8946
# Legacy ethtool "set" commands (struct ethtool_value): tx checksum, scatter-gather, TSO, GSO, GRO.
ETHTOOL_OFFLOADS = (0x17, 0x19, 0x1F, 0x24, 0x2C)
MAX_FRAME = 65536


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Direction:
    """One direction of the link. `None` means unlimited."""

    rate_bps: float | None = None
    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    queue_limit_s: float | None = 0.4
    reorder: bool = False
    burst_bytes: int = 1514


@dataclass(frozen=True)
class Profile:
    """A link: `down` is towards the kiosk, `up` from it. `cuts` is a schedule a bench starts with
    `FieldLink.start_cut_schedule()`: (seconds after the start, seconds down), in order."""

    name: str
    down: Direction
    up: Direction
    cuts: tuple[tuple[float, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Profile:
        return Profile(
            name=str(data["name"]),
            down=Direction(**data["down"]),
            up=Direction(**data["up"]),
            cuts=tuple((float(a), float(b)) for a, b in data.get("cuts", ())),
        )


def rural(
    name: str,
    down_bps: float,
    up_bps: float,
    rtt_s: float,
    loss: float,
    rtt_jitter_s: float = 0.0,
    cuts: tuple[tuple[float, float], ...] = (),
) -> Profile:
    """A profile as FIELD-NETWORKS.md states them: the RTT (and its ± jitter) splits equally between
    the directions; the loss rate applies in each direction; queues hold 400 ms."""

    def one(rate: float) -> Direction:
        return Direction(rate_bps=rate, delay_s=rtt_s / 2, jitter_s=rtt_jitter_s / 2, loss=loss)

    return Profile(name, down=one(down_bps), up=one(up_bps), cuts=cuts)


PROFILES: dict[str, Profile] = {
    "adsl": rural("adsl", 8e6, 800e3, 0.040, 0.005),
    "valley-4g": rural("valley-4g", 5e6, 1.5e6, 0.080, 0.02, rtt_jitter_s=0.030),
    "satellite": rural("satellite", 20e6, 2e6, 0.600, 0.005),
    # The call must be up before the first cut: the bench starts the schedule once it is.
    "cut": rural("cut", 8e6, 800e3, 0.040, 0.005, cuts=((15.0, 10.0), (55.0, 60.0))),
    "loopback-like": Profile("loopback-like", Direction(queue_limit_s=None), Direction(queue_limit_s=None)),
}


def profile_named(profile: Profile | str) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown link profile {profile!r} (known: {', '.join(PROFILES)})") from None


# --------------------------------------------------------------------------- counters


@dataclass(frozen=True)
class DirectionStats:
    frames_in: int
    bytes_in: int
    frames_passed: int
    bytes_passed: int
    dropped_queue: int
    dropped_loss: int
    dropped_cut: int
    dropped_socket: int  # the kernel's, on the forwarder's socket: the emulator fell behind
    max_frame: int
    queue_delay_ms: dict[str, float]  # p50, p95, p99, max of the frames that passed
    # How much later than the model said the forwarder sent frames (its timers, a busy machine):
    # the emulation's own error, to read beside any delay a bench measures.
    late_ms: dict[str, float]
    cpu_s: float  # CPU time of this direction's thread

    @staticmethod
    def from_json(data: dict[str, Any]) -> DirectionStats:
        return DirectionStats(**data)


@dataclass(frozen=True)
class LinkStats:
    down: DirectionStats
    up: DirectionStats
    wall_s: float  # since the forwarder started (or the counters were reset)
    cpu_s: float  # the forwarder process's CPU time over the same span (all threads)

    @property
    def cpu_share(self) -> float:
        """Fraction of one core the forwarder used."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"cpu_share": round(self.cpu_share, 4)}


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    if not samples:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1] * 1000, 3)}


# --------------------------------------------------------------------------- the forwarder (child)


class LinkState:
    """Whether the link is up, shared by both directions (floats and a tuple: assignment is atomic)."""

    def __init__(self) -> None:
        self.down_until = 0.0
        self.windows: tuple[tuple[float, float], ...] = ()

    def is_down(self, now: float) -> bool:
        return now < self.down_until or any(a <= now < b for a, b in self.windows)


class Pipe:
    """One direction: frames read on `rx_if`, delayed by the model, written on `tx_if`."""

    SAMPLES = 200_000  # queue-delay samples kept for percentiles (the most recent)

    def __init__(self, name: str, rx_if: str, tx_if: str, params: Direction, state: LinkState, seed: int):
        self.name = name
        self.params = params
        self.state = state
        self.rng = random.Random(seed)
        self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: nothing until bound
        self.rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        self._ignores_outgoing = True
        try:
            self.rx.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            self._ignores_outgoing = False  # older kernels: filtered by hand on each frame
        # A frame's arrival is when the kernel took it, not when this thread got round to reading it:
        # a forwarder held up for a moment still delays each frame by the model's time only.
        self.rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.rx.bind((rx_if, ETH_P_ALL))
        self.rx.setblocking(False)
        self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.tx.bind((tx_if, 0))  # protocol 0: this socket never receives
        self.heap: list[tuple[float, int, bytes]] = []
        self.seq = 0
        self.tokens = 0.0  # bits in the bucket at `last_depart`
        self.last_depart = 0.0
        self.last_deliver = 0.0
        self.jitter_t0 = self.jitter_t1 = 0.0
        self.jitter_v0 = self.jitter_v1 = 0.0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name=f"link-{name}", daemon=True)
        self.cpu_s = 0.0
        self.reset()

    def reset(self) -> None:
        self.frames_in = self.bytes_in = self.frames_passed = self.bytes_passed = 0
        self.dropped_queue = self.dropped_loss = self.dropped_cut = self.dropped_socket = 0
        self.max_frame = 0
        self.delays: deque[float] = deque(maxlen=self.SAMPLES)
        self.lateness: deque[float] = deque(maxlen=self.SAMPLES)
        self._cpu_base = self.cpu_s

    def stats(self) -> DirectionStats:
        with contextlib.suppress(OSError):
            raw = self.rx.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # read-and-reset by the kernel
            self.dropped_socket += struct.unpack("II", raw)[1]
        return DirectionStats(
            frames_in=self.frames_in,
            bytes_in=self.bytes_in,
            frames_passed=self.frames_passed,
            bytes_passed=self.bytes_passed,
            dropped_queue=self.dropped_queue,
            dropped_loss=self.dropped_loss,
            dropped_cut=self.dropped_cut,
            dropped_socket=self.dropped_socket,
            max_frame=self.max_frame,
            queue_delay_ms=percentiles(list(self.delays)),
            late_ms=percentiles(list(self.lateness)),
            cpu_s=round(self.cpu_s - self._cpu_base, 4),
        )

    def _jitter(self, t: float, amplitude: float) -> float:
        if self.params.reorder:
            return self.rng.uniform(-amplitude, amplitude)
        # A new random target every `period`, reached in a straight line: the slope stays below 1/2,
        # so a later frame is never scheduled before an earlier one.
        period = max(0.05, 4 * amplitude)
        if t >= self.jitter_t1:
            if t - self.jitter_t1 > period:  # idle for a while: start afresh from here
                self.jitter_t0, self.jitter_v0 = t, self.jitter_v1
            else:
                self.jitter_t0, self.jitter_v0 = self.jitter_t1, self.jitter_v1
            self.jitter_t1 = self.jitter_t0 + period
            self.jitter_v1 = self.rng.uniform(-amplitude, amplitude)
        span = self.jitter_t1 - self.jitter_t0
        return self.jitter_v0 + (self.jitter_v1 - self.jitter_v0) * (t - self.jitter_t0) / span

    def arrive(self, frame: bytes, now: float) -> None:
        p = self.params
        size = len(frame)
        self.frames_in += 1
        self.bytes_in += size
        self.max_frame = max(self.max_frame, size)
        if self.state.is_down(now):
            self.dropped_cut += 1
            return
        if p.loss and self.rng.random() < p.loss:
            self.dropped_loss += 1
            return
        depart = now
        if p.rate_bps:
            bits = size * 8.0
            start = max(now, self.last_depart)
            depth = max(p.burst_bytes, size) * 8.0
            tokens = min(depth, self.tokens + (start - self.last_depart) * p.rate_bps)
            if tokens >= bits:
                depart, tokens = start, tokens - bits
            else:
                depart, tokens = start + (bits - tokens) / p.rate_bps, 0.0
            if p.queue_limit_s is not None and depart - now > p.queue_limit_s:
                self.dropped_queue += 1  # drop-tail: the queue already holds more than the limit
                return
            self.tokens, self.last_depart = tokens, depart
        delay = p.delay_s + (self._jitter(depart, p.jitter_s) if p.jitter_s else 0.0)
        deliver = depart + max(0.0, delay)
        if not p.reorder:
            deliver = max(deliver, self.last_deliver)
            self.last_deliver = deliver
        self.delays.append(depart - now)
        self.seq += 1
        heapq.heappush(self.heap, (deliver, self.seq, frame))

    def _release(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            due, _, frame = heapq.heappop(heap)
            if self.state.is_down(now):
                self.dropped_cut += 1  # in flight when the link went down
                continue
            try:
                self.tx.send(frame)
            except OSError as exc:  # the peer's backlog is full, or the interface went away
                log.debug("%s: frame not sent: %s", self.name, exc)
                continue
            self.frames_passed += 1
            self.bytes_passed += len(frame)
            self.lateness.append(now - due)

    def _receive(self) -> None:
        now = time.monotonic()
        to_monotonic = now - time.time()
        for _ in range(512):  # bounded, so that due frames are not held back by a flood
            try:
                frame, ancillary, _, address = self.rx.recvmsg(MAX_FRAME, 64)
            except BlockingIOError:
                return
            if not self._ignores_outgoing and address[2] == PACKET_OUTGOING:
                continue
            arrival = now
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    seconds, nanoseconds = struct.unpack_from("qq", data)
                    arrival = min(now, seconds + nanoseconds * 1e-9 + to_monotonic)
            self.arrive(frame, arrival)

    def _run(self) -> None:
        rx = [self.rx]
        try:
            while not self.stopping:
                now = time.monotonic()
                self._release(now)
                timeout = 0.1 if not self.heap else max(0.0, min(0.1, self.heap[0][0] - now))
                ready, _, _ = select.select(rx, [], [], timeout)
                if ready:
                    self._receive()
                self.cpu_s = time.thread_time()
        except OSError:
            if not self.stopping:
                log.exception("%s: the forwarder stopped", self.name)

    def close(self) -> None:
        self.stopping = True
        self.thread.join(timeout=2)
        self.rx.close()
        self.tx.close()


class Forwarder:
    """Both directions of a link (in the forwarder process)."""

    def __init__(self, kiosk_if: str, world_if: str, profile: Profile, seed: int) -> None:
        self.state = LinkState()
        self.down = Pipe("down", world_if, kiosk_if, profile.down, self.state, seed)
        self.up = Pipe("up", kiosk_if, world_if, profile.up, self.state, seed + 1)
        self._started = time.monotonic()
        self._cpu_base = time.process_time()

    def start(self) -> None:
        self.down.thread.start()
        self.up.thread.start()

    def set(self, profile: Profile) -> None:
        self.down.params, self.up.params = profile.down, profile.up

    def cut(self, seconds: float) -> None:
        self.state.down_until = max(self.state.down_until, time.monotonic() + seconds)

    def schedule(self, cuts: Sequence[tuple[float, float]]) -> None:
        now = time.monotonic()
        self.state.windows = tuple((now + at, now + at + length) for at, length in cuts)

    def restore(self) -> None:
        self.state.down_until, self.state.windows = 0.0, ()

    def reset(self) -> None:
        self.down.reset()
        self.up.reset()
        self._started = time.monotonic()
        self._cpu_base = time.process_time()

    def stats(self) -> LinkStats:
        return LinkStats(
            down=self.down.stats(),
            up=self.up.stats(),
            wall_s=round(time.monotonic() - self._started, 4),
            cpu_s=round(time.process_time() - self._cpu_base, 4),
        )

    def close(self) -> None:
        self.down.close()
        self.up.close()

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.get("op")
        if op == "set":
            self.set(Profile.from_json(command["profile"]))
        elif op == "cut":
            self.cut(float(command["seconds"]))
        elif op == "schedule":
            self.schedule([(float(a), float(b)) for a, b in command["cuts"]])
        elif op == "restore":
            self.restore()
        elif op == "reset":
            self.reset()
        elif op == "stats":
            return {"ok": True, "stats": dataclasses.asdict(self.stats())}
        else:
            return {"ok": False, "error": f"unknown command {op!r}"}
        return {"ok": True}


def serve(args: argparse.Namespace) -> int:
    """The forwarder process: JSON commands on stdin, one JSON answer per line on stdout."""
    # Frames wait on this process's timers: ahead of the call's own processes when the machine is busy.
    with contextlib.suppress(OSError):
        os.nice(-10)
    forwarder = Forwarder(
        args.kiosk_if, args.world_if, Profile.from_json(json.loads(args.profile)), args.seed
    )
    forwarder.start()
    print(json.dumps({"ok": True, "ready": True}), flush=True)
    clean_exit = False
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("op") == "quit":
            clean_exit = True
            break
        print(json.dumps(forwarder.handle(command)), flush=True)
    forwarder.close()
    if not clean_exit:
        # The parent died without closing the link (SIGKILL, crash): nobody else will remove it.
        log.warning("link %s: parent gone, removing its namespaces", args.base)
        remove_run(args.base)
    return 0


# --------------------------------------------------------------------------- namespaces


def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)}: {result.stderr.strip()}")
    return result


def names(base: str) -> dict[str, str]:
    return {
        "kiosk_ns": f"{base}-kiosk",
        "world_ns": f"{base}-world",
        "kiosk_if": f"{base}k",
        "world_if": f"{base}w",
    }


@contextlib.contextmanager
def netns(name: str) -> Iterator[None]:
    """Run the block with this thread in the named network namespace: sockets made inside stay
    there. Only this thread moves (setns); do not await inside the block."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            os.setns(target, os.CLONE_NEWNET)
        finally:
            os.close(target)
        try:
            yield
        finally:
            os.setns(own, os.CLONE_NEWNET)
    finally:
        os.close(own)


def _disable_offloads(ifname: str) -> None:
    """veth checksums and segments lazily (TSO/GSO, partial checksums): a frame read on the peer by
    AF_PACKET may be 64 KiB with no checksum yet, and would be dropped on the far side once copied.
    Turning the offloads off makes the sender's kernel finish every frame. (ethtool -K, without
    needing ethtool installed.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for command in ETHTOOL_OFFLOADS:
            value = array.array("I", [command, 0])
            request = struct.pack("16sP", ifname.encode(), value.buffer_info()[0]).ljust(40, b"\0")
            try:
                fcntl.ioctl(s.fileno(), SIOCETHTOOL, request)
            except OSError as exc:
                log.debug("%s: ethtool command %#x refused: %s", ifname, command, exc)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace_processes(namespace: str) -> None:
    result = _ip("netns", "pids", namespace, check=False)
    for word in result.stdout.split():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(word), signal.SIGKILL)


def remove_run(base: str) -> None:
    """Remove one run's veths and namespaces, and end what still runs inside them."""
    n = names(base)
    for namespace in (n["kiosk_ns"], n["world_ns"]):
        _kill_namespace_processes(namespace)
    for ifname in (n["kiosk_if"], n["world_if"]):
        # Deleting the root-side end removes its peer at once; a namespace itself goes away only
        # when its last user does, asynchronously.
        _ip("link", "del", ifname, check=False)
    for namespace in (n["kiosk_ns"], n["world_ns"]):
        _ip("netns", "del", namespace, check=False)


def existing_runs() -> set[str]:
    """The bases of every namespace or interface of this module's naming on the machine."""
    found = set()
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    links = _ip("-o", "link", "show", check=False).stdout.split("\n")
    candidates = [line.split()[0] for line in listed if line.strip()]
    candidates += [line.split(":")[1].strip().split("@")[0] for line in links if line.count(":") >= 2]
    for name in candidates:
        if match := _NAME.match(name):
            found.add(f"{PREFIX}{match.group(1)}-{match.group(2)}")
    return found


def sweep_stale() -> list[str]:
    """Remove leftovers of this module's runs whose owning process is gone (a SIGKILL, a power cut):
    only names of this prefix, and never a live run's, here or in a parallel process."""
    removed = []
    for base in existing_runs():
        match = _NAME.match(base + "k")
        assert match is not None
        pid = int(match.group(1), 16)
        if base in _live_bases or (pid != os.getpid() and _pid_alive(pid)):
            continue
        log.info("removing a leftover link %s (its process %d is gone)", base, pid)
        remove_run(base)
        removed.append(base)
    return removed


# --------------------------------------------------------------------------- the link (parent)


class NetnsTransport(httpx.BaseTransport):
    """An httpx transport whose connections are opened inside a network namespace."""

    def __init__(self, namespace: str, **kwargs: Any) -> None:
        self._namespace = namespace
        self._inner = httpx.HTTPTransport(**kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # The socket is made (connected) inside handle_request; once made it stays in the namespace.
        with netns(self._namespace):
            return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@dataclass
class FieldLink:
    """Two namespaces joined by an emulated link; a context manager.

    with FieldLink("adsl") as link:
        link.run_in("world", ["python3", "-m", "http.server", "--bind", link.world_ip, "8000"])
        link.run_in("kiosk", ["curl", f"http://{link.world_ip}:8000/"]).wait()
        print(link.stats())
    """

    profile: Profile | str = "loopback-like"
    seed: int | None = None
    base: str = ""
    kiosk_ns: str = ""
    world_ns: str = ""
    kiosk_ip: str = KIOSK_IP
    world_ip: str = WORLD_IP
    _processes: list[subprocess.Popen[Any]] = field(default_factory=list)
    _forwarder: subprocess.Popen[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _old_sigterm: Any = None

    def __post_init__(self) -> None:
        self.profile = profile_named(self.profile)
        if self.seed is None:
            self.seed = random.randrange(1 << 30)

    # ---- life cycle

    def __enter__(self) -> FieldLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> FieldLink:
        if os.geteuid() != 0:
            raise PermissionError("the link emulator needs root (network namespaces, raw sockets)")
        sweep_stale()
        self.base = f"{PREFIX}{os.getpid():x}-{next(_run_numbers):x}"
        n = names(self.base)
        self.kiosk_ns, self.world_ns = n["kiosk_ns"], n["world_ns"]
        _live_bases.add(self.base)
        atexit.register(self.close)
        self._catch_sigterm()
        try:
            self._build()
            self.start_forwarding()
        except BaseException:
            self.close()
            raise
        log.info(
            "link %s up: kiosk %s in %s, world %s in %s",
            self.base,
            KIOSK_IP,
            self.kiosk_ns,
            WORLD_IP,
            self.world_ns,
        )
        return self

    def _build(self) -> None:
        n = names(self.base)
        sides: tuple[tuple[Side, Side, str, str], ...] = (
            ("kiosk", "world", self.kiosk_ns, n["kiosk_if"]),
            ("world", "kiosk", self.world_ns, n["world_if"]),
        )
        for side, other, namespace, outer in sides:
            _ip("netns", "add", namespace)
            # The inner end is made directly in its namespace under a fixed name: no clash with a
            # parallel run's, and the root namespace never holds it.
            _ip("link", "add", outer, "type", "veth", "peer", "name", INNER_IF, "netns", namespace,
                "address", MACS[side])  # fmt: skip
            # The root-side end only carries frames for the forwarder: no IPv6 chatter, no ARP.
            with (
                contextlib.suppress(OSError),
                open(f"/proc/sys/net/ipv6/conf/{outer}/disable_ipv6", "w") as sysctl,
            ):
                sysctl.write("1")
            _ip("link", "set", outer, "arp", "off", "up")
            subprocess.run(
                ["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
                check=True, capture_output=True,
            )  # fmt: skip
            with netns(namespace):
                _disable_offloads(INNER_IF)
            _ip("-n", namespace, "addr", "add", f"{IPS[side]}/{PREFIX_LEN}", "dev", INNER_IF)
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "link", "set", INNER_IF, "up")
            # Static neighbours: no ARP on the lossy link, so only the traffic under test crosses it.
            _ip("-n", namespace, "neigh", "replace", IPS[other], "lladdr", MACS[other], "dev", INNER_IF,
                "nud", "permanent")  # fmt: skip

    def start_forwarding(self) -> None:
        """Start the forwarder process (done by `start`); until then nothing crosses the link."""
        if self._forwarder is not None:
            return
        n = names(self.base)
        assert isinstance(self.profile, Profile)
        process = subprocess.Popen(
            [
                sys.executable, "-m", "kiosk_client.tools.link_emulator", "serve",
                "--base", self.base, "--kiosk-if", n["kiosk_if"], "--world-if", n["world_if"],
                "--profile", json.dumps(self.profile.to_json()), "--seed", str(self.seed),
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the link forwarder did not start (exit {process.wait(5)})")
        self._forwarder = process

    def stop_forwarding(self) -> None:
        """Stop the forwarder process: the namespaces stay, and nothing crosses between them."""
        process, self._forwarder = self._forwarder, None
        if process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert process.stdin is not None
            process.stdin.write('{"op": "quit"}\n')
            process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def close(self) -> None:
        """Stop everything started in the namespaces, the forwarder, and remove the namespaces."""
        atexit.unregister(self.close)
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        self.stop_forwarding()
        if self.base:
            remove_run(self.base)
            _live_bases.discard(self.base)
        self._restore_sigterm()

    def _catch_sigterm(self) -> None:
        """A SIGTERM (a CI timeout, systemd, `kill`) unwinds like an exception, so that `with` and
        `close` still remove the namespaces; only where nobody else handles SIGTERM already."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        self._old_sigterm = signal.signal(signal.SIGTERM, on_sigterm)

    def _restore_sigterm(self) -> None:
        if self._old_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    # ---- using the namespaces

    def namespace(self, side: Side) -> str:
        return self.kiosk_ns if side == "kiosk" else self.world_ns

    def ip(self, side: Side) -> str:
        return IPS[side]

    def netns_argv(self, side: Side, argv: Sequence[str]) -> list[str]:
        """The command line that runs `argv` inside one side's namespace."""
        return ["ip", "netns", "exec", self.namespace(side), *argv]

    def run_in(self, side: Side, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start a process inside one side's namespace; it is stopped when the link closes."""
        process: subprocess.Popen[Any] = subprocess.Popen(self.netns_argv(side, argv), **popen)
        self._processes.append(process)
        return process

    def inside(self, side: Side) -> contextlib.AbstractContextManager[None]:
        """`with link.inside("world"): sock = socket.socket(...)`: sockets made in the block belong
        to that namespace (this thread only)."""
        return netns(self.namespace(side))

    def http_client(self, side: Side, **kwargs: Any) -> httpx.Client:
        """A synchronous httpx client whose connections start from one side's namespace."""
        return httpx.Client(transport=NetnsTransport(self.namespace(side)), **kwargs)

    # ---- driving the link

    def _command(self, command: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            process = self._forwarder
            if process is None or process.stdin is None or process.stdout is None:
                raise RuntimeError("the link forwarder is not running")
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()
            answer: dict[str, Any] = json.loads(process.stdout.readline())
        if not answer.get("ok"):
            raise RuntimeError(f"link forwarder: {answer.get('error')}")
        return answer

    def set(self, profile: Profile | str) -> None:
        """Change the link's characteristics now (queued frames keep their times)."""
        self.profile = profile_named(profile)
        self._command({"op": "set", "profile": self.profile.to_json()})

    def cut(self, seconds: float) -> None:
        """Take the link fully down for `seconds`, from now (both directions, frames in flight too)."""
        self._command({"op": "cut", "seconds": seconds})

    def start_cut_schedule(self, cuts: Sequence[tuple[float, float]] | None = None) -> None:
        """Start the cuts of the profile (or these): each (seconds from now, seconds down)."""
        assert isinstance(self.profile, Profile)
        chosen = self.profile.cuts if cuts is None else tuple(cuts)
        self._command({"op": "schedule", "cuts": [list(c) for c in chosen]})

    def restore(self) -> None:
        """End any cut now and forget the schedule."""
        self._command({"op": "restore"})

    def reset_stats(self) -> None:
        self._command({"op": "reset"})

    def stats(self) -> LinkStats:
        data = self._command({"op": "stats"})["stats"]
        return LinkStats(
            down=DirectionStats.from_json(data["down"]),
            up=DirectionStats.from_json(data["up"]),
            wall_s=data["wall_s"],
            cpu_s=data["cpu_s"],
        )


# --------------------------------------------------------------------------- command line


def run_command(profile: str, argv: Sequence[str], seed: int | None = None, out: IO[str] = sys.stderr) -> int:
    """`kiosk-client field-link`: run `argv` in the kiosk namespace behind the link; its exit code."""
    with FieldLink(profile, seed=seed) as link:
        print(
            f"field link {link.base} ({profile}): the kiosk side is {link.kiosk_ip} (namespace "
            f"{link.kiosk_ns}); the world side is {link.world_ip} — run servers there with "
            f"`ip netns exec {link.world_ns} …`",
            file=out,
            flush=True,
        )
        assert isinstance(link.profile, Profile)
        if link.profile.cuts:
            link.start_cut_schedule()
            print(f"cuts (s from now, s down): {list(link.profile.cuts)}", file=out, flush=True)
        process = link.run_in("kiosk", argv)
        try:
            code = process.wait()
        finally:
            with contextlib.suppress(RuntimeError):
                print(json.dumps(link.stats().to_json()), file=out, flush=True)
        return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk_client.tools.link_emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="the forwarder process (started by FieldLink)")
    s.add_argument("--base", required=True)
    s.add_argument("--kiosk-if", required=True)
    s.add_argument("--world-if", required=True)
    s.add_argument("--profile", required=True, help="the profile as JSON")
    s.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
