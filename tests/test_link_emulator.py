"""The field-link emulator, measured with real traffic between its two namespaces.

Both namespaces share this machine's clock, so a datagram carries its send time and the receiver
reads the one-way delay directly, from the time its kernel took the datagram (SO_TIMESTAMPNS): the
test process's own scheduling does not count. Needs root (network namespaces, veths, raw sockets).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from kiosk_client.tools import link_emulator
from kiosk_client.tools.link_emulator import PROFILES, Direction, FieldLink, Profile, Side

# The forwarder is a userspace process: its timing is the CPU's, so the tests that time it run alone.
timed = pytest.mark.solo

pytestmark = [
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="the link emulator needs root: network namespaces, veth pairs and AF_PACKET sockets",
    ),
]

# Sequence number, send time (time.time, as kernel timestamps), and the time an echo spent in the
# echoing process (subtracted from the round trip: the test process may be slow to answer).
HEADER = struct.Struct("!Idd")
SO_TIMESTAMPNS = 35
OVERHEAD = 14 + 20 + 8  # Ethernet + IPv4 + UDP: what the emulator's rate counts beyond the payload
PORT = 9000


@dataclass
class Arrival:
    seq: int
    sent: float
    received: float
    size: int
    dwell: float = 0.0


def udp_socket(link: FieldLink, side: Side, bind: bool = False) -> socket.socket:
    with link.inside(side):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    if bind:
        sock.bind((link.ip(side), PORT))
    return sock


class Receiver:
    """Collects datagrams on a socket in a thread until stopped."""

    def __init__(self, sock: socket.socket, echo: bool = False) -> None:
        self.sock = sock
        self.echo = echo
        self.arrivals: list[Arrival] = []
        self._stop = False
        sock.settimeout(0.05)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data, ancillary, _, peer = self.sock.recvmsg(65536, 64)
            except TimeoutError:
                continue
            now = time.time()
            for level, kind, stamp in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack_from("qq", stamp)
                    now = seconds + nanoseconds * 1e-9
            seq, sent, dwell = HEADER.unpack_from(data)
            if self.echo:
                self.sock.sendto(HEADER.pack(seq, sent, time.time() - now) + data[HEADER.size :], peer)
            self.arrivals.append(Arrival(seq, sent, now, len(data), dwell))

    def stop(self) -> list[Arrival]:
        self._stop = True
        self._thread.join(2)
        return self.arrivals


def send_stream(sock: socket.socket, to: tuple[str, int], rate_bps: float, seconds: float, size: int) -> int:
    """Paced datagrams of `size` bytes at `rate_bps` (counted on the wire, as the emulator counts)."""
    interval = (size + OVERHEAD) * 8 / rate_bps
    padding = b"\0" * (size - HEADER.size)
    start = time.monotonic()
    seq = 0
    while (now := time.monotonic()) < start + seconds:
        due = start + seq * interval
        if due > now + 0.001:
            time.sleep(due - now)
            continue
        sock.sendto(HEADER.pack(seq, time.time(), 0.0) + padding, to)
        seq += 1
    return seq


@contextlib.contextmanager
def stream(
    link: FieldLink, src: Side, dst: Side, echo: bool = False
) -> Iterator[tuple[socket.socket, Receiver]]:
    receiver_socket = udp_socket(link, dst, bind=True)
    sender = udp_socket(link, src)
    receiver = Receiver(receiver_socket, echo=echo)
    try:
        yield sender, receiver
    finally:
        receiver.stop()
        sender.close()
        receiver_socket.close()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lossless(profile: Profile) -> Profile:
    return replace(profile, down=replace(profile.down, loss=0.0), up=replace(profile.up, loss=0.0))


# --------------------------------------------------------------------------- the profiles' figures


def test_profiles_are_the_field_networks_ones() -> None:
    expected = {  # FIELD-NETWORKS.md: down, up (bit/s), RTT, ± RTT, loss
        "adsl": (8e6, 800e3, 0.040, 0.0, 0.005),
        "valley-4g": (5e6, 1.5e6, 0.080, 0.030, 0.02),
        "satellite": (20e6, 2e6, 0.600, 0.0, 0.005),
        "cut": (8e6, 800e3, 0.040, 0.0, 0.005),
    }
    for name, (down, up, rtt, jitter, loss) in expected.items():
        p = PROFILES[name]
        assert (p.down.rate_bps, p.up.rate_bps) == (down, up), name
        assert p.down.delay_s + p.up.delay_s == pytest.approx(rtt), name
        assert p.down.jitter_s + p.up.jitter_s == pytest.approx(jitter), name
        assert p.down.loss == p.up.loss == loss, name
        assert p.down.queue_limit_s == p.up.queue_limit_s == 0.4, name
    assert [length for _, length in PROFILES["cut"].cuts] == [10.0, 60.0]
    assert PROFILES["loopback-like"].up == Direction(queue_limit_s=None)


# --------------------------------------------------------------------------- measured


@timed
@pytest.mark.parametrize(
    ("name", "rtt_ms", "spread_ms"), [("adsl", 40, 0), ("valley-4g", 80, 30), ("satellite", 600, 0)]
)
def test_round_trip_time_follows_the_profile(name: str, rtt_ms: float, spread_ms: float) -> None:
    with FieldLink(name, seed=7) as link, stream(link, "kiosk", "world", echo=True) as (sender, _):
        replies = Receiver(sender)
        sent = 0
        start = time.monotonic()
        while time.monotonic() < start + 1.5:  # a probe every 15 ms, echoed by the world side
            sender.sendto(HEADER.pack(sent, time.time(), 0.0) + b"\0" * 88, (link.world_ip, PORT))
            sent += 1
            time.sleep(0.015)
        time.sleep(rtt_ms / 1000 + spread_ms / 1000 + 0.1)
        arrivals = replies.stop()
    rtts = [(a.received - a.sent - a.dwell) * 1000 for a in arrivals]
    assert len(rtts) >= 0.85 * sent, f"{len(rtts)} of {sent} probes came back"
    assert min(rtts) >= rtt_ms - spread_ms - 1
    assert max(rtts) <= rtt_ms + spread_ms + 25  # scheduling on a busy machine: some ms at most
    assert quantile(rtts, 0.5) == pytest.approx(rtt_ms, abs=max(4.0, spread_ms / 3))
    if spread_ms:  # the jitter is there, and it does not reorder
        assert quantile(rtts, 0.9) - quantile(rtts, 0.1) >= spread_ms / 3
        seqs = [a.seq for a in arrivals]
        assert seqs == sorted(seqs)


@timed
def test_uplink_rate_holds_and_the_queue_never_exceeds_400_ms() -> None:
    """Twice the adsl uplink offered for 4 s: the uplink passes 800 kbit/s, drops at the tail of a
    400 ms queue, and no datagram waits longer (plus the 20 ms one-way delay)."""
    with FieldLink(lossless(PROFILES["adsl"]), seed=1) as link:
        with stream(link, "kiosk", "world") as (sender, receiver):
            send_stream(sender, (link.world_ip, PORT), 1.6e6, 4.0, 1000)
            time.sleep(0.6)
            arrivals = receiver.stop()
        stats = link.stats().up
    steady = [a for a in arrivals if a.received >= arrivals[0].received + 1.0]
    span = steady[-1].received - steady[0].received
    rate = sum(a.size + OVERHEAD for a in steady[1:]) * 8 / span
    assert rate == pytest.approx(800e3, rel=0.10)
    delays = [(a.received - a.sent) * 1000 for a in arrivals]
    print(f"uplink {rate / 1e3:.0f} kbit/s; one-way delay p50 {quantile(delays, 0.5):.1f} ms, max "
          f"{max(delays):.1f} ms; the forwarder late by {stats.late_ms}")  # fmt: skip
    assert max(delays) <= 20 + 400 + 25
    assert quantile(delays, 0.5) >= 20 + 300  # the queue did fill: the limit was what held it
    assert stats.dropped_queue > 0
    assert stats.queue_delay_ms["max"] <= 400
    assert stats.dropped_socket == 0


@timed
def test_downlink_passes_20_mbit_s(record_property: pytest.RecordProperty) -> None:
    """The satellite downlink, offered 22 Mbit/s: 20 Mbit/s through, without the forwarder falling
    behind (no drop in its socket), with the CPU it took recorded."""
    with FieldLink(lossless(PROFILES["satellite"]), seed=2) as link:
        with stream(link, "world", "kiosk") as (sender, receiver):
            link.reset_stats()
            sent = send_stream(sender, (link.kiosk_ip, PORT), 22e6, 3.0, 1472)
            time.sleep(0.8)
            arrivals = receiver.stop()
        stats = link.stats()
    steady = [a for a in arrivals if a.received >= arrivals[0].received + 0.5]
    span = steady[-1].received - steady[0].received
    rate = sum(a.size + OVERHEAD for a in steady[1:]) * 8 / span
    cpu = stats.cpu_s / 3.0  # the forwarder's CPU over the 3 s of traffic, as a share of one core
    record_property("downlink_bps", round(rate))
    record_property("forwarder_cpu_share", round(cpu, 3))
    print(f"downlink {rate / 1e6:.2f} Mbit/s of {sent} datagrams; forwarder CPU {cpu:.0%} of a core")
    assert rate == pytest.approx(20e6, rel=0.10)
    assert stats.down.dropped_socket == 0
    assert stats.down.max_frame <= 1514  # no offloaded super-frames reach the forwarder
    assert cpu < 0.9


@timed
def test_loss_rate_matches_the_profile() -> None:
    """10 000 datagrams over valley-4g's 2 % loss (rate and delay lifted for speed): the count lost
    lies within 5 standard deviations of the binomial's mean, and every loss is the emulator's."""
    loss = PROFILES["valley-4g"].up.loss
    profile = Profile("loss", Direction(loss=loss), Direction(loss=loss))
    n = 10_000
    with FieldLink(profile, seed=3) as link:
        with stream(link, "kiosk", "world") as (sender, receiver):
            for seq in range(n):
                sender.sendto(HEADER.pack(seq, time.time(), 0.0) + b"\0" * 20, (link.world_ip, PORT))
                if seq % 50 == 49:
                    time.sleep(0.004)  # ≈ 10 000 datagrams/s: the forwarder's socket never overflows
            time.sleep(0.3)
            arrivals = receiver.stop()
        stats = link.stats().up
    lost = n - len(arrivals)
    sigma = math.sqrt(n * loss * (1 - loss))
    assert abs(lost - n * loss) <= 5 * sigma, f"{lost} lost of {n}"
    assert stats.dropped_loss == lost
    assert stats.frames_passed == len(arrivals)


@timed
def test_a_cut_stops_everything_and_traffic_resumes() -> None:
    """A cut on command (1 s) and one from a schedule (0.5 s): echoes stop for as long, then resume."""
    with FieldLink("loopback-like") as link, stream(link, "kiosk", "world", echo=True) as (sender, _):
        replies = Receiver(sender)
        start = time.time()
        link.start_cut_schedule([(2.0, 0.5)])
        cut = False
        seq = 0
        while time.time() < start + 3.0:
            if not cut and time.time() >= start + 0.5:
                link.cut(1.0)
                cut = True
            sender.sendto(HEADER.pack(seq, time.time(), 0.0) + b"\0" * 20, (link.world_ip, PORT))
            seq += 1
            time.sleep(0.01)
        time.sleep(0.1)
        arrivals = replies.stop()
        stats = link.stats()
    times = [a.received - start for a in arrivals]
    gaps = sorted(((b - a, a) for a, b in itertools.pairwise(times)), reverse=True)
    (first, at_first), (second, at_second) = sorted(gaps[:2], key=lambda g: g[1])
    assert first == pytest.approx(1.0, abs=0.08) and at_first == pytest.approx(0.5, abs=0.08)
    assert second == pytest.approx(0.5, abs=0.08) and at_second == pytest.approx(2.0, abs=0.08)
    assert gaps[2][0] < 0.1  # elsewhere, echoes kept flowing
    assert times[-1] > 2.8  # and they came back after the last cut
    assert stats.up.dropped_cut > 0


def test_nothing_crosses_without_the_forwarder() -> None:
    with FieldLink("loopback-like") as link, stream(link, "kiosk", "world") as (sender, receiver):
        link.stop_forwarding()
        for seq in range(20):
            sender.sendto(HEADER.pack(seq, time.time(), 0.0), (link.world_ip, PORT))
        time.sleep(0.3)
        assert receiver.arrivals == []
        link.start_forwarding()
        for seq in range(20, 40):
            sender.sendto(HEADER.pack(seq, time.time(), 0.0), (link.world_ip, PORT))
        time.sleep(0.3)
        assert [a.seq for a in receiver.arrivals] == list(range(20, 40))


# --------------------------------------------------------------------------- cleanup


def leftovers(base: str) -> list[str]:
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [line for line in (namespaces + links).splitlines() if base in line]


def wait_gone(base: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := leftovers(base)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_closing_removes_namespaces_veths_and_processes_even_on_an_exception() -> None:
    with pytest.raises(RuntimeError, match="boom"), FieldLink("adsl") as link:
        base = link.base
        sleeper = link.run_in("world", ["sleep", "60"])
        assert len(leftovers(base)) == 4  # two namespaces, two root-side veths
        raise RuntimeError("boom")
    assert sleeper.poll() is not None
    assert leftovers(base) == []


def test_sigterm_on_the_command_line_tool_cleans_up() -> None:
    tool = subprocess.Popen(
        [sys.executable, "-m", "kiosk_client", "field-link", "--profile", "adsl", "--", "sleep", "60"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert tool.stderr is not None
    line = ""
    while not line.startswith("field link"):  # after the log lines
        line = tool.stderr.readline()
        assert line, "the tool ended before announcing the link"
    base = line.split()[2]
    assert base.startswith(link_emulator.PREFIX) and link_emulator.WORLD_IP in line
    assert len(leftovers(base)) == 4
    tool.send_signal(signal.SIGTERM)
    assert tool.wait(10) != 0
    assert leftovers(base) == []
    tool.stderr.close()


def test_a_killed_owner_leaves_nothing_behind() -> None:
    """SIGKILL gives no chance to clean up: the forwarder sees its parent go and removes the link."""
    owner = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from kiosk_client.tools.link_emulator import FieldLink; "
         "link = FieldLink('adsl').start(); print(link.base, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert owner.stdout is not None
    base = owner.stdout.readline().strip()
    assert len(leftovers(base)) == 4
    owner.kill()
    owner.wait()
    owner.stdout.close()
    assert wait_gone(base) == []


def test_a_new_link_sweeps_dead_runs_leftovers_but_not_live_ones() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{link_emulator.PREFIX}{dead.pid:x}-1"
    live = f"{link_emulator.PREFIX}{os.getppid():x}-1"  # a parallel run's: its process is alive
    for base in (stale, live):
        subprocess.run(["ip", "netns", "add", f"{base}-world"], check=True)
        subprocess.run(
            ["ip", "link", "add", f"{base}w", "type", "veth", "peer", "name", f"{base}x"], check=True
        )
    try:
        with FieldLink("loopback-like"):
            assert leftovers(stale) == []
            assert len(leftovers(live)) == 3  # its namespace and both ends of its veth
    finally:
        link_emulator.remove_run(live)
        link_emulator.remove_run(stale)


def test_the_command_line_runs_the_command_in_the_kiosk_namespace() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kiosk_client", "field-link", "--profile", "loopback-like", "--",
         "sh", "-c", "ip -o -4 addr show dev fl0; exit 3"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 3
    assert f"inet {link_emulator.KIOSK_IP}/24" in done.stdout
    assert f"the world side is {link_emulator.WORLD_IP}" in done.stderr
    assert '"cpu_share"' in done.stderr  # the link's counters at the end
