"""Consented remote control of the form view, as a pure state machine.

The clerk can only *ask*. The answer comes from the kiosk's screen (citizen_answer), never from the
network; the citizen takes control back with one touch (citizen_takes_back), and control ends with
the session. Inputs are refused unless control is granted. The audit trail counts what happened,
never what was typed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .control_protocol import (
    MAX_URL_CHARS,
    ControlRelease,
    ControlRequest,
    InputMessage,
    NavigateInput,
    ProtocolViolation,
    ack,
    encode,
    error,
    form_incident,
    parse_clerk_message,
)
from .navigation import NavigationPolicy, origin_of


class ControlState(StrEnum):
    NONE = "none"
    REQUESTED = "requested"
    GRANTED = "granted"


@dataclass(frozen=True, slots=True)
class AskCitizen:
    """Show the consent question; only a touch on the kiosk answers it."""

    clerk_name: str
    service: str


@dataclass(frozen=True, slots=True)
class ControlChanged:
    """The UI shows or hides the consent question and the 'controlled by' banner."""

    state: ControlState
    clerk_name: str


@dataclass(frozen=True, slots=True)
class SendToClerk:
    text: str


@dataclass(frozen=True, slots=True)
class ApplyInput:
    """An accepted input for the form view; the form view answers with input_applied / input_refused."""

    message: InputMessage


Effect = AskCitizen | ControlChanged | SendToClerk | ApplyInput


def input_kind(message: InputMessage) -> str:
    return type(message).__name__.removesuffix("Input").lower()


MAX_AUDIT_EVENTS = 100
MAX_AUDIT_ORIGINS = 50
MAX_REFUSAL_EXAMPLES = 10


def address_without_secrets(url: str) -> str:
    """A page's address without its query and fragment: a GET form puts what was typed there."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https"):
        return parts.scheme + ":" if parts.scheme else ""
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


@dataclass
class AuditTrail:
    """What happened in the session's remote control, bounded whatever the clerk sends: events, counts
    of inputs and refusals (by code and kind, with a few examples), and the sites visited (origins
    only). Never what was typed, never a query string."""

    appointment_id: str
    clerk_name: str
    events: list[tuple[str, str]] = field(default_factory=list)  # (ISO time, what)
    events_dropped: int = 0
    inputs: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # by code
    refused_kinds: Counter[str] = field(default_factory=Counter)  # by message kind
    refusal_examples: list[tuple[str, str, str]] = field(default_factory=list)  # (time, kind, code)
    origins: list[str] = field(default_factory=list)
    pages: int = 0

    def add_event(self, at: str, what: str) -> None:
        if len(self.events) < MAX_AUDIT_EVENTS:
            self.events.append((at, what))
        else:
            self.events_dropped += 1

    def count_refusal(self, code: str, kind: str, at: str = "") -> None:
        first_of_code = self.refused[code] == 0
        self.refused[code] += 1
        self.refused_kinds[kind] += 1
        if first_of_code and len(self.refusal_examples) < MAX_REFUSAL_EXAMPLES:
            self.refusal_examples.append((at, kind, code))

    def visited(self, url: str) -> None:
        origin = origin_of(url)
        self.pages += 1
        if origin and origin not in self.origins and len(self.origins) < MAX_AUDIT_ORIGINS:
            self.origins.append(origin)

    def to_json(self) -> dict[str, Any]:
        return {
            "appointment_id": self.appointment_id,
            "clerk_name": self.clerk_name,
            "events": [{"at": at, "event": what} for at, what in self.events],
            "events_dropped": self.events_dropped,
            "inputs": dict(self.inputs),
            "refused": dict(self.refused),
            "refused_kinds": dict(self.refused_kinds),
            "refusal_examples": [{"at": at, "kind": k, "code": c} for at, k, c in self.refusal_examples],
            "origins": list(self.origins),
            "pages": self.pages,
        }


class RemoteControl:
    def __init__(
        self,
        appointment_id: str,
        clerk_name: str,
        service: str,
        policy: NavigationPolicy,
        now: Callable[[], datetime],
    ) -> None:
        self.state = ControlState.NONE
        self.clerk_name = clerk_name
        self.service = service
        self.policy = policy
        self._now = now
        self.audit = AuditTrail(appointment_id, clerk_name)
        self._page: dict[str, Any] = {"url": None, "title": None, "width": 0, "height": 0}
        self._ended = False

    # --- helpers

    def _log(self, what: str) -> None:
        self.audit.add_event(self._now().isoformat(), what)

    def state_message(self) -> str:
        return self._state().text

    def _state(self, event: str | None = None) -> SendToClerk:
        return SendToClerk(
            encode({"type": "state", "control": self.state.value, "event": event, **self._page})
        )

    def _refuse(self, code: str, message: str, seq: int | None, kind: str = "message") -> list[Effect]:
        # Counted, not logged one by one: a hostile clerk once left 76,000 events in one audit.
        self.audit.count_refusal(code, kind, self._now().isoformat())
        return [SendToClerk(error(code, message, seq))]

    def _set(self, state: ControlState, event: str) -> list[Effect]:
        self.state = state
        self._log(event)
        return [ControlChanged(state, self.clerk_name), self._state(event)]

    # --- from the clerk (the network)

    def receive(self, raw: str | bytes) -> list[Effect]:
        if self._ended:
            return []
        try:
            message = parse_clerk_message(raw)
        except ProtocolViolation as exc:
            return self._refuse(exc.code, exc.message, exc.seq)
        if isinstance(message, ControlRequest):
            if self.state is not ControlState.NONE:
                return [SendToClerk(ack(message.seq)), self._state()]
            effects = self._set(ControlState.REQUESTED, "requested")
            return [SendToClerk(ack(message.seq)), AskCitizen(self.clerk_name, self.service), *effects]
        if isinstance(message, ControlRelease):
            if self.state is ControlState.NONE:
                return [SendToClerk(ack(message.seq))]
            return [
                SendToClerk(ack(message.seq)),
                *self._set(ControlState.NONE, "released_by_clerk"),
            ]
        kind = input_kind(message)
        if self.state is not ControlState.GRANTED:
            return self._refuse("not_granted", "the citizen has not given you control", message.seq, kind)
        if isinstance(message, NavigateInput):
            verdict = self.policy.check(message.url)
            if not verdict.allowed:
                return self._refuse("not_allowed", verdict.reason, message.seq, kind)
        return [ApplyInput(message)]

    # --- from the kiosk's screen (the citizen or the animateur)

    def citizen_answer(self, accept: bool) -> list[Effect]:
        if self.state is not ControlState.REQUESTED:
            return []
        return self._set(
            ControlState.GRANTED if accept else ControlState.NONE,
            "granted" if accept else "refused",
        )

    def citizen_takes_back(self) -> list[Effect]:
        if self.state is not ControlState.GRANTED:
            return []
        return self._set(ControlState.NONE, "taken_back")

    def connection_lost(self) -> list[Effect]:
        """The call dropped: whoever answers the kiosk's next offer must ask the citizen again."""
        if self.state is ControlState.NONE:
            return []
        return self._set(ControlState.NONE, "connection_lost")

    # --- from the form view

    def input_applied(self, message: InputMessage) -> list[Effect]:
        self.audit.inputs[input_kind(message)] += 1
        return [SendToClerk(ack(message.seq))]

    def input_refused(self, message: InputMessage, code: str, reason: str) -> list[Effect]:
        return self._refuse(code, reason, message.seq, input_kind(message))

    def page_changed(self, url: str, title: str, width: int, height: int) -> list[Effect]:
        address = address_without_secrets(url)
        if address != self._page["url"]:
            self.audit.visited(url)
        self._page = {"url": address[:MAX_URL_CHARS], "title": title[:300], "width": width, "height": height}
        return [self._state("page")]

    def view_resized(self, width: int, height: int) -> list[Effect]:
        """The form view changed size (a banner appeared, the panel opened): the clerk's pointer
        coordinates are fractions of this size, so the clerk must know it at once."""
        if (width, height) == (self._page["width"], self._page["height"]):
            return []
        self._page = {**self._page, "width": width, "height": height}
        return [self._state("resize")]

    def page_incident(self, cause: str, outcome: str, attempts: int) -> list[Effect]:
        """The form view lost its page (renderer dead, or blank) and reloaded it, or gave up. Control is
        not touched: consent lives here, not in the page, so a granted control stays granted across
        the reload (the citizen agreed to the clerk filling the form, not to one renderer process) and
        a reload grants nothing; the clerk is told, and the citizen keeps the take-back button."""
        if self._ended:
            return []
        self._log(f"form_{outcome}_{cause}")
        return [SendToClerk(form_incident(cause=cause, outcome=outcome, attempts=attempts))]

    def navigation_refused(self, url: str, reason: str) -> None:
        """The form view refused a navigation started by the page itself (a link, a redirect, a pop-up)."""
        self.audit.count_refusal("navigation_blocked", "page", self._now().isoformat())

    def end(self) -> list[Effect]:
        """Control ends with the session."""
        if self._ended:
            return []
        effects = self._set(ControlState.NONE, "session_ended") if self.state is not ControlState.NONE else []
        self._ended = True
        return effects
