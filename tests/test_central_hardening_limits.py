"""Guessing is slowed down: enrolment codes per client address and across all addresses, clerk and
admin tokens per address (429 with Retry-After); the admin token is compared in constant time.
Each client address is a distinct loopback address (127.0.0.x), against the real central."""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kiosk_client.central.admin import CentralAdmin
from kiosk_client.central.guard import CentralOptions, RateLimit, TokenBuckets
from kiosk_client.central.server import CentralThread

PLENTY = RateLimit(10_000, 10_000)
WRONG_CODE = {"code": "AAAA-BBBB-CCCC-DDDD"}


def client_from(url: str, address: str) -> httpx.Client:
    return httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=address))


@contextlib.contextmanager
def started(tmp_path: Path, options: CentralOptions) -> Iterator[tuple[CentralThread, CentralAdmin]]:
    with CentralThread(tmp_path / "c.db", options=options) as central:
        admin = CentralAdmin(central.url, central.admin_token)
        yield central, admin
        admin.close()


def assert_rate_limited(response: httpx.Response, at_most_s: int) -> int:
    assert response.status_code == 429, (response.status_code, response.text)
    assert response.json()["error"]["code"] == "rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= at_most_s
    return retry_after


def test_enrolment_attempts_are_limited_per_client_address(tmp_path: Path) -> None:
    options = CentralOptions(enrolment_per_address=RateLimit(3, 60), enrolment_failures=PLENTY)
    with started(tmp_path, options) as (central, admin):
        code = admin.enrollment_code(admin.create_kiosk("Borne 1", "Mairie"))
        with client_from(central.url, "127.0.0.2") as guesser, client_from(central.url, "127.0.0.3") as other:
            for _ in range(3):
                assert guesser.post("/api/v1/enrollment", json=WRONG_CODE).status_code == 401
            refused = guesser.post("/api/v1/enrollment", json={"code": code})  # even the right code
            retry_after = assert_rate_limited(refused, at_most_s=1)
            # Another address has its own allowance.
            assert other.post("/api/v1/enrollment", json=WRONG_CODE).status_code == 401
            time.sleep(retry_after)
            # The refused attempt did not use the code up.
            assert guesser.post("/api/v1/enrollment", json={"code": code}).status_code == 201


def test_failed_enrolments_are_limited_across_addresses(tmp_path: Path) -> None:
    # A wrong code names no kiosk: one bucket shared by every address protects every kiosk's codes.
    options = CentralOptions(enrolment_per_address=PLENTY, enrolment_failures=RateLimit(4, 1))
    with started(tmp_path, options) as (central, admin):
        code = admin.enrollment_code(admin.create_kiosk("Borne 1", "Mairie"))
        for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
            with client_from(central.url, address) as client:
                assert client.post("/api/v1/enrollment", json=WRONG_CODE).status_code == 401
        with client_from(central.url, "127.0.0.6") as fresh:
            assert_rate_limited(fresh.post("/api/v1/enrollment", json={"code": code}), at_most_s=60)


def test_the_default_limits_stop_fast_guessing(tmp_path: Path) -> None:
    with started(tmp_path, CentralOptions()) as (central, _):
        with httpx.Client(base_url=central.url) as client:
            statuses = [client.post("/api/v1/enrollment", json=WRONG_CODE).status_code for _ in range(20)]
        assert statuses[0] == 401
        assert statuses.count(401) <= 10 and statuses[-1] == 429, statuses


def test_clerk_token_failures_are_limited_per_address(tmp_path: Path) -> None:
    options = CentralOptions(token_failures_per_address=RateLimit(3, 1))
    with started(tmp_path, options) as (central, admin):
        clerk = admin.create_clerk("Mme Martin", "CAF")
        good = {"Authorization": f"Bearer {clerk.token}"}
        with client_from(central.url, "127.0.0.2") as guesser, client_from(central.url, "127.0.0.3") as other:
            for _ in range(10):  # successes are not counted
                assert guesser.get("/api/v1/clerk/appointments", headers=good).status_code == 200
            for guess in ("a", "b", "c"):
                response = guesser.get("/api/v1/clerk/config", headers={"Authorization": f"Bearer {guess}"})
                assert response.status_code == 401
            assert_rate_limited(guesser.get("/api/v1/clerk/appointments", headers=good), at_most_s=60)
            assert_rate_limited(guesser.get("/api/v1/appointments/x/call", headers=good), at_most_s=60)
            assert other.get("/api/v1/clerk/appointments", headers=good).status_code == 200


def test_admin_token_failures_are_limited_per_address(tmp_path: Path) -> None:
    options = CentralOptions(token_failures_per_address=RateLimit(2, 1))
    with started(tmp_path, options) as (central, _):
        good = {"Authorization": f"Bearer {central.admin_token}"}
        with client_from(central.url, "127.0.0.2") as guesser, client_from(central.url, "127.0.0.3") as other:
            assert (
                guesser.get("/api/v1/admin/kiosks", headers={"Authorization": "Bearer nope"}).status_code
                == 401
            )
            assert guesser.get("/api/v1/admin/kiosks").status_code == 401  # no token at all counts too
            assert_rate_limited(guesser.get("/api/v1/admin/kiosks", headers=good), at_most_s=60)
            assert other.get("/api/v1/admin/kiosks", headers=good).status_code == 200


def test_kiosks_with_a_stale_device_token_still_get_401(tmp_path: Path) -> None:
    # A kiosk whose token was revoked polls until it is enrolled again: it must keep seeing "enrol
    # again" (401), not a rate limit, so device-token failures are not counted.
    options = CentralOptions(token_failures_per_address=RateLimit(1, 1))
    with started(tmp_path, options) as (central, _):
        kiosk = httpx.Client(base_url=central.url, headers={"Authorization": "Bearer revoked"})
        with kiosk:
            assert [kiosk.get("/api/v1/kiosk/schedule").status_code for _ in range(5)] == [401] * 5


def test_the_admin_token_is_compared_in_constant_time(
    central: CentralThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with httpx.Client(base_url=central.url) as client:
        wrong = client.get("/api/v1/admin/kiosks", headers={"Authorization": "Bearer " + "x" * 32})
        right = client.get("/api/v1/admin/kiosks", headers={"Authorization": f"Bearer {central.admin_token}"})
    assert (wrong.status_code, right.status_code) == (401, 200)
    assert len(compared) == 2
    # Digests of equal length whatever the token's length: the comparison's time says nothing of it.
    assert all(len(a) == len(b) == 32 for a, b in compared)


def test_buckets_refill_on_their_clock_and_stay_bounded_under_a_scan() -> None:
    now = [0.0]
    buckets = TokenBuckets(RateLimit(2, 6), clock=lambda: now[0])  # 2 at once, then one every 10 s
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(10)
    now[0] = 5.0
    assert buckets.take("a") == pytest.approx(5)
    now[0] = 10.0
    assert buckets.take("a") == 0
    for i in range(3 * TokenBuckets.MAX_KEYS):  # a scan from many addresses
        buckets.spend(f"10.0.{i // 256}.{i % 256}")
    assert len(buckets) <= TokenBuckets.MAX_KEYS
