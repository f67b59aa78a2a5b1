"""Who may open the staff panel: the PIN the central configured, a few attempts, then a lock-out that
grows; the panel closes by itself when nobody touches it (an animateur called away must not leave it
open to the next citizen)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

ATTEMPTS = 3  # wrong PINs in a row before a lock-out
LOCKOUTS_S = (60.0, 300.0, 900.0)  # the first, second, then every further lock-out
IDLE_CLOSE_S = 90.0


class Verdict(StrEnum):
    OPENED = "opened"
    WRONG = "wrong"  # `remaining` more attempts before a lock-out
    LOCKED = "locked"  # `seconds` before another attempt is taken
    NO_PIN = "no_pin"  # the central configured none: the panel stays shut


@dataclass(frozen=True, slots=True)
class Attempt:
    verdict: Verdict
    remaining: int = 0
    seconds: float = 0.0


class StaffAccess:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._wrong = 0
        self._lockouts = 0
        self._locked_until = 0.0
        self._last_activity = 0.0
        self._open = False

    def locked_for(self) -> float:
        return max(0.0, self._locked_until - self._clock())

    def before_check(self, pin_configured: bool) -> Attempt | None:
        """An answer without checking the PIN at all (locked out, no PIN), or None: check it."""
        if (wait := self.locked_for()) > 0:
            return Attempt(Verdict.LOCKED, seconds=wait)
        if not pin_configured:
            return Attempt(Verdict.NO_PIN)
        return None

    def record(self, matched: bool) -> Attempt:
        """The outcome of one PIN check (made with core.staff_pin.pin_matches)."""
        if (wait := self.locked_for()) > 0:  # checks that were already running when it locked
            return Attempt(Verdict.LOCKED, seconds=wait)
        if matched:
            self._wrong = 0
            self._lockouts = 0
            self._open = True
            self._last_activity = self._clock()
            return Attempt(Verdict.OPENED)
        self._wrong += 1
        if self._wrong < ATTEMPTS:
            return Attempt(Verdict.WRONG, remaining=ATTEMPTS - self._wrong)
        self._wrong = 0
        lockout = LOCKOUTS_S[min(self._lockouts, len(LOCKOUTS_S) - 1)]
        self._lockouts += 1
        self._locked_until = self._clock() + lockout
        return Attempt(Verdict.LOCKED, seconds=lockout)

    @property
    def is_open(self) -> bool:
        if self._open and self._clock() - self._last_activity > IDLE_CLOSE_S:
            self._open = False
        return self._open

    def touch(self) -> None:
        if self.is_open:
            self._last_activity = self._clock()

    def close(self) -> None:
        self._open = False
