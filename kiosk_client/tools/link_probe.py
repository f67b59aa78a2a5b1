"""Round trips across a field link while a call runs on it: one small UDP datagram from the kiosk
side every 100 ms, echoed by the world side.

Why a probe of its own: the figure must be the same measure for the kiosk's call and for the
Chromium pair's (each peer's own RTT estimate is computed differently), and it must include the queue
the call builds on the link, which is what a citizen feels (the emulator's queue-delay counters give
the queue alone). There is no `ping` on the machines (and ICMP would need raw sockets anyway).

It runs in a process of its own, not in the bench's, so that a busy interpreter (aiortc, Playwright)
does not add its own delays to the kiosk's figures and not to Chromium's. Each thread enters its
side's namespace. It writes one line per probe, "<wall time sent> <rtt ms or -1 if lost>", flushed,
and stops when its stdin closes.

    python -m kiosk_client.tools.link_probe --kiosk-ns NS --world-ns NS --out FILE
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import struct
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .link_emulator import KIOSK_IP, WORLD_IP, netns

PORT = 9377
EVERY_S = 0.1
LOST_AFTER_S = 3.0  # longer than any queue (400 ms) plus the satellite's 600 ms round trip, twice
PROBE = struct.Struct("!Qd")  # sequence number, monotonic send time
PADDING = 64 - PROBE.size  # a small packet, like a VoIP one: it queues behind the call's


def echo(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while True:
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)


def probe(sock: socket.socket, out: Path, every_s: float, stop: threading.Event) -> None:
    sent: dict[int, tuple[float, float]] = {}  # sequence → (monotonic, wall) sent
    lock = threading.Lock()
    with out.open("w") as file:

        def write(wall: float, rtt_ms: float) -> None:
            file.write(f"{wall:.4f} {rtt_ms:.2f}\n")
            file.flush()

        def receive() -> None:
            with contextlib.suppress(OSError):
                while True:
                    data = sock.recv(2048)
                    now = time.monotonic()
                    sequence, at = PROBE.unpack_from(data)
                    with lock:
                        entry = sent.pop(sequence, None)
                        if entry is not None:
                            write(entry[1], (now - at) * 1000)

        threading.Thread(target=receive, daemon=True).start()
        sequence = 0
        next_at = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            with lock:
                for old, (at, wall) in list(sent.items()):
                    if now - at > LOST_AFTER_S:
                        del sent[old]
                        write(wall, -1)
            sequence += 1
            with lock:
                sent[sequence] = (now, time.time())
            with contextlib.suppress(OSError):  # the link may be cut: the probe counts as lost
                sock.send(PROBE.pack(sequence, now) + bytes(PADDING))
            next_at += every_s
            stop.wait(max(0.0, next_at - time.monotonic()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk_client.tools.link_probe")
    parser.add_argument("--kiosk-ns", required=True)
    parser.add_argument("--world-ns", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--every", type=float, default=EVERY_S)
    args = parser.parse_args(argv)
    with netns(args.world_ns):
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind((WORLD_IP, PORT))
    with netns(args.kiosk_ns):
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.connect((WORLD_IP, PORT))
    assert client.getsockname()[0] == KIOSK_IP
    threading.Thread(target=echo, args=(server,), daemon=True).start()
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(client, args.out, args.every, stop), daemon=True)
    prober.start()
    sys.stdin.read()  # until the bench closes the pipe (or goes away)
    stop.set()
    prober.join(2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
