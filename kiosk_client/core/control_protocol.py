"""The remote-control protocol spoken on the "control" data channel (ordered, reliable), version 1.

Clerk → kiosk: control.request, control.release, pointer, key, text, navigate, zoom.
Kiosk → clerk: ack, error, state, kiosk.screen, form.incident.
Every message is a JSON object with "v" (1), "type" and, from the clerk, "seq" (a number the kiosk
echoes in its ack or error). Anything else — unknown types or fields, wrong types, coordinates out of
range, oversized messages, control characters in text, shortcuts — is refused with an error naming
the problem, and nothing reaches the page.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from . import bounded_json

VERSION = 1
MAX_MESSAGE_BYTES = 16 * 1024
MAX_TEXT_CHARS = 1000
MAX_URL_CHARS = 2048
MAX_ERROR_CHARS = 300  # an error's message, kiosk → clerk
MAX_SEQ = 2**53 - 1

POINTER_ACTIONS = ("move", "press", "release", "click", "double_click", "wheel")
BUTTONS = ("left", "right", "middle")
# Navigation and editing only: no shortcut that could leave the form (Ctrl+T, Alt+F4, F12…).
KEYS = (
    "Tab", "Enter", "Escape", "Backspace", "Delete", "Space",
    "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown",
)  # fmt: skip
MODIFIERS = ("shift",)
# The form view's zoom levels, for the citizen's buttons and the clerk's `zoom` alike: administration
# sites are written at 14-16 px; beyond 200 % a 1280 px wide page no longer fits its forms.
ZOOM_LEVELS = (1.0, 1.25, 1.5, 1.75, 2.0)
# What the kiosk's screen shows of the documents panel (kiosk.screen's `documents`).
DOCUMENTS_SHOWN = ("closed", "open", "scanning", "sending")
MAX_SCREEN_PAGES = 99  # kiosk.screen's `pages`: a count, capped (a desk holds at most 30)
# form.incident: why the form view's page had to be reloaded (core.page_recovery.PageIncident), and
# how it ended. `attempts`: the reloads within the kiosk's retry window, bounded by its budget (3).
FORM_INCIDENT_CAUSES = ("crashed", "killed", "abnormal", "blank")
FORM_INCIDENT_OUTCOMES = ("reloaded", "failed")
MAX_FORM_ATTEMPTS = 9


class ProtocolViolation(Exception):
    """A clerk message that cannot be accepted. `code` is stable; `message` says what was wrong."""

    def __init__(self, code: str, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.seq = seq


@dataclass(frozen=True, slots=True)
class ControlRequest:
    seq: int


@dataclass(frozen=True, slots=True)
class ControlRelease:
    seq: int


@dataclass(frozen=True, slots=True)
class PointerInput:
    seq: int
    action: Literal["move", "press", "release", "click", "double_click", "wheel"]
    x: float  # 0..1 of the form view's width
    y: float  # 0..1 of its height
    button: Literal["left", "right", "middle"] = "left"
    dx: float = 0.0  # wheel, in pixels
    dy: float = 0.0


@dataclass(frozen=True, slots=True)
class KeyInput:
    seq: int
    key: str
    shift: bool = False


@dataclass(frozen=True, slots=True)
class TextInput:
    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class NavigateInput:
    seq: int
    url: str


@dataclass(frozen=True, slots=True)
class ZoomInput:
    """The form view's zoom, set by the clerk (one of ZOOM_LEVELS). An input like the others: only
    with the citizen's consent, applied in order; pointer fractions stay fractions of the view."""

    seq: int
    level: float


ClerkMessage = (
    ControlRequest | ControlRelease | PointerInput | KeyInput | TextInput | NavigateInput | ZoomInput
)
InputMessage = PointerInput | KeyInput | TextInput | NavigateInput | ZoomInput

FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required fields, optional fields) besides v, type, seq
    "control.request": (set(), set()),
    "control.release": (set(), set()),
    "pointer": ({"action", "x", "y"}, {"button", "dx", "dy"}),
    "key": ({"key"}, {"modifiers"}),
    "text": ({"text"}, set()),
    "navigate": ({"url"}, set()),
    "zoom": ({"level"}, set()),
}


def _number(data: dict[str, Any], key: str, low: float, high: float, seq: int) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolViolation("invalid_field", f"{key}: expected a number", seq)
    if not low <= value <= high:
        raise ProtocolViolation("out_of_range", f"{key}: expected a number from {low} to {high}", seq)
    return float(value)


def _choice(data: dict[str, Any], key: str, choices: tuple[str, ...], seq: int) -> Any:
    value = data[key]
    if value not in choices or not isinstance(value, str):
        raise ProtocolViolation("invalid_field", f"{key}: expected one of {', '.join(choices)}", seq)
    return value


def _text(value: str, seq: int) -> str:
    # Text is inserted as characters; line breaks and other controls come as keys, never inside text.
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ProtocolViolation(
            "invalid_field", "text: control characters are not allowed (send keys instead)", seq
        )
    return value


def parse_clerk_message(raw: str | bytes) -> ClerkMessage:
    """Read one message from the clerk, or raise ProtocolViolation."""
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolViolation("too_large", f"message larger than {MAX_MESSAGE_BYTES} bytes")
    if isinstance(raw, bytes):
        raise ProtocolViolation("invalid_message", "binary messages are not part of the control protocol")
    try:
        data = bounded_json.loads(raw)
    except bounded_json.UnsafeJson as exc:
        raise ProtocolViolation("invalid_message", str(exc)) from None
    if not isinstance(data, dict):
        raise ProtocolViolation("invalid_message", "expected a JSON object")
    seq_value = data.get("seq")
    seq = (
        seq_value
        if isinstance(seq_value, int) and not isinstance(seq_value, bool) and 0 <= seq_value <= MAX_SEQ
        else None
    )
    if type(data.get("v")) is not int or data["v"] != VERSION:  # not true, not 1.0
        raise ProtocolViolation("unsupported_version", f"v: this kiosk speaks version {VERSION}", seq)
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ProtocolViolation("unknown_type", f"type: expected one of {', '.join(FIELDS)}", seq)
    if seq is None:
        raise ProtocolViolation("invalid_field", f"seq: expected an integer from 0 to {MAX_SEQ}")
    required, optional = FIELDS[kind]
    present = set(data) - {"v", "type", "seq"}
    if missing := required - present:
        raise ProtocolViolation("invalid_field", f"missing: {', '.join(sorted(missing))}", seq)
    if extra := present - required - optional:
        raise ProtocolViolation("invalid_field", f"unknown fields: {', '.join(sorted(extra))}", seq)

    if kind == "control.request":
        return ControlRequest(seq)
    if kind == "control.release":
        return ControlRelease(seq)
    if kind == "pointer":
        action = _choice(data, "action", POINTER_ACTIONS, seq)
        button: Any = _choice(data, "button", BUTTONS, seq) if "button" in data else "left"
        dx = _number(data, "dx", -10_000, 10_000, seq) if "dx" in data else 0.0
        dy = _number(data, "dy", -10_000, 10_000, seq) if "dy" in data else 0.0
        return PointerInput(
            seq, action, _number(data, "x", 0, 1, seq), _number(data, "y", 0, 1, seq), button, dx, dy
        )
    if kind == "key":
        key = _choice(data, "key", KEYS, seq)
        modifiers = data.get("modifiers", [])
        if (
            not isinstance(modifiers, list)
            or not all(m in MODIFIERS for m in modifiers)
            or len(modifiers) > 1
        ):
            raise ProtocolViolation(
                "invalid_field", f"modifiers: only {', '.join(MODIFIERS)} is allowed", seq
            )
        return KeyInput(seq, key, shift="shift" in modifiers)
    if kind == "text":
        value = data["text"]
        if not isinstance(value, str) or not value:
            raise ProtocolViolation("invalid_field", "text: expected a non-empty string", seq)
        if len(value) > MAX_TEXT_CHARS:
            raise ProtocolViolation("too_large", f"text: at most {MAX_TEXT_CHARS} characters", seq)
        return TextInput(seq, _text(value, seq))
    if kind == "zoom":
        level = data["level"]
        if isinstance(level, bool) or not isinstance(level, int | float) or not math.isfinite(level):
            raise ProtocolViolation("invalid_field", "level: expected a number", seq)
        if float(level) not in ZOOM_LEVELS:
            levels = ", ".join(f"{z:g}" for z in ZOOM_LEVELS)
            raise ProtocolViolation("out_of_range", f"level: expected one of {levels}", seq)
        return ZoomInput(seq, float(level))
    url = data["url"]
    if (
        not isinstance(url, str)
        or not url
        or len(url) > MAX_URL_CHARS
        or bounded_json.has_lone_surrogate(url)
    ):
        raise ProtocolViolation(
            "invalid_field", f"url: expected a URL of at most {MAX_URL_CHARS} characters", seq
        )
    return NavigateInput(seq, url)


def encode(message: dict[str, Any]) -> str:
    return json.dumps({"v": VERSION, **message}, ensure_ascii=False, separators=(",", ":"))


def ack(seq: int) -> str:
    return encode({"type": "ack", "seq": seq})


def error(code: str, message: str, seq: int | None) -> str:
    return encode({"type": "error", "seq": seq, "code": code, "message": message[:MAX_ERROR_CHARS]})


def kiosk_screen(
    *, documents: str, pages: int, language: str, zoom: float, microphone: bool, camera: bool
) -> str:
    """What the citizen's screen shows, for the clerk's console. Bounded and free of citizen data:
    no address, no field, no document name — states, a page count, the language's code."""
    if documents not in DOCUMENTS_SHOWN:
        raise ValueError(f"documents: {documents!r}")
    if not (len(language) == 2 and language.isascii() and language.isalpha() and language.islower()):
        raise ValueError(f"language: {language!r}")
    level = min(ZOOM_LEVELS, key=lambda z: abs(z - zoom))
    return encode(
        {
            "type": "kiosk.screen",
            "documents": documents,
            "pages": max(0, min(MAX_SCREEN_PAGES, pages)),
            "language": language,
            "zoom": level,
            "microphone": microphone,
            "camera": camera,
        }
    )


@dataclass(frozen=True, slots=True)
class FormIncident:
    """form.incident, as a clerk app reads it."""

    cause: Literal["crashed", "killed", "abnormal", "blank"]
    outcome: Literal["reloaded", "failed"]
    attempts: int


def form_incident(*, cause: str, outcome: str, attempts: int) -> str:
    """The form view's page was lost (its renderer died, or it stayed blank) and the kiosk reloaded it
    (`reloaded`: the page is back, but whatever it held and was not sent is gone) or gave up after
    `attempts` reloads (`failed`: the citizen sees a message in place of the page). No address, no
    field: the page's address is in `state`."""
    if cause not in FORM_INCIDENT_CAUSES:
        raise ValueError(f"cause: {cause!r}")
    if outcome not in FORM_INCIDENT_OUTCOMES:
        raise ValueError(f"outcome: {outcome!r}")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise ValueError(f"attempts: {attempts!r}")
    return encode(
        {
            "type": "form.incident",
            "cause": cause,
            "outcome": outcome,
            "attempts": min(attempts, MAX_FORM_ATTEMPTS),
        }
    )


def parse_form_incident(message: object) -> FormIncident:
    """A kiosk's form.incident (already decoded from JSON), checked as strictly as the kiosk writes
    it; ValueError otherwise. For Python clerk apps (the clerk bot); the console has its own check."""
    if not isinstance(message, dict) or set(message) != {"v", "type", "cause", "outcome", "attempts"}:
        raise ValueError("form.incident: expected exactly v, type, cause, outcome, attempts")
    if type(message["v"]) is not int or message["v"] != VERSION or message["type"] != "form.incident":
        raise ValueError("form.incident: wrong v or type")
    cause, outcome, attempts = message["cause"], message["outcome"], message["attempts"]
    if cause not in FORM_INCIDENT_CAUSES or not isinstance(cause, str):
        raise ValueError(f"form.incident: cause {cause!r}")
    if outcome not in FORM_INCIDENT_OUTCOMES or not isinstance(outcome, str):
        raise ValueError(f"form.incident: outcome {outcome!r}")
    if type(attempts) is not int or not 0 <= attempts <= MAX_FORM_ATTEMPTS:
        raise ValueError(f"form.incident: attempts {attempts!r}")
    return FormIncident(cause, outcome, attempts)  # type: ignore[arg-type]  # checked just above
