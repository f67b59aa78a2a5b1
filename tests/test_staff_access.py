"""The staff panel's lock: the PIN's hash from the central, attempts and lock-outs, closing when idle;
and what the engine lets staff do once it is open."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk_client.adapters.fakes import FakeCentral
from kiosk_client.core.engine import WalkInServices
from kiosk_client.core.errors import CentralUnavailable, MalformedResponse
from kiosk_client.core.models import Appointment, RemoteConfig, WalkInService
from kiosk_client.core.session import EndReason, Phase
from kiosk_client.core.staff_access import ATTEMPTS, IDLE_CLOSE_S, LOCKOUTS_S, StaffAccess, Verdict
from kiosk_client.core.staff_pin import check_hash_format, hash_pin, pin_matches
from kiosk_client.core.wire import parse_remote_config, remote_config_to_document

from . import test_engine
from .kiosk_rig import NoonClock
from .test_engine import Harness, schedule_with

harness = test_engine.harness  # the engine rig's fixture

FAST_HASH = hash_pin("246810", iterations=10_000)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_pin_hash_checks_the_pin_and_nothing_else() -> None:
    assert pin_matches("246810", FAST_HASH)
    assert not pin_matches("246811", FAST_HASH)
    assert not pin_matches("24681", FAST_HASH)
    assert not pin_matches("abcdef", FAST_HASH) and not pin_matches("２４６８１０", FAST_HASH)
    assert hash_pin("246810", iterations=10_000) != FAST_HASH  # salted
    for bad in (
        "",
        "x$1$a$b",
        "pbkdf2_sha256$99$AAAAAAAAAAA$AAAA",
        FAST_HASH.replace("$10000$", "$999999999$"),
    ):
        with pytest.raises(ValueError):
            check_hash_format(bad)
        assert not pin_matches("246810", bad)
    with pytest.raises(ValueError):
        hash_pin("12")


def test_the_central_sends_the_hash_and_a_malformed_one_is_refused() -> None:
    config = parse_remote_config({"staff_pin_hash": FAST_HASH})
    assert config.staff_pin_hash == FAST_HASH
    assert parse_remote_config(remote_config_to_document(config)) == config
    assert parse_remote_config({}).staff_pin_hash is None
    with pytest.raises(MalformedResponse, match="staff_pin_hash"):
        parse_remote_config({"staff_pin_hash": "1234"})  # a PIN in clear is not a hash


def test_wrong_pins_lock_the_panel_for_longer_and_longer() -> None:
    clock = Clock()
    access = StaffAccess(clock)
    for left in range(ATTEMPTS - 1, 0, -1):
        assert access.record(False).remaining == left
    locked = access.record(False)
    assert locked.verdict is Verdict.LOCKED and locked.seconds == LOCKOUTS_S[0]
    assert access.before_check(True) is not None and access.record(True).verdict is Verdict.LOCKED
    clock.now += LOCKOUTS_S[0] + 1
    assert access.before_check(True) is None
    for _ in range(ATTEMPTS):
        attempt = access.record(False)
    assert attempt.seconds == LOCKOUTS_S[1]
    clock.now += LOCKOUTS_S[1] + 1
    assert access.record(True).verdict is Verdict.OPENED and access.is_open


def test_no_pin_configured_keeps_it_shut_and_idleness_closes_it() -> None:
    clock = Clock()
    access = StaffAccess(clock)
    no_pin = access.before_check(False)
    assert no_pin is not None and no_pin.verdict is Verdict.NO_PIN
    access.record(True)
    clock.now += IDLE_CLOSE_S - 1
    access.touch()
    clock.now += IDLE_CLOSE_S - 1
    assert access.is_open
    clock.now += 2
    assert not access.is_open


# -- the engine's staff commands (fake central)


def walk_in(ident: str = "w1") -> Appointment:
    start = NoonClock().now()
    return Appointment(ident, "CAF", "Mme Durand", start, start + timedelta(minutes=30))


async def opened(h: Harness) -> None:
    await h.until(lambda: not h.engine.reset.checking)
    await h.until(lambda: h.engine._config.staff_pin_hash is not None)
    assert (await h.engine.staff_unlock("246810")).verdict is Verdict.OPENED


def central_with_pin(**kwargs: object) -> FakeCentral:
    return FakeCentral(
        kwargs.get("schedule"),  # type: ignore[arg-type]
        RemoteConfig(poll_interval_s=0.05, join_before_s=0.3, no_show_after_s=60, staff_pin_hash=FAST_HASH),
    )


async def test_nothing_works_before_the_pin(harness: Callable[..., Harness]) -> None:
    central = central_with_pin()
    central.walk_in_codes["123456"] = walk_in()
    h = harness(central)
    await h.until(lambda: h.engine._config.staff_pin_hash is not None)
    assert await h.engine.staff_walk_in("123456") == "panel_closed"
    assert not await h.engine.staff_out_of_service(True)
    wrong = await h.engine.staff_unlock("000000")
    assert wrong.verdict is Verdict.WRONG
    assert "123456" not in central.used_walk_in_codes


async def test_a_walk_in_code_starts_a_session_the_kiosk_joins(harness: Callable[..., Harness]) -> None:
    central = central_with_pin()
    central.walk_in_codes["123456"] = walk_in()
    h = harness(central)
    await opened(h)
    assert await h.engine.staff_walk_in("12 34 56 ") is None
    await h.until(lambda: bool(central.offers))
    assert central.offers[0][0] == "w1" and h.engine.session.phase is Phase.WAITING_FOR_CLERK
    assert await h.engine.staff_walk_in("123456") == "busy"
    central.answer("w1")
    await h.until(lambda: h.engine.session.phase is Phase.IN_CALL)
    # A frozen call: staff ask for a new connection, the kiosk offers again.
    assert await h.engine.staff_rejoin()
    await h.until(lambda: len(central.offers) == 2)
    assert await h.engine.staff_end_session()
    await h.until(lambda: bool(h.finished()))
    assert h.finished()[0].record.end_reason is EndReason.STAFF_ENDED


async def test_wrong_used_and_malformed_codes_change_nothing(harness: Callable[..., Harness]) -> None:
    central = central_with_pin()
    central.walk_in_codes["123456"] = walk_in()
    central.used_walk_in_codes.add("654321")
    h = harness(central)
    await opened(h)
    assert await h.engine.staff_walk_in("999999") == "walk_in_code_unknown"
    assert await h.engine.staff_walk_in("654321") == "walk_in_code_used"
    assert await h.engine.staff_walk_in("12a456") == "malformed_code"
    assert await h.engine.staff_walk_in("12345") == "malformed_code"  # a digit short: not sent
    assert await h.engine.staff_walk_in("") == "malformed_code"
    await asyncio.sleep(0.2)
    assert not central.offers and h.engine.session.phase is Phase.IDLE


async def test_out_of_service_from_the_panel_and_back_through_a_check(
    harness: Callable[..., Harness],
) -> None:
    central = central_with_pin(schedule=schedule_with(0.0))
    h = harness(central)
    await opened(h)
    await h.until(lambda: bool(central.offers))
    assert await h.engine.staff_out_of_service(True)
    await h.until(lambda: h.engine.session.phase is not Phase.WAITING_FOR_CLERK)
    assert h.snapshot.out_of_service and h.engine.reset.out_of_service is not None
    assert h.engine.reset.out_of_service.failed_checks == ("staff",)
    await h.until(lambda: central.heartbeats[-1].state == "out_of_service")
    assert await h.engine.staff_walk_in("123456") == "out_of_service"
    assert await h.engine.staff_out_of_service(False)
    assert not h.snapshot.out_of_service


async def test_the_device_check_scans_a_test_page_and_says_when_there_is_no_scanner(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    from kiosk_client.adapters.outbox import EncryptedOutbox
    from kiosk_client.adapters.page_imaging import OpenCvPageProcessor
    from kiosk_client.core.document_desk import DocumentPorts

    from .sane_rig import sane_folder, sane_scanner

    central = central_with_pin()
    h = harness(central)
    ports = DocumentPorts(
        sane_scanner(sane_folder(tmp_path / "one")),
        OpenCvPageProcessor(),
        EncryptedOutbox(tmp_path, b"k" * 32),
    )
    h.engine._document_ports = ports  # as build_engine gives a kiosk with a scanner
    await opened(h)
    check = await h.engine.staff_device_check()
    assert check.scanner == "ok" and check.scanner_preview is not None
    assert check.scanner_preview[:2] == b"\xff\xd8"  # a JPEG
    assert check.devices["camera"] == "ok"
    assert len(ports.store) == 0  # type: ignore[arg-type]  # the test page is kept nowhere
    h.engine._document_ports = DocumentPorts(
        sane_scanner(sane_folder(tmp_path / "none", backends="")), OpenCvPageProcessor(), ports.store
    )
    assert (await h.engine.staff_device_check()).scanner == "missing"
    h.calls.health["camera"] = "missing"  # unplugged: the self-test says so, nothing breaks
    missing = await h.engine.staff_device_check()
    assert missing.devices["camera"] == "missing" and missing.scanner == "missing"
    h.engine.staff.close()
    assert (await h.engine.staff_device_check()).scanner == "panel_closed"


# -- walk-ins with a service that has a clerk available (fake central)


async def test_a_service_with_a_clerk_available_starts_a_session_the_kiosk_joins(
    harness: Callable[..., Harness],
) -> None:
    central = central_with_pin()
    central.walk_in_clerks = {"CAF": [walk_in("w1")], "CPAM": [], "France Travail": [walk_in("w2")]}
    h = harness(central)
    await h.until(lambda: h.engine._config.staff_pin_hash is not None)
    assert await h.engine.staff_walk_in_services() == WalkInServices(problem="panel_closed")
    assert await h.engine.staff_walk_in_service("CAF") == "panel_closed"
    assert central.walk_in_clerks["CAF"]  # nothing asked of the central
    await opened(h)
    listed = await h.engine.staff_walk_in_services()
    assert listed == WalkInServices((WalkInService("CAF", 1), WalkInService("France Travail", 1)))
    assert await h.engine.staff_walk_in_service("CPAM") == "no_clerk_available"
    assert await h.engine.staff_walk_in_service("Impôts") == "walk_in_service_unknown"
    assert not central.offers
    assert await h.engine.staff_walk_in_service("CAF") is None
    await h.until(lambda: bool(central.offers))
    assert central.offers[0][0] == "w1" and h.engine.session.phase is Phase.WAITING_FOR_CLERK
    assert await h.engine.staff_walk_in_service("France Travail") == "busy"
    assert central.walk_in_clerks["France Travail"]  # not taken by the refused try


async def test_the_walk_in_list_does_not_keep_the_panel_open(harness: Callable[..., Harness]) -> None:
    """The page asks again every few seconds: that is not someone using the panel."""
    central = central_with_pin()
    central.walk_in_clerks = {"CAF": [walk_in()]}
    h = harness(central)
    await opened(h)
    before = h.engine.staff._last_activity
    for _ in range(3):
        await asyncio.sleep(0.01)
        assert (await h.engine.staff_walk_in_services()).services
    assert h.engine.staff._last_activity == before


async def test_walk_in_services_out_of_service_or_unreachable_say_so(harness: Callable[..., Harness]) -> None:
    central = central_with_pin()
    central.walk_in_clerks = {"CAF": [walk_in()]}
    h = harness(central)
    await opened(h)
    central.failure = CentralUnavailable("down")
    assert await h.engine.staff_walk_in_services() == WalkInServices(problem="central_unreachable")
    assert await h.engine.staff_walk_in_service("CAF") == "central_unreachable"
    central.failure = None
    assert await h.engine.staff_out_of_service(True)
    assert await h.engine.staff_walk_in_services() == WalkInServices(problem="out_of_service")
    assert await h.engine.staff_walk_in_service("CAF") == "out_of_service"
    assert central.walk_in_clerks["CAF"] and not central.offers
