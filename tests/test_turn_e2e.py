"""TURN for real: the kiosk engine (aiortc) and the clerk bot (aiortc) in two network namespaces that
cannot reach each other, a real coturn reachable from both, credentials from the reference central
(see tests/turn_rig.py for the network). Needs root; skipped with the reason otherwise."""

from __future__ import annotations

import errno
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kiosk_client.adapters.rtc_aiortc import diagnose_turn
from kiosk_client.central.admin import CentralAdmin, Clerk
from kiosk_client.central.guard import CentralOptions
from kiosk_client.central.server import CentralThread
from kiosk_client.central.turn import TurnOptions, turn_credentials
from kiosk_client.core.engine import KioskEngine
from kiosk_client.core.events import Notice, StateChanged
from kiosk_client.core.session import EndReason
from kiosk_client.tools.clerk_bot import BotCallReport, ClerkBot

from .kiosk_rig import Recorder, enrolled_token, make_engine, wait_for
from .turn_rig import CLERK_IP, RELAY_IP, TLS_PORT, Coturn, Network, turn_network

pytestmark = pytest.mark.e2e

# The central lists TLS first on purpose: the kiosk's order (UDP, TCP, TLS) is its own.
TURN_URLS = (
    f"turns:{RELAY_IP}:{TLS_PORT}?transport=tcp",
    f"turn:{RELAY_IP}:3478?transport=tcp",
    f"turn:{RELAY_IP}:3478?transport=udp",
)


@dataclass
class Rig:
    network: Network
    coturn: Coturn
    central: CentralThread
    admin: CentralAdmin
    kiosk_id: str
    kiosk_token: str
    clerk: Clerk
    data_dir: Path

    def in_relay[T](self, fn: Callable[[], T]) -> T:
        return self.network.threads[self.network.relay].call(fn)

    def appointment_in(self, seconds: float) -> dict[str, Any]:
        start = datetime.now(UTC) + timedelta(seconds=seconds)
        return self.in_relay(lambda: self.admin.create_appointment(self.kiosk_id, self.clerk, "CAF", start))


@pytest.fixture
def make_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Rig]]:
    coturn_secret = secrets.token_urlsafe(24)
    stack: list[Callable[[], None]] = []

    def make(central_secret: str = coturn_secret) -> Rig:
        context = turn_network(tmp_path, coturn_secret)
        network, coturn = context.__enter__()
        stack.append(lambda: context.__exit__(None, None, None))
        # The kiosk checks the TLS port's certificate against the system's trust store; this test's
        # self-signed one is that store here (OpenSSL reads SSL_CERT_FILE for every new context).
        monkeypatch.setenv("SSL_CERT_FILE", str(coturn.cert))
        relay = network.threads[network.relay]
        options = CentralOptions(turn=TurnOptions(TURN_URLS, central_secret))
        central = relay.call(lambda: CentralThread(tmp_path / "central.db", options=options, host=RELAY_IP))
        relay.call(central.start)
        stack.append(lambda: relay.call(central.stop))
        admin = CentralAdmin(central.url, central.admin_token)
        stack.append(lambda: relay.call(admin.close))
        relay.call(
            lambda: admin.configure(join_before_seconds=2, poll_interval_seconds=1, no_show_after_seconds=120)
        )
        kiosk_id = relay.call(lambda: admin.create_kiosk("Borne 1", "France Services de Test"))
        clerk = relay.call(lambda: admin.create_clerk("Mme Martin", "CAF"))
        code = relay.call(lambda: admin.enrollment_code(kiosk_id))
        token = network.threads[network.kiosk].call(lambda: enrolled_token(central.url, code))
        return Rig(network, coturn, central, admin, kiosk_id, token, clerk, tmp_path / "kiosk")

    yield make
    for undo in reversed(stack):
        undo()


def direct_is_blocked(rig: Rig) -> None:
    """The kiosk has no route to the clerk: anything direct fails before it leaves the kiosk."""

    def send() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.sendto(b"hello?", (CLERK_IP, 9))
            except OSError as exc:
                return exc.errno or 0
        return 0

    assert rig.network.threads[rig.network.kiosk].call(send) == errno.ENETUNREACH


async def call_through_the_relay(rig: Rig) -> tuple[KioskEngine, Recorder, BotCallReport]:
    """One appointment, the kiosk engine in its namespace, the clerk bot in the other."""
    appointment = rig.appointment_in(6)
    start = datetime.fromisoformat(str(appointment["start"]))
    recorder = Recorder()
    kiosk = rig.network.threads[rig.network.kiosk]
    clerk = rig.network.threads[rig.network.clerk]

    async def make() -> KioskEngine:
        return make_engine(rig.central.url, rig.kiosk_token, rig.data_dir, recorder)

    engine = await kiosk.run(make())
    run = kiosk.submit(engine.run())

    async def serve() -> BotCallReport:
        bot = ClerkBot(rig.central.url, rig.clerk.token, hold_s=3.0)
        try:
            return await bot.serve_appointment(str(appointment["id"]), start)
        finally:
            await bot.aclose()

    try:
        report = await clerk.run(serve())
        await wait_for(lambda: bool(recorder.records()), 15)
    finally:
        run.cancel()
    return engine, recorder, report


def allocations_by(coturn: Coturn, who: str) -> int:
    """coturn's log lines for successful allocations by a credential made for `who`."""
    return sum(
        1
        for line in coturn.log_text().splitlines()
        if f":{who}>" in line and "ALLOCATE processed, success" in line
    )


def assert_media_flowed(recorder: Recorder, report: BotCallReport) -> None:
    [record] = recorder.records()
    assert record.end_reason is EndReason.CLERK_HUNG_UP
    assert record.remote_video_frames > 10 and record.remote_audio_frames > 20  # clerk → kiosk
    assert report.video_frames > 10 and report.audio_frames > 20  # kiosk → clerk


async def test_a_call_goes_through_coturn_when_the_peers_cannot_reach_each_other(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    direct_is_blocked(rig)
    engine, recorder, report = await call_through_the_relay(rig)
    assert_media_flowed(recorder, report)
    route = engine.call_stats().route
    assert route is not None and "relay" in route, route  # e.g. "relay/udp -> host"
    assert report.route is not None and "relay" in report.route, report.route
    # The kiosk's first path is TURN over UDP, with the credential the central made for it.
    assert allocations_by(rig.coturn, rig.kiosk_id) >= 1, rig.coturn.log_text()[-3000:]
    assert "relay/tcp" not in route and "relay/tls" not in route


@pytest.mark.long
@pytest.mark.parametrize(
    ("blocked", "expected"),
    [
        (["ip protocol udp"], "relay/tcp"),
        (["ip protocol udp", "tcp dport 3478"], "relay/tls"),
    ],
    ids=["udp-blocked-tcp", "udp-and-3478-blocked-tls-443"],
)
async def test_a_kiosk_that_cannot_use_udp_falls_back_to_turn_over_tcp_then_tls(
    make_rig: Callable[..., Rig], blocked: list[str], expected: str
) -> None:
    rig = make_rig()
    rig.network.block_from_kiosk(blocked)
    direct_is_blocked(rig)
    engine, recorder, report = await call_through_the_relay(rig)
    assert_media_flowed(recorder, report)
    route = engine.call_stats().route
    assert route is not None and route.startswith(expected), route
    # On the way, the staff were told that a relay path did not answer.
    told = {n for e in recorder.events if isinstance(e, StateChanged) for n in e.snapshot.notices}
    assert Notice.RELAY_UNREACHABLE in told


async def test_wrong_or_expired_credentials_are_told_clearly_and_nothing_crashes(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(central_secret="not-the-secret-coturn-has-" + secrets.token_hex(4))
    kiosk = rig.network.threads[rig.network.kiosk]
    # Expired: the right secret, a time in the past. coturn answers 401 and the kiosk says so.
    expired_user, expired_password = turn_credentials(
        rig.coturn.config.read_text().split("static-auth-secret=")[1].split("\n")[0],
        int(datetime.now(UTC).timestamp()) - 60,
        "kiosk-expired",
    )
    for transport in ("udp", "tcp"):
        kwargs = {
            "turn_server": (RELAY_IP, 3478),
            "turn_username": expired_user,
            "turn_password": expired_password,
            "turn_ssl": False,
            "turn_transport": transport,
        }
        refused, detail = await kiosk.run(diagnose_turn(kwargs))
        assert refused and "401" in detail, detail
    # Wrong: the central's secret is not coturn's. The kiosk offers anyway (direct might work),
    # tells the staff, and keeps running.
    appointment = rig.appointment_in(3)
    recorder = Recorder()

    async def make() -> KioskEngine:
        return make_engine(rig.central.url, rig.kiosk_token, rig.data_dir, recorder)

    engine = await kiosk.run(make())
    run = kiosk.submit(engine.run())
    try:

        def refused_told() -> bool:
            return any(
                isinstance(e, StateChanged) and Notice.RELAY_REFUSED in e.snapshot.notices
                for e in recorder.events
            )

        await wait_for(refused_told, 25)
        assert not run.done()  # still running: no crash
        assert engine.session.appointment is not None and engine.session.appointment.id == appointment["id"]
    finally:
        run.cancel()
