"""A small network for the TURN tests: three network namespaces and a real coturn.

    kiosk ns  10.78.1.2 ──veth── 10.78.1.1 ┐
                                           ├─ relay ns: coturn and the reference central on 10.78.0.1
    clerk ns  10.78.2.2 ──veth── 10.78.2.1 ┘  (no forwarding: the kiosk and the clerk cannot reach
                                               each other, only 10.78.0.1)

Each side has a route to 10.78.0.1 and nothing else, so media can only go through the relay. Code
runs "inside" a namespace on a thread pinned to it (os.setns is per thread, and a socket stays in the
namespace it was made in): the kiosk engine on the kiosk's thread, the clerk bot on the clerk's, the
central on the relay's. Everything is torn down at the end, coturn included.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

RELAY_IP = "10.78.0.1"
KIOSK_IP = "10.78.1.2"
CLERK_IP = "10.78.2.2"
TLS_PORT = 443  # stands for the HTTPS port a locked-down network leaves open


def require_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the TURN tests need root: network namespaces, veth links and nftables")
    missing = [tool for tool in ("ip", "nft", "turnserver") if shutil.which(tool) is None]
    # As root, a missing tool is a broken set-up (scripts/bootstrap.sh installs them), not a skip.
    assert not missing, f"missing {missing}: run scripts/bootstrap.sh as root (coturn, nftables, iproute2)"


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


class NetnsThread:
    """A thread inside one network namespace, with its own asyncio loop."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        def main() -> None:
            try:
                with open(f"/run/netns/{netns}") as handle:
                    os.setns(handle.fileno(), os.CLONE_NEWNET)
            except OSError as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            asyncio.set_event_loop(self.loop)
            self.loop.run_forever()

        self._thread = threading.Thread(target=main, name=f"netns-{netns}", daemon=True)
        self._thread.start()
        ready.result(timeout=5)

    def submit[T](self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run[T](self, coro: Coroutine[Any, Any, T]) -> T:
        """Await, from another loop, a coroutine run inside this namespace."""
        return await asyncio.wrap_future(self.submit(coro))

    def call[T](self, fn: Callable[[], T], timeout: float = 60) -> T:
        """A blocking function run inside this namespace (new threads it starts stay in it)."""

        async def wrapped() -> T:
            return await asyncio.to_thread(fn)

        return self.submit(wrapped()).result(timeout)

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            # Tearing down: whatever does not stop in time is dropped with the loop.
            with contextlib.suppress(Exception):
                self.submit(cancel_all()).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class Network:
    """The three namespaces of the module's docstring."""

    def __init__(self) -> None:
        tag = f"kturn{os.getpid() % 100000}"
        self.relay, self.kiosk, self.clerk = f"{tag}-relay", f"{tag}-kiosk", f"{tag}-clerk"
        self._made: list[str] = []
        self.threads: dict[str, NetnsThread] = {}

    def up(self) -> Network:
        for ns in (self.relay, self.kiosk, self.clerk):
            run("ip", "netns", "add", ns)
            self._made.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        # Explicitly no forwarding in the middle: the kiosk and the clerk must not reach each other.
        run("ip", "netns", "exec", self.relay, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        run("ip", "-n", self.relay, "addr", "add", f"{RELAY_IP}/32", "dev", "lo")
        for ns, side, subnet in ((self.kiosk, "k", 1), (self.clerk, "c", 2)):
            inner, outer = f"vt{os.getpid() % 100000}{side}", f"vt{os.getpid() % 100000}{side}r"
            run(
                "ip",
                "link",
                "add",
                inner,
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                "name",
                outer,
                "netns",
                self.relay,
            )
            run("ip", "-n", ns, "addr", "add", f"10.78.{subnet}.2/24", "dev", inner)
            run("ip", "-n", self.relay, "addr", "add", f"10.78.{subnet}.1/24", "dev", outer)
            run("ip", "-n", ns, "link", "set", inner, "up")
            run("ip", "-n", self.relay, "link", "set", outer, "up")
            run("ip", "-n", ns, "route", "add", f"{RELAY_IP}/32", "via", f"10.78.{subnet}.1")
        for ns in (self.relay, self.kiosk, self.clerk):
            self.threads[ns] = NetnsThread(ns)
        return self

    def down(self) -> None:
        for thread in self.threads.values():
            thread.stop()
        for ns in reversed(self._made):  # deleting a namespace deletes its veth ends too
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)

    def block_from_kiosk(self, rules: list[str]) -> None:
        """Drop what the kiosk sends to the relay that matches any of `rules` (nftables), e.g.
        "ip protocol udp" or "tcp dport 3478"."""
        drops = "".join(f"    ip daddr {RELAY_IP} {rule} drop\n" for rule in rules)
        script = (
            "table inet kiosk_firewall {\n"
            "  chain out { type filter hook output priority 0; policy accept;\n"
            f"{drops}"
            "  }\n"
            "}\n"
        )
        subprocess.run(
            ["ip", "netns", "exec", self.kiosk, "nft", "-f", "-"],
            input=script,
            text=True,
            check=True,
            capture_output=True,
        )


def self_signed_certificate(directory: Path, ip: str) -> tuple[Path, Path]:
    """A certificate for the TURN server's TLS port, made for this test (its IP in subjectAltName)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "turn.kiosk.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address(ip))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "turn-cert.pem", directory / "turn-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class Coturn:
    """turnserver (Debian's coturn) in the relay namespace, with a generated config; stopped at the end."""

    def __init__(self, network: Network, directory: Path, secret: str) -> None:
        self.network = network
        self.cert, key = self_signed_certificate(directory, RELAY_IP)
        self.log = directory / "turnserver.log"
        self.config = directory / "turnserver.conf"
        self.config.write_text(
            "\n".join(
                [
                    f"listening-ip={RELAY_IP}",
                    f"relay-ip={RELAY_IP}",
                    "listening-port=3478",
                    f"tls-listening-port={TLS_PORT}",
                    "realm=kiosk.test",
                    "use-auth-secret",
                    f"static-auth-secret={secret}",
                    f"cert={self.cert}",
                    f"pkey={key}",
                    "fingerprint",
                    "no-cli",
                    "no-dtls",  # TLS over TCP on the 443 stand-in; DTLS is not what aiortc speaks
                    "no-multicast-peers",
                    # coturn 4.6 refuses no private peers by default; say which ones this test uses.
                    "allowed-peer-ip=10.78.0.0-10.78.255.255",
                    "min-port=49152",
                    "max-port=49252",
                    f"pidfile={directory / 'turnserver.pid'}",
                    f"log-file={self.log}",
                    "simple-log",
                    "verbose",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Coturn:
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.network.relay, "turnserver", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        relay = self.network.threads[self.network.relay]
        relay.call(lambda: wait_for_port(RELAY_IP, 3478) and wait_for_port(RELAY_IP, TLS_PORT))
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # `ip netns exec` execs turnserver: this is turnserver's pid
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_for_port(host: str, port: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def turn_network(directory: Path, secret: str) -> Iterator[tuple[Network, Coturn]]:
    require_root_and_tools()
    network = Network()
    coturn: Coturn | None = None
    try:
        network.up()
        coturn = Coturn(network, directory, secret).start()
        yield network, coturn
    finally:
        if coturn is not None:
            coturn.stop()
        network.down()
