"""TURN without a network: the central's time-limited credentials (coturn's use-auth-secret), that the
secret never leaves the central, the kiosk's order of paths, and the engine's fallback along them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from kiosk_client.adapters.fakes import FakeCentral
from kiosk_client.central.admin import CentralAdmin
from kiosk_client.central.guard import CentralOptions
from kiosk_client.central.server import CentralThread
from kiosk_client.central.turn import TurnOptions, credential_expiry, turn_credentials
from kiosk_client.core.events import Notice, StateChanged
from kiosk_client.core.ice_paths import ice_paths, turn_transport
from kiosk_client.core.models import IceServer, RemoteConfig
from kiosk_client.core.ports import RelayUnavailable
from kiosk_client.core.session import Phase

from .kiosk_rig import enrolled_token
from .test_engine import Harness, harness, schedule_with  # noqa: F401  (harness: the fixture)

SECRET = "north-valley-shared-secret"
URLS = (
    "turns:turn.example.org:443?transport=tcp",  # deliberately not in the kiosk's order
    "turn:turn.example.org:3478?transport=udp",
    "turn:turn.example.org:3478?transport=tcp",
)


def test_the_credential_is_coturns_shared_secret_scheme() -> None:
    username, password = turn_credentials(SECRET, 1767225600, "kiosk-1")
    assert username == "1767225600:kiosk-1"
    # Computed independently: printf '1767225600:kiosk-1' | openssl dgst -sha1 -hmac <secret> -binary | base64
    assert password == "sXiRnaeBfOPzHCVFVzF5JrirJ6c="
    expected = base64.b64encode(hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()
    assert password == expected
    # coturn reads the expiry before the first ':', so an id cannot smuggle one in.
    assert turn_credentials(SECRET, 1, "a:b")[0] == "1:a-b"


def test_the_credential_lasts_through_the_appointment_plus_a_margin() -> None:
    options = TurnOptions(URLS, SECRET)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    # Nothing under way: the minimum lifetime (one hour).
    assert credential_expiry(options, now, []) == int((now + timedelta(hours=1)).timestamp())
    # A 90-minute appointment starting in 2 minutes: until its end plus the margin.
    start = now + timedelta(minutes=2)
    end = start + timedelta(minutes=90)
    assert credential_expiry(options, now, [(start, end)]) == int((end + timedelta(hours=1)).timestamp())
    # One that ended, or starts tomorrow, does not stretch it.
    earlier = (now - timedelta(hours=3), now - timedelta(hours=2))
    tomorrow = (now + timedelta(days=1), now + timedelta(days=1, hours=2))
    assert credential_expiry(options, now, [earlier, tomorrow]) == int((now + timedelta(hours=1)).timestamp())


def test_turn_options_refuse_what_coturn_or_aiortc_cannot_use_and_hide_the_secret() -> None:
    with pytest.raises(ValueError, match="turn: or turns:"):
        TurnOptions(("stun:stun.example.org",), SECRET)
    with pytest.raises(ValueError, match="16 characters"):
        TurnOptions(URLS, "short")
    assert SECRET not in repr(TurnOptions(URLS, SECRET)) and SECRET not in repr(
        CentralOptions(turn=TurnOptions(URLS, SECRET))
    )


@pytest.fixture
def turn_central(tmp_path: Path) -> Iterator[CentralThread]:
    options = CentralOptions(turn=TurnOptions(URLS, SECRET))
    with CentralThread(tmp_path / "central.db", options=options) as server:
        yield server


def test_kiosks_and_clerks_get_fresh_credentials_and_never_the_secret(turn_central: CentralThread) -> None:
    admin = CentralAdmin(turn_central.url, turn_central.admin_token)
    admin.configure(ice_servers=[{"urls": ["stun:stun.example.org:3478"]}])
    kiosk_id = admin.create_kiosk("Borne 1", "France Services")
    clerk = admin.create_clerk("Mme Martin", "CAF")
    token = enrolled_token(turn_central.url, admin.enrollment_code(kiosk_id))
    start = datetime.now(UTC) + timedelta(minutes=5)
    admin.create_appointment(kiosk_id, clerk, "CAF", start, timedelta(minutes=90))
    bodies: list[str] = []
    with httpx.Client(base_url=turn_central.url + "/api/v1") as client:
        kiosk = client.get("/kiosk/config", headers={"Authorization": f"Bearer {token}"})
        console = client.get("/clerk/config", headers={"Authorization": f"Bearer {clerk.token}"})
        for response in (kiosk, console):
            assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
            stun, turn = response.json()["ice_servers"]
            assert stun == {"urls": ["stun:stun.example.org:3478"]}  # the admin's, unchanged
            assert turn["urls"] == list(URLS)
            expiry, who = turn["username"].split(":", 1)
            assert who == (kiosk_id if response is kiosk else clerk.clerk_id)
            # Through the appointment's end (95 min from now) plus the hour's margin.
            lifetime = int(expiry) - datetime.now(UTC).timestamp()
            assert 155 * 60 - 30 < lifetime < 155 * 60 + 30
            assert turn["credential"] == turn_credentials(SECRET, int(expiry), who)[1]
        for path, headers in [
            ("/kiosk/config", {"Authorization": f"Bearer {token}"}),
            ("/kiosk/schedule", {"Authorization": f"Bearer {token}"}),
            ("/clerk/config", {"Authorization": f"Bearer {clerk.token}"}),
            ("/clerk/appointments", {"Authorization": f"Bearer {clerk.token}"}),
            ("/admin/kiosks", {"Authorization": f"Bearer {turn_central.admin_token}"}),
            ("/health", {}),
            ("/openapi.yaml", {}),
        ]:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, path
            bodies.append(response.text + str(response.headers))
        put = client.put(
            "/admin/config",
            json={"poll_interval_seconds": 10},
            headers={"Authorization": f"Bearer {turn_central.admin_token}"},
        )
        bodies.append(put.text + str(put.headers))
    admin.close()
    assert all(SECRET not in body for body in bodies)


def test_without_turn_and_by_default_there_is_no_ice_server_at_all(
    central: CentralThread, admin: CentralAdmin
) -> None:
    clerk = admin.create_clerk("Mme Martin", "CAF")
    response = httpx.get(
        central.url + "/api/v1/clerk/config", headers={"Authorization": f"Bearer {clerk.token}"}
    )
    assert response.json() == {"ice_servers": []}  # never a public STUN server by default
    assert RemoteConfig().ice_servers == ()


def test_the_kiosk_tries_udp_then_tcp_then_tls_whatever_the_centrals_order() -> None:
    assert [turn_transport(u) for u in URLS] == ["tls", "udp", "tcp"]
    assert turn_transport("turn:t.example.org") == "udp" and turn_transport("turns:t.example.org") == "tls"
    assert turn_transport("turn:t.example.org?transport=sctp") is None and turn_transport("stun:s") is None
    servers = (
        IceServer(("stun:stun.example.org", "stun:second.example.org")),
        IceServer(URLS, "1767225600:kiosk-1", "pw"),
    )
    paths = ice_paths(servers)
    assert [p.turn for p in paths] == ["udp", "tcp", "tls"]
    for path in paths:
        # One STUN (aiortc ignores any other) and one TURN URL with the credential, per connection.
        stun, turn = path.servers
        assert stun.urls == ("stun:stun.example.org",)
        assert len(turn.urls) == 1 and turn.username == "1767225600:kiosk-1" and turn.credential == "pw"
    assert paths[2].servers[1].urls == ("turns:turn.example.org:443?transport=tcp",)
    assert [p.servers for p in ice_paths(())] == [()]  # no TURN: one path, host candidates only


TURN_CONFIG = RemoteConfig(
    ice_servers=(IceServer(URLS, "u", "c"),), poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60
)


async def test_ice_failure_moves_to_the_next_path_and_a_missing_relay_skips_it(
    harness: Callable[..., Harness],  # noqa: F811  (the fixture imported above)
) -> None:
    central = FakeCentral(schedule_with(0.0), TURN_CONFIG)
    h = harness(central)
    # First connection (TURN over UDP): answered, but ICE fails.
    h.calls.ice_failures = [True]
    # Second (TCP): its relay is unreachable: skipped before any offer. Third (TLS) connects.
    h.calls.relay_problems = [None, RelayUnavailable(URLS[2], False, "no answer")]
    await h.until(lambda: bool(central.offers))
    central.answer("a1")
    await h.until(lambda: len(central.offers) == 2, within=10)
    # The staff were told while the TCP relay failed; the TLS path has its relay, so it is gone again.
    told = [e.snapshot.notices for e in h.events if isinstance(e, StateChanged)]
    assert any(Notice.RELAY_UNREACHABLE in n for n in told) and Notice.RELAY_UNREACHABLE not in told[-1]
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    used = [call.ice_servers[-1].urls[0] for call in h.calls.calls]
    assert used == [URLS[1], URLS[2], URLS[0]]  # udp, tcp (no offer posted), tls
    assert len(h.calls.calls) == 3 and len(central.offers) == 2
    assert central.config_requests >= 3  # a fresh credential before every connection


async def test_refused_credentials_are_told_and_the_call_goes_on_directly(
    harness: Callable[..., Harness],  # noqa: F811  (the fixture imported above)
) -> None:
    central = FakeCentral(schedule_with(0.0), TURN_CONFIG)
    h = harness(central)
    h.calls.relay_problems = [RelayUnavailable(URLS[1], True, "STUN transaction failed (401 - Unauthorized)")]
    await h.until(lambda: bool(central.offers))
    assert Notice.RELAY_REFUSED in h.snapshot.notices
    central.answer("a1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    assert len(h.calls.calls) == 1  # the same credential would be refused on TCP and TLS too
