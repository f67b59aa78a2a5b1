"""The session state machine: idle → upcoming → waiting for the clerk → in call → ended → idle.

Pure functions of (session, time, schedule): the engine feeds them and carries out the effects
(start or stop a call). Nothing here sleeps or does I/O, so every transition is unit-testable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from .models import Appointment, Schedule


class Phase(StrEnum):
    IDLE = "idle"
    UPCOMING = "upcoming"
    WAITING_FOR_CLERK = "waiting_for_clerk"
    IN_CALL = "in_call"
    ENDED = "ended"


class EndReason(StrEnum):
    CLERK_HUNG_UP = "clerk_hung_up"
    CITIZEN_HUNG_UP = "citizen_hung_up"
    CLERK_NO_SHOW = "clerk_no_show"
    APPOINTMENT_OVER = "appointment_over"
    CANCELLED = "cancelled"
    CALL_FAILED = "call_failed"
    STAFF_ENDED = "staff_ended"  # from the staff panel


@dataclass(frozen=True, slots=True)
class Timing:
    upcoming_before: timedelta = timedelta(minutes=15)
    join_before: timedelta = timedelta(seconds=90)
    no_show_after: timedelta = timedelta(minutes=15)
    ended_screen: timedelta = timedelta(seconds=12)
    # The one-touch rating at the end of a session where the citizen met the clerk: the question stays
    # this long at most (an absent citizen never holds up the next one), « Merci » this long after.
    rating_for: timedelta = timedelta(seconds=30)
    rating_thanks: timedelta = timedelta(seconds=4)


# What the reset between two citizens may take, ahead of the next one's joining time.
RESET_MARGIN = timedelta(seconds=15)

FACES = (1, 2, 3, 4, 5)  # very bad … very good (the UI words them: rating.face.N)


@dataclass(frozen=True, slots=True)
class CitizenRating:
    """The question « Comment s'est passé votre rendez-vous ? » on the ended screen and its answer: a
    face (1 very bad … 5 very good), « Passer » (answered, no face), or nothing before the timeout.
    Only the answer leaves the kiosk, in the session report; nothing says who gave it."""

    asked_at: datetime
    face: int | None = None
    answered_at: datetime | None = None

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def wire_value(self) -> int | str:
        """What the session report carries: the face, "skipped" or "no_answer"."""
        if self.face is not None:
            return self.face
        return "skipped" if self.answered else "no_answer"


@dataclass(frozen=True, slots=True)
class Session:
    phase: Phase = Phase.IDLE
    appointment: Appointment | None = None
    clerk_late: bool = False
    reconnecting: bool = False
    end_reason: EndReason | None = None
    ended_at: datetime | None = None
    rating: CitizenRating | None = None  # ENDED only, when the citizen met the clerk


IDLE = Session()


def next_appointment(
    schedule: Schedule | None, now: datetime, done: frozenset[str], timing: Timing
) -> Appointment | None:
    """The appointment the kiosk should be busy with now, if any: the earliest not yet done that has
    not ended and starts within the 'upcoming' horizon."""
    if schedule is None:
        return None
    for appointment in schedule.appointments:  # sorted by start
        if appointment.id in done or appointment.end <= now:
            continue
        if appointment.start - timing.upcoming_before <= now:
            return appointment
        return None
    return None


def upcoming_today(schedule: Schedule | None, now: datetime, done: frozenset[str]) -> tuple[Appointment, ...]:
    """What the idle screen lists: today's appointments (in the central's time zone) not yet over."""
    if schedule is None:
        return ()
    today = now.astimezone().date()
    return tuple(
        a
        for a in schedule.appointments
        if a.id not in done and a.end > now and a.start.astimezone().date() == today
    )


def _ended(session: Session, reason: EndReason, now: datetime) -> Session:
    # Rated only by a citizen who met the clerk (in a call, or waiting for a dropped one to come back).
    met = session.phase is Phase.IN_CALL or session.reconnecting
    rating = CitizenRating(asked_at=now) if met else None
    return Session(Phase.ENDED, session.appointment, end_reason=reason, ended_at=now, rating=rating)


def ended_until(session: Session, timing: Timing) -> datetime:
    """When the ended screen gives way to the reset between citizens."""
    assert session.ended_at is not None
    rating = session.rating
    if rating is None or timing.rating_for <= timedelta(0):
        return session.ended_at + timing.ended_screen
    if rating.answered_at is None:
        return rating.asked_at + timing.rating_for
    return rating.answered_at + timing.rating_thanks


def rated(session: Session, face: int | None, now: datetime) -> Session:
    """The citizen touched a face (or « Passer », None). Once only; anything else changes nothing."""
    rating = session.rating
    if session.phase is not Phase.ENDED or rating is None or rating.answered:
        return session
    if face is not None and (isinstance(face, bool) or face not in FACES):
        return session
    return replace(session, rating=replace(rating, face=face, answered_at=now))


def advance(
    session: Session, now: datetime, schedule: Schedule | None, done: frozenset[str], timing: Timing
) -> Session:
    """The transitions driven by time and by schedule changes."""
    phase = session.phase
    if phase is Phase.ENDED:
        if now >= ended_until(session, timing):
            return IDLE
        # Back-to-back appointments: the next citizen's call is not held up by this one's goodbye or
        # rating (which is then not given: counted as not answered), nor by the reset between them.
        following = next_appointment(schedule, now, done, timing)
        if following is not None and now >= following.start - timing.join_before - RESET_MARGIN:
            return IDLE
        return session

    if phase is Phase.IDLE:
        appointment = next_appointment(schedule, now, done, timing)
        if appointment is None:
            return session
        session = Session(Phase.UPCOMING, appointment)
        phase = Phase.UPCOMING

    appointment = session.appointment
    assert appointment is not None
    # A schedule update may move or cancel the appointment; follow it, except during a call.
    if phase is not Phase.IN_CALL and schedule is not None:
        current = schedule.find(appointment.id)
        if current is None:
            return IDLE if phase is Phase.UPCOMING else _ended(session, EndReason.CANCELLED, now)
        if current != appointment:
            session = replace(session, appointment=current)
            appointment = current

    if phase is Phase.UPCOMING:
        if now >= appointment.end:
            return IDLE
        if now < appointment.start - timing.upcoming_before:
            return IDLE  # moved later
        if now >= appointment.start - timing.join_before:
            return Session(Phase.WAITING_FOR_CLERK, appointment, clerk_late=now > appointment.start)
        return session

    if phase is Phase.WAITING_FOR_CLERK:
        if now >= appointment.end:
            return _ended(session, EndReason.APPOINTMENT_OVER, now)
        if not session.reconnecting and now >= appointment.start + timing.no_show_after:
            return _ended(session, EndReason.CLERK_NO_SHOW, now)
        late = now > appointment.start
        return session if late == session.clerk_late else replace(session, clerk_late=late)

    return session  # IN_CALL ends by a hang-up, never by the clock: clerks may overrun the slot.


def clerk_answered(session: Session) -> Session:
    if session.phase is not Phase.WAITING_FOR_CLERK:
        return session
    return Session(Phase.IN_CALL, session.appointment)


def hung_up(session: Session, by_clerk: bool, now: datetime) -> Session:
    if session.phase not in (Phase.WAITING_FOR_CLERK, Phase.IN_CALL):
        return session
    return _ended(session, EndReason.CLERK_HUNG_UP if by_clerk else EndReason.CITIZEN_HUNG_UP, now)


def ended_by_staff(session: Session, now: datetime) -> Session:
    if session.phase not in (Phase.WAITING_FOR_CLERK, Phase.IN_CALL):
        return session
    return _ended(session, EndReason.STAFF_ENDED, now)


def finished_earlier(session: Session, now: datetime) -> Session:
    """The central says this appointment's call was hung up before (this kiosk restarted since):
    it is over, whatever the clock says."""
    if session.phase not in (Phase.WAITING_FOR_CLERK, Phase.IN_CALL):
        return session
    return _ended(session, EndReason.APPOINTMENT_OVER, now)


def call_dropped(session: Session, now: datetime) -> Session:
    """The connection broke without a hang-up: wait for the clerk again on a new connection."""
    if session.phase is not Phase.IN_CALL:
        return session
    assert session.appointment is not None
    if now >= session.appointment.end + timedelta(minutes=30):
        return _ended(session, EndReason.CALL_FAILED, now)
    return Session(Phase.WAITING_FOR_CLERK, session.appointment, clerk_late=True, reconnecting=True)
