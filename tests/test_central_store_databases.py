"""The central's Store on both databases: SQLite (embedded) and PostgreSQL (a real private server,
tests/postgres_rig.py). The same calls give the same answers; and two connections (as two central
processes have) racing on one enrolment code, one walk-in code, one available clerk or one call's
version never both win."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kiosk_client.central.commands import SCREENSHOTS_KEPT_PER_KIOSK, stamp
from kiosk_client.central.store import BookedAppointment, CallRow, Store, utcnow

from .postgres_rig import new_database

HOUR = timedelta(hours=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    return tmp_path / "central.db" if request.param == "sqlite" else new_database()


@pytest.fixture
def store(target: Path | str) -> Iterator[Store]:
    s = Store(target)
    yield s
    s.close()


def a_site(store: Store, service: str = "CAF") -> tuple[str, str, str]:
    """(kiosk id, clerk id, an appointment under way between them)."""
    kiosk_id = store.create_kiosk("Borne 1", "France Services de Test")
    clerk_id, _ = store.create_clerk("Mme Martin", service)
    now = utcnow()
    appointment_id = store.create_appointment(kiosk_id, clerk_id, service, now - HOUR, now + HOUR, [], None)
    return kiosk_id, clerk_id, appointment_id


def test_a_store_opens_again_on_the_schema_it_made(target: Path | str) -> None:
    first = Store(target)
    kiosk_id, _, appointment_id = a_site(first)
    first.close()
    again = Store(target)  # the schema is there: nothing is made twice, nothing is lost
    try:
        assert again.dialect == ("sqlite" if isinstance(target, Path) else "postgresql")
        assert again.shared is (again.dialect == "postgresql")
        row = again.appointment(appointment_id)
        assert row is not None and row["kiosk_id"] == kiosk_id and row["kiosk_name"] == "Borne 1"
        # By name and by position, and as a dict, whichever the database.
        assert row[0] == appointment_id and dict(row)["id"] == appointment_id
        assert {"id", "end", "kiosk_name"} <= set(row.keys()) and datetime.fromisoformat(
            row["end"]
        ) > utcnow()
    finally:
        again.close()


def test_an_enrolment_code_is_redeemed_once_and_replaces_the_token(store: Store) -> None:
    kiosk_id = store.create_kiosk("Borne 1", "Site")
    code, _ = store.create_enrollment_code(kiosk_id, HOUR)
    redeemed = store.redeem_enrollment_code(code.lower())  # typed in lower case: the same code
    assert redeemed is not None and redeemed[0] == kiosk_id
    assert store.redeem_enrollment_code(code) is None
    row = store.kiosk_by_token(redeemed[1])
    assert row is not None and row["id"] == kiosk_id
    expired, _ = store.create_enrollment_code(kiosk_id, -HOUR)
    assert store.redeem_enrollment_code(expired) is None
    assert store.kiosk_by_token(redeemed[1]) is not None  # an expired code changed nothing


def test_a_call_counts_its_versions_and_a_refused_change_changes_nothing(store: Store) -> None:
    _, _, appointment_id = a_site(store)
    assert store.call(appointment_id) == CallRow(appointment_id, 0, None, None, None, False, None, None)
    offer = store.post_offer(appointment_id, "v=0 offer")
    assert (offer.version, offer.offer, offer.answer) == (1, "v=0 offer", None)

    def refuse(current: CallRow) -> None:
        raise LookupError(f"refused at version {current.version}")

    with pytest.raises(LookupError, match="version 1"):
        store.post_answer(appointment_id, "v=0 answer", refuse)
    assert store.call(appointment_id) == offer
    answer = store.post_answer(appointment_id, "v=0 answer")
    assert (answer.version, answer.call_id, answer.answer) == (2, offer.call_id, "v=0 answer")
    ended = store.hang_up(appointment_id, "clerk", "done")
    assert (ended.version, ended.ended, ended.ended_by, ended.reason) == (3, True, "clerk", "done")
    assert store.hang_up(appointment_id, "kiosk", "again") == ended  # ended once
    assert store.call(appointment_id).to_json()["has_answer"] is True


def test_walk_in_codes_and_availability(store: Store) -> None:
    kiosk_id, clerk_id, _ = a_site(store)
    code, _ = store.create_walk_in_code(clerk_id, timedelta(minutes=5), max_live=3)
    assert store.redeem_walk_in_code("000000" if code != "000000" else "111111", kiosk_id, HOUR) == (
        "unknown",
        None,
    )
    outcome, appointment_id = store.redeem_walk_in_code(code, kiosk_id, HOUR)
    assert outcome == "ok" and appointment_id is not None
    row = store.appointment(appointment_id)
    assert row is not None and row["walk_in"] == 1 and row["clerk_id"] == clerk_id
    assert store.redeem_walk_in_code(code, kiosk_id, HOUR) == ("used", None)
    codes = [store.create_walk_in_code(clerk_id, timedelta(minutes=5), max_live=2)[0] for _ in range(3)]
    assert store.redeem_walk_in_code(codes[0], kiosk_id, HOUR) == ("expired", None)  # withdrawn

    # Two clerks of one service turn available; the one who waited longest is taken first.
    durand, _ = store.create_clerk("M. Durand", "CAF")
    assert store.set_walk_in_available(clerk_id, "CAF", True, HOUR)[0] == "ok"
    assert store.set_walk_in_available(durand, "CAF", True, HOUR)[0] == "ok"
    assert store.walk_in_services() == [("CAF", 2)]
    kept = store.keep_walk_in_available(clerk_id, 2 * HOUR)
    assert kept is not None and kept["ended"] is None
    first = store.take_walk_in_clerk("CAF", kiosk_id, HOUR)
    second = store.take_walk_in_clerk("CAF", kiosk_id, HOUR)
    assert first[0] == second[0] == "ok" and store.take_walk_in_clerk("CAF", kiosk_id, HOUR) == ("none", None)
    assert [store.appointment(a)["clerk_id"] for a in (first[1], second[1]) if a] == [clerk_id, durand]  # type: ignore[index]
    assert store.take_walk_in_clerk("Nobody's", kiosk_id, HOUR) == ("unknown", None)
    # Turned on again: at the back of the queue, its row as new.
    again = store.set_walk_in_available(clerk_id, "CAF", True, HOUR)[1]
    assert again is not None and again["ended"] is None and again["appointment_id"] is None
    store.end_walk_in_availability(clerk_id, "turned_off")
    ended = store.walk_in_availability(clerk_id)
    assert ended is not None and ended["ended"] == "turned_off"


def test_upserts_keep_one_row_each(store: Store) -> None:
    kiosk_id, _, appointment_id = a_site(store)
    store.put_setting("kiosk_config", {"poll_interval_seconds": 5})
    store.put_setting("kiosk_config", {"poll_interval_seconds": 7})
    assert store.get_setting("kiosk_config") == {"poll_interval_seconds": 7}
    store.record_heartbeat(kiosk_id, "idle", None, {"camera": "ok"}, "1.0", {"ok": True})
    store.record_heartbeat(kiosk_id, "in_call", appointment_id, {}, "1.0")
    row = store.kiosk(kiosk_id)
    assert row is not None and row["last_state"] == "in_call" and row["last_preflight"] == '{"ok": true}'
    store.record_expired_document(kiosk_id, "a" * 32, None, None, "retention")
    store.record_expired_document(kiosk_id, "a" * 32, appointment_id, "b" * 64, "unreadable")
    assert [(r["reason"], r["sha256"]) for r in store.expired_documents()] == [("unreadable", "b" * 64)]
    for report_id in ("r1", "r2", "r1"):
        report = {"report_id": report_id, "reset": {"trigger": "end", "passed": True}}
        store.record_session_report(kiosk_id, report)
    assert [r["report_id"] for r in store.session_reports()] == ["r1", "r2"]  # kept once, in order


def test_bookings_are_applied_once_in_order(store: Store) -> None:
    kiosk_id, clerk_id, _ = a_site(store)
    start = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)
    booked = BookedAppointment(kiosk_id, clerk_id, "CAF", start, start + HOUR, "Mme Dupont")
    v1, v2 = start - timedelta(days=9), start - timedelta(days=8)
    outcome, appointment_id = store.apply_booking("ics", "uid-1", 0, v1, "active", None, booked)
    assert outcome == "created" and appointment_id is not None
    assert store.apply_booking("ics", "uid-1", 0, v1, "active", None, booked) == ("unchanged", appointment_id)
    later = BookedAppointment(kiosk_id, clerk_id, "CAF", start + HOUR, start + 2 * HOUR, "Mme Dupont")
    assert store.apply_booking("ics", "uid-1", 1, v2, "active", None, later) == ("updated", appointment_id)
    assert store.apply_booking("ics", "uid-1", 0, v1, "active", None, booked)[0] == "stale"
    row = store.appointment(appointment_id)
    assert row is not None and row["end"] == (start + 2 * HOUR).isoformat()
    assert store.apply_booking("ics", "uid-1", 2, v2, "cancelled", None, None)[0] == "cancelled"
    assert store.appointments_for_kiosk(kiosk_id, start - HOUR, start + 3 * HOUR) == []
    store.apply_booking("rdv", "x-1", 0, v1, "ignored", "no kiosk", None)
    assert [b["external_id"] for b in store.bookings()] == ["uid-1", "x-1"]
    assert [b["state"] for b in store.bookings("ics")] == ["cancelled"]
    booking = store.booking("rdv", "x-1")
    assert booking is not None and booking["reason"] == "no kiosk"
    assert [b["start"] for b in store.bookings("rdv")] == [None]  # no appointment: NULL


def test_ratings_count_the_citizens_and_keep_the_clerks_first(store: Store) -> None:
    kiosk_id, _, appointment_id = a_site(store)
    for report_id, rating in (("r1", 5), ("r2", 5), ("r1", 5), ("r3", "skipped")):  # r1 again: counted once
        session = {"appointment_id": appointment_id, "citizen_rating": rating}
        store.record_session_report(
            kiosk_id,
            {"report_id": report_id, "reset": {"trigger": "end", "passed": True}, "session": session},
        )
    counts = {(r["rating"], r["count"]) for r in store.usage_citizen_ratings()}
    assert counts == {("5", 2), ("skipped", 1)}
    assert all(r["site_name"] == "France Services de Test" for r in store.usage_citizen_ratings())
    assert "citizen_rating" not in store.session_reports()[0]["document"]  # kept apart from the report
    assert store.rate_as_clerk(appointment_id, 4, "bien") is True
    assert store.rate_as_clerk(appointment_id, 1, "again") is False  # the first rating stands
    rating = store.clerk_rating(appointment_id)
    assert rating is not None and (rating["face"], rating["remark"]) == (4, "bien")
    [usage] = store.usage_appointments()
    assert (usage["id"], usage["answered"], usage["clerk_face"]) == (appointment_id, 0, 4)
    assert datetime.fromisoformat(usage["end"]) > utcnow()
    store.post_offer(appointment_id, "offer")
    store.post_answer(appointment_id, "answer")
    assert store.usage_appointments()[0]["answered"] == 1


def test_commands_are_delivered_once_and_keep_the_latest_screenshots(store: Store) -> None:
    kiosk_id, _, _ = a_site(store)
    now = utcnow()
    made = [
        store.create_command(kiosk_id, "screenshot", stamp(now + n * timedelta(seconds=1)), stamp(now + HOUR))
        for n in range(SCREENSHOTS_KEPT_PER_KIOSK + 1)
    ]
    expired = store.create_command(kiosk_id, "restart", stamp(now - HOUR), stamp(now - HOUR))
    assert store.pending_commands(kiosk_id, stamp(now)) == len(made)
    assert [r["id"] for r in store.deliver_commands(kiosk_id, stamp(now))] == made  # oldest first
    assert store.deliver_commands(kiosk_id, stamp(now)) == []  # never twice
    assert [r["state"] for r in store.commands(kiosk_id)] == ["delivered"] * len(made) + ["pending"]
    assert {r["id"] for r in store.commands()} == {*made, expired}  # None: every kiosk's
    assert store.finish_command(made[0], "done", None, stamp(now)) is True
    assert store.finish_command(made[0], "failed", "late", stamp(now)) is False  # kept once
    assert store.finish_command(expired, "done", None, stamp(now)) is False  # never delivered
    for n, command_id in enumerate(made):
        store.store_screenshot(command_id, kiosk_id, "iVBORw0KGgo=", (2, 1), 8, stamp(now + n * HOUR))
    assert store.screenshot(made[0]) is None  # the oldest went: only the latest few are kept
    row = store.command(made[-1])
    assert row is not None and (row["png_width"], row["png_height"], row["png_bytes"]) == (2, 1, 8)
    shot = store.screenshot(made[-1])
    assert shot is not None and shot["png_base64"] == "iVBORw0KGgo="
    # Commands older than `forget_before` go, unless a screenshot is kept with them.
    store.create_command(kiosk_id, "restart", stamp(now), stamp(now + HOUR), forget_before=stamp(now + HOUR))
    assert {r["id"] for r in store.commands(kiosk_id)} >= set(made[1:])
    assert made[0] not in {r["id"] for r in store.commands(kiosk_id)} and store.command(expired) is None


def test_appointments_between_every_kiosk_with_its_call(store: Store) -> None:
    kiosk_id, clerk_id, appointment_id = a_site(store)
    other = store.create_kiosk("Borne 2", "Ailleurs")
    now = utcnow()
    later = store.create_appointment(other, clerk_id, "CAF", now + 3 * HOUR, now + 4 * HOUR, [], None)
    assert [r["id"] for r in store.appointments_between(now, now + 5 * HOUR)] == [appointment_id, later]
    assert [r["id"] for r in store.appointments_between(now + 2 * HOUR, now + 5 * HOUR)] == [later]
    store.hang_up(appointment_id, "clerk", "done")
    ended = {r["id"]: r["call_ended"] for r in store.appointments_between(now - HOUR, now + 5 * HOUR)}
    assert ended == {appointment_id: 1, later: 0}
    assert {r["kiosk_id"] for r in store.appointments_between(now - HOUR, now + 5 * HOUR)} == {
        kiosk_id,
        other,
    }


# --------------------------------------------------------------------------- races between connections


def race(target: Path | str, rounds: int, prepare: Callable[[Store], Any], attempt: Callable[[Store, Any], Any]) -> list[list[Any]]:  # fmt: skip
    """`rounds` times, two stores (two connections, as two central processes) try `attempt` on what
    `prepare` made, released together; the two results of each round."""
    stores = [Store(target), Store(target)]
    results: list[list[Any]] = []
    try:
        for _ in range(rounds):
            thing = prepare(stores[0])
            barrier = threading.Barrier(2)
            got: list[Any] = [None, None]

            def one(n: int, thing: Any = thing, barrier: threading.Barrier = barrier, got: list[Any] = got) -> None:  # fmt: skip
                barrier.wait()
                got[n] = attempt(stores[n], thing)

            threads = [threading.Thread(target=one, args=(n,)) for n in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            results.append(got)
    finally:
        for s in stores:
            s.close()
    return results


ROUNDS = 15


def test_two_connections_redeeming_one_enrolment_code_one_wins(target: Path | str) -> None:
    def prepare(store: Store) -> str:
        return store.create_enrollment_code(store.create_kiosk("Borne", "Site"), HOUR)[0]

    for pair in race(target, ROUNDS, prepare, lambda store, code: store.redeem_enrollment_code(code)):
        assert sum(r is not None for r in pair) == 1, pair


def test_two_connections_redeeming_one_walk_in_code_one_wins(target: Path | str) -> None:
    with closing(Store(target)) as store:
        kiosk_id, clerk_id, _ = a_site(store)

    def prepare(store: Store) -> str:
        return store.create_walk_in_code(clerk_id, timedelta(minutes=5), max_live=100)[0]

    pairs = race(target, ROUNDS, prepare, lambda store, code: store.redeem_walk_in_code(code, kiosk_id, HOUR))
    for pair in pairs:
        assert sorted(outcome for outcome, _ in pair) == ["ok", "used"], pair
    with closing(Store(target)) as store:
        walk_ins = store.appointments_for_clerk(clerk_id, utcnow() - HOUR, utcnow() + HOUR)
        assert sum(r["walk_in"] for r in walk_ins) == ROUNDS


def test_two_connections_taking_the_one_available_clerk_one_gets_them(target: Path | str) -> None:
    with closing(Store(target)) as store:
        kiosk_id, clerk_id, _ = a_site(store)

    def prepare(store: Store) -> None:
        assert store.set_walk_in_available(clerk_id, "CAF", True, HOUR)[0] == "ok"

    pairs = race(target, ROUNDS, prepare, lambda store, _: store.take_walk_in_clerk("CAF", kiosk_id, HOUR))
    for pair in pairs:
        assert sorted(outcome for outcome, _ in pair) == ["none", "ok"], pair


def test_two_connections_changing_one_call_lose_no_version(target: Path | str) -> None:
    with closing(Store(target)) as store:
        _, _, appointment_id = a_site(store)
    pairs = race(target, ROUNDS, lambda store: None, lambda store, _: store.post_offer(appointment_id, "v=0"))
    versions = sorted(call.version for pair in pairs for call in pair)
    assert versions == list(range(1, 2 * ROUNDS + 1))  # each change saw the one before


def test_two_connections_polling_one_kiosk_get_each_command_once(target: Path | str) -> None:
    def prepare(store: Store) -> str:
        kiosk_id = store.create_kiosk("Borne", "Site")
        now = utcnow()
        store.create_command(kiosk_id, "restart", stamp(now), stamp(now + HOUR))
        return kiosk_id

    for pair in race(target, ROUNDS, prepare, lambda store, k: store.deliver_commands(k, stamp(utcnow()))):
        assert sorted(len(got) for got in pair) == [0, 1]


def test_a_kiosk_schedule_is_one_read_and_sees_every_offset(store: Store) -> None:
    """The SQL bound on stored texts (a day before, on the date only) never drops an appointment stored
    with a far offset whose date reads earlier than the window's; the exact filter drops the rest."""
    kiosk_id = store.create_kiosk("Borne 1", "France Services de Test")
    code, _ = store.create_enrollment_code(kiosk_id, HOUR)
    redeemed = store.redeem_enrollment_code(code)
    assert redeemed is not None
    clerk_id, _ = store.create_clerk("Mme Martin", "CAF")
    since = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    pacific = timezone(timedelta(hours=-14))  # 2026-12-06 23:30 there is 2026-12-07 13:30 UTC
    kept = store.create_appointment(
        kiosk_id, clerk_id, "CAF", datetime(2026, 12, 6, 23, 0, tzinfo=pacific),
        datetime(2026, 12, 6, 23, 30, tzinfo=pacific), [], None,
    )  # fmt: skip
    store.create_appointment(kiosk_id, clerk_id, "CAF", since - 3 * HOUR, since - 2 * HOUR, [], None)  # over
    store.create_appointment(kiosk_id, clerk_id, "CAF", since - 50 * HOUR, since - 49 * HOUR, [], None)
    later = store.create_appointment(kiosk_id, clerk_id, "CAF", since + HOUR, since + 2 * HOUR, [], None)
    until = since + timedelta(days=2)
    assert [r["id"] for r in store.appointments_for_kiosk(kiosk_id, since, until)] == [kept, later]
    found = store.kiosk_schedule(redeemed[1], since, until)
    assert found is not None
    kiosk, appointments = found
    assert (kiosk["kiosk_id"], kiosk["kiosk_name"]) == (kiosk_id, "Borne 1")
    assert [r["id"] for r in appointments] == [kept, later]
    assert [r["clerk_name"] for r in appointments] == ["Mme Martin", "Mme Martin"]
    assert [r["id"] for r in store.appointments_between(since, until)] == [kept, later]
    assert store.kiosk_schedule("not-a-token", since, until) is None
    quiet = store.create_kiosk("Borne 2", "France Services de Test")  # enrolled, nothing booked
    code, _ = store.create_enrollment_code(quiet, HOUR)
    other = store.redeem_enrollment_code(code)
    assert other is not None
    found = store.kiosk_schedule(other[1], since, until)
    assert found is not None and found[0]["kiosk_id"] == quiet and found[1] == []


def test_a_heartbeat_by_token_is_recorded_with_its_pending_commands_counted(store: Store) -> None:
    kiosk_id = store.create_kiosk("Borne 1", "France Services de Test")
    code, _ = store.create_enrollment_code(kiosk_id, HOUR)
    redeemed = store.redeem_enrollment_code(code)
    assert redeemed is not None
    now = utcnow()
    devices = {"camera": "ok"}
    assert store.heartbeat_by_token("unknown", stamp(now), "idle", None, devices, "1.0") is None
    assert store.kiosk(kiosk_id)["last_seen"] is None  # nothing written for an unknown token
    assert store.heartbeat_by_token(redeemed[1], stamp(now), "idle", None, devices, "1.0") == (kiosk_id, 0)
    store.create_command(kiosk_id, "reload", stamp(now), stamp(now + HOUR))
    store.create_command(kiosk_id, "restart", stamp(now - HOUR), stamp(now - timedelta(minutes=1)))  # expired
    update = {"state": "installed", "version": "1.1", "error": None}
    seen = store.heartbeat_by_token(
        redeemed[1], stamp(now), "in_call", "appt_x", devices, "1.1", {"ok": True}, update
    )
    assert seen == (kiosk_id, 1)
    row = store.kiosk(kiosk_id)
    assert (row["last_state"], row["last_appointment"], row["software_version"]) == (
        "in_call",
        "appt_x",
        "1.1",
    )
    assert (
        row["last_preflight"] is not None and row["last_update"] is not None and row["last_seen"] is not None
    )
