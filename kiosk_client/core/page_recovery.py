"""Self-healing of the form view's page: what happened, when, and how often the kiosk may try again.

The form view (ui/form_view.py) reloads the citizen's page when QtWebEngine's render process dies
(crashed, killed, abnormal end) or when a failed load leaves the page without content for a few
seconds. Reloading is bounded by a RetryBudget (3 reloads in 60 s by default): a page that crashes its
renderer every time is given up after that, rather than reloaded forever; the citizen then sees a calm
message and the clerk is told. Anything the page held (fields typed, not yet sent) is lost with the
renderer: that cannot be helped, and the clerk is told so.

The events carry `time.monotonic()` timestamps so that a benchmark can time "renderer killed → form
view back" against its own clock (see FormPageRecovered).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_ATTEMPTS = 3
DEFAULT_WINDOW_S = 60.0


class PageIncident(StrEnum):
    """Why the page had to be reloaded (the values are the control protocol's `form.incident` causes)."""

    CRASHED = "crashed"  # the renderer crashed (a bug, out of memory)
    KILLED = "killed"  # the renderer was killed (SIGKILL, the OOM killer)
    ABNORMAL = "abnormal"  # the renderer ended with an error status
    BLANK = "blank"  # a failed load left no content, or the page stopped answering


@dataclass(frozen=True, slots=True)
class FormPageRecovered:
    """The form view's page is back after an incident: the reloaded page's loadFinished(True).

    For `kiosk-client bench recovery` ("renderer killed → form view back"): every time is
    `time.monotonic()` of the kiosk's process, so a benchmark in the same process that noted
    `killed_at = time.monotonic()` just before `os.kill(pid, SIGKILL)` gets the whole recovery as
    `back_at - killed_at`, and its parts as `incident_at - killed_at` (Qt noticing the death),
    `reload_at - incident_at` (deciding) and `back_at - reload_at` (the new renderer loading the page).
    `FormView.kill_renderer()` kills the renderer and returns that `killed_at`; the form view emits
    this event on its `recovered` signal; `ui.form_view.time_renderer_recovery(form)` does both and
    returns a RendererRecoveryTiming. When a reload itself failed and was retried, `incident_at` is
    the first incident's and `reload_at` the last reload's. Only one recovery at a time is timed: a
    benchmark repeating the kill more than the budget allows in its window (3 in 60 s) meets the
    give-up instead (`recovery_failed`), as a crash loop would: give the form view a larger
    `retry_budget` (a RetryBudget) for such a benchmark.
    """

    cause: PageIncident
    attempt: int  # this reload's number within the retry window (earlier incidents' reloads count)
    incident_at: float  # the form view noticed the incident (time.monotonic())
    reload_at: float  # the last reload was asked for
    back_at: float  # that reload's loadFinished(True)
    url: str  # the page reloaded: the last address the navigation policy allowed

    @property
    def seconds(self) -> float:
        """From the incident noticed to the page back."""
        return self.back_at - self.incident_at


@dataclass(frozen=True, slots=True)
class RendererRecoveryTiming:
    """One measure of "renderer killed → form view back" (ui.form_view.time_renderer_recovery)."""

    killed_at: float  # time.monotonic() just before the SIGKILL
    recovered: FormPageRecovered

    @property
    def seconds(self) -> float:
        """From the kill to the reloaded page's loadFinished(True)."""
        return self.recovered.back_at - self.killed_at

    def as_json(self) -> dict[str, float | int | str]:
        """Seconds from the kill, for `bench recovery --json` (no address: it may hold a query)."""
        event = self.recovered
        return {
            "renderer_to_form_s": round(self.seconds, 4),
            "noticed_after_s": round(event.incident_at - self.killed_at, 4),
            "reload_asked_after_s": round(event.reload_at - self.killed_at, 4),
            "cause": event.cause.value,
            "reloads": event.attempt,
        }


@dataclass(frozen=True, slots=True)
class FormPageLost:
    """The kiosk gave up reloading: the page failed again after `attempts` reloads in the budget's
    window. The citizen sees a calm message in place of the page; the clerk is told."""

    cause: PageIncident
    attempts: int
    incident_at: float
    given_up_at: float


class RetryBudget:
    """At most `attempts` reloads in any `window_s` seconds (a sliding window): a page that crashes as
    soon as it is loaded is tried a few times, then given up, never reloaded in a loop. A reload that
    brought the page back still counts: crash, reload, crash, reload… is a loop too."""

    def __init__(
        self,
        attempts: int = DEFAULT_ATTEMPTS,
        window_s: float = DEFAULT_WINDOW_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1 or window_s <= 0:
            raise ValueError("a retry budget needs at least one attempt and a window")
        self.attempts = attempts
        self.window_s = window_s
        self._now = now
        self._taken: deque[float] = deque()

    def _expire(self) -> None:
        now = self._now()
        while self._taken and now - self._taken[0] >= self.window_s:
            self._taken.popleft()

    def take(self) -> int | None:
        """One more reload: its number within the window (1, 2…), or None when the budget is spent."""
        self._expire()
        if len(self._taken) >= self.attempts:
            return None
        self._taken.append(self._now())
        return len(self._taken)

    def used(self) -> int:
        self._expire()
        return len(self._taken)

    def reset(self) -> None:
        """A fresh start: a new session, or a person (the citizen's touch) asking to try again."""
        self._taken.clear()
