"""The session state machine, transition by transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kiosk_client.core.models import Appointment, Schedule
from kiosk_client.core.session import (
    IDLE,
    EndReason,
    Phase,
    Timing,
    advance,
    call_dropped,
    clerk_answered,
    hung_up,
    next_appointment,
)

T0 = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
TIMING = Timing(
    upcoming_before=timedelta(minutes=15),
    join_before=timedelta(seconds=90),
    no_show_after=timedelta(minutes=15),
    ended_screen=timedelta(seconds=10),
)


def appt(ident: str = "a1", start: datetime = T0, minutes: int = 30) -> Appointment:
    return Appointment(ident, "CAF", "Mme Martin", start, start + timedelta(minutes=minutes))


def schedule(*appointments: Appointment) -> Schedule:
    return Schedule("Borne", "Site", tuple(sorted(appointments, key=lambda a: a.start)))


def at(delta_s: float) -> datetime:
    return T0 + timedelta(seconds=delta_s)


NONE: frozenset[str] = frozenset()


def test_idle_until_the_upcoming_horizon() -> None:
    s = schedule(appt())
    assert advance(IDLE, at(-16 * 60), s, NONE, TIMING) == IDLE
    upcoming = advance(IDLE, at(-14 * 60), s, NONE, TIMING)
    assert upcoming.phase is Phase.UPCOMING and upcoming.appointment == appt()


def test_joins_within_the_join_window_before_the_start() -> None:
    s = schedule(appt())
    upcoming = advance(IDLE, at(-120), s, NONE, TIMING)
    assert upcoming.phase is Phase.UPCOMING
    waiting = advance(upcoming, at(-89), s, NONE, TIMING)
    assert waiting.phase is Phase.WAITING_FOR_CLERK and not waiting.clerk_late


def test_a_kiosk_started_late_goes_straight_to_waiting() -> None:
    waiting = advance(IDLE, at(60), schedule(appt()), NONE, TIMING)
    assert waiting.phase is Phase.WAITING_FOR_CLERK and waiting.clerk_late


def test_clerk_late_after_the_start_then_no_show() -> None:
    s = schedule(appt())
    waiting = advance(IDLE, at(-30), s, NONE, TIMING)
    assert not waiting.clerk_late
    late = advance(waiting, at(5), s, NONE, TIMING)
    assert late.phase is Phase.WAITING_FOR_CLERK and late.clerk_late
    no_show = advance(late, at(15 * 60), s, NONE, TIMING)
    assert no_show.phase is Phase.ENDED and no_show.end_reason is EndReason.CLERK_NO_SHOW


def test_answer_then_hang_ups() -> None:
    waiting = advance(IDLE, at(-30), schedule(appt()), NONE, TIMING)
    in_call = clerk_answered(waiting)
    assert in_call.phase is Phase.IN_CALL
    assert hung_up(in_call, by_clerk=True, now=at(60)).end_reason is EndReason.CLERK_HUNG_UP
    assert hung_up(in_call, by_clerk=False, now=at(60)).end_reason is EndReason.CITIZEN_HUNG_UP
    assert clerk_answered(IDLE) == IDLE  # an answer outside a session changes nothing


def test_a_call_is_never_cut_by_the_clock() -> None:
    s = schedule(appt(minutes=30))
    in_call = clerk_answered(advance(IDLE, at(-30), s, NONE, TIMING))
    assert advance(in_call, at(45 * 60), s, NONE, TIMING) == in_call


def test_ended_screen_then_clean_idle() -> None:
    s = schedule(appt())
    ended = hung_up(clerk_answered(advance(IDLE, at(-30), s, NONE, TIMING)), by_clerk=True, now=at(600))
    assert advance(ended, at(605), s, frozenset({"a1"}), TIMING) == ended
    # After a call the ended screen asks for a rating: it stays until the question times out.
    assert advance(ended, at(611), s, frozenset({"a1"}), TIMING) == ended
    assert advance(ended, at(630), s, frozenset({"a1"}), TIMING) == IDLE


def test_done_appointments_are_not_joined_again() -> None:
    s = schedule(appt())
    assert advance(IDLE, at(60), s, frozenset({"a1"}), TIMING) == IDLE


def test_next_appointment_after_a_finished_one() -> None:
    first, second = appt("a1", T0), appt("a2", T0 + timedelta(minutes=30))
    s = schedule(first, second)
    assert next_appointment(s, at(29 * 60), frozenset({"a1"}), TIMING) == second


def test_dropped_call_waits_again_without_no_show() -> None:
    s = schedule(appt())
    in_call = clerk_answered(advance(IDLE, at(-30), s, NONE, TIMING))
    dropped = call_dropped(in_call, at(20 * 60))
    assert dropped.phase is Phase.WAITING_FOR_CLERK and dropped.reconnecting
    # Past the no-show limit, a reconnecting session keeps waiting (the clerk did show up).
    assert advance(dropped, at(20 * 60 + 1), s, NONE, TIMING).phase is Phase.WAITING_FOR_CLERK
    assert advance(dropped, at(31 * 60), s, NONE, TIMING).end_reason is EndReason.APPOINTMENT_OVER


def test_cancelled_appointment() -> None:
    s = schedule(appt())
    upcoming = advance(IDLE, at(-120), s, NONE, TIMING)
    assert advance(upcoming, at(-110), schedule(), NONE, TIMING) == IDLE
    waiting = advance(IDLE, at(-30), s, NONE, TIMING)
    cancelled = advance(waiting, at(-20), schedule(), NONE, TIMING)
    assert cancelled.phase is Phase.ENDED and cancelled.end_reason is EndReason.CANCELLED


def test_moved_appointment_is_followed() -> None:
    s = schedule(appt())
    upcoming = advance(IDLE, at(-120), s, NONE, TIMING)
    moved = schedule(appt(start=T0 + timedelta(hours=1)))
    assert advance(upcoming, at(-110), moved, NONE, TIMING) == IDLE
    earlier = schedule(appt(start=T0 - timedelta(minutes=1)))
    waiting = advance(upcoming, at(-110), earlier, NONE, TIMING)
    assert waiting.phase is Phase.WAITING_FOR_CLERK and waiting.appointment == earlier.appointments[0]


def test_the_next_citizens_call_cuts_the_rating_short() -> None:
    """Back to back: the question stays its 30 s unless the next appointment's joining time (less what
    the reset takes) comes first; then the kiosk goes on at once."""
    first, second = appt("a1", T0, minutes=10), appt("a2", T0 + timedelta(minutes=10))
    s = schedule(first, second)
    in_call = clerk_answered(advance(IDLE, at(-30), s, NONE, TIMING))
    join_second = 10 * 60 - TIMING.join_before.total_seconds()  # 510 s
    ended = hung_up(in_call, by_clerk=True, now=at(join_second - 25))
    assert ended.rating is not None  # the question is asked
    done = frozenset({"a1"})
    assert advance(ended, at(join_second - 20), s, done, TIMING) == ended  # still asked
    assert advance(ended, at(join_second - 15), s, done, TIMING) == IDLE  # the reset, then the next call
    alone = schedule(first)  # nobody next: the question keeps its 30 s
    assert advance(ended, at(join_second - 15), alone, done, TIMING) == ended
