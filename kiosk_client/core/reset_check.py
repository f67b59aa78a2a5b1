"""The reset check between two citizens: what is checked, how each finding is judged, the verdict.

Pure model: the probes that look at the machine live in adapters (the engine's side: devices, outbox)
and in ui (the Qt side: web profile and storage, session files, clipboard, language, text size, zoom);
they hand their findings to the functions here. A finding names what was left (a file's name, a
count), never its content: the report goes to the central.

A check that could not run is a failed check: the kiosk never shows the next citizen a screen it
could not prove clean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

MAX_NAMED = 5  # leftovers named in a finding; the rest are counted


class Check(StrEnum):
    WEB_PROFILE = "web_profile"  # the form view's page and off-the-record profile are destroyed
    WEB_STORAGE = "web_storage"  # no cookie, cache, localStorage or IndexedDB file of the web engine
    SESSION_FILES = "session_files"  # the documents offered to the form's file chooser are wiped
    SCAN_TEMPORARIES = "scan_temporaries"  # scanned pages (in memory) and the scan job are gone
    CLIPBOARD = "clipboard"
    DEVICES = "devices"  # camera and microphone released: no call, no device file open
    SETTINGS = "settings"  # language, volume, text size and form zoom at the kiosk's defaults
    OUTBOX = "outbox"  # only unconfirmed documents, encrypted, of appointments still waiting for them
    PRINT_FILES = "print_files"  # the clerk's document to print: not in memory, no temporary file left


ENGINE_CHECKS = frozenset(
    {Check.SCAN_TEMPORARIES, Check.DEVICES, Check.SETTINGS, Check.OUTBOX, Check.PRINT_FILES}
)
# Both sides answer for the settings (the engine: volume; the screen: language, text size, zoom) and
# for the scan's temporaries (the engine: its pages in memory; the screen: the previews it shows).
SCREEN_CHECKS = frozenset(
    {
        Check.WEB_PROFILE,
        Check.WEB_STORAGE,
        Check.SESSION_FILES,
        Check.CLIPBOARD,
        Check.SETTINGS,
        Check.SCAN_TEMPORARIES,
    }
)

Trigger = Literal["session_end", "start_up"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: Check
    passed: bool
    detail: str = ""  # what was left (names, counts), or why the check could not run

    def to_json(self) -> dict[str, object]:
        return {"check": self.check.value, "passed": self.passed, "detail": self.detail}


def passed(check: Check, detail: str = "") -> CheckResult:
    return CheckResult(check, True, detail)


def failed(check: Check, detail: str) -> CheckResult:
    return CheckResult(check, False, detail)


def leftovers(check: Check, found: Sequence[str], what: str) -> CheckResult:
    """Passes when nothing was found; otherwise names the first few things found."""
    if not found:
        return passed(check)
    named = ", ".join(sorted(found)[:MAX_NAMED])
    more = f" and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
    return failed(check, f"{len(found)} {what} left: {named}{more}")


@dataclass(frozen=True, slots=True)
class ResetReport:
    trigger: Trigger
    appointment_id: str | None  # the session that just ended; None at start-up
    checked_at: float  # wall-clock seconds
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def to_json(self) -> dict[str, object]:
        return {
            "trigger": self.trigger,
            "appointment_id": self.appointment_id,
            "checked_at": self.checked_at,
            "passed": self.passed,
            "checks": [r.to_json() for r in self.results],
        }


def verdict(
    trigger: Trigger,
    appointment_id: str | None,
    checked_at: float,
    results: Iterable[CheckResult],
    required: frozenset[Check],
) -> ResetReport:
    """One result per check, in a stable order: a check reported twice (settings: the engine's volume
    and the screen's language) fails if either side failed; a required check nobody reported fails."""
    merged: dict[Check, CheckResult] = {}
    for result in results:
        earlier = merged.get(result.check)
        if earlier is None:
            merged[result.check] = result
        elif earlier.passed != result.passed:
            merged[result.check] = earlier if not earlier.passed else result
        elif not result.passed:
            merged[result.check] = failed(result.check, f"{earlier.detail}; {result.detail}")
    for check in required - merged.keys():
        merged[check] = failed(check, "not checked")
    ordered = tuple(merged[c] for c in Check if c in merged)
    return ResetReport(trigger, appointment_id, checked_at, ordered)


# ----------------------------------------------------------------------------- judging the findings


def devices_released(call_open: bool, open_device_files: Sequence[str]) -> CheckResult:
    """No call object (camera and microphone belong to a call) and no device file open in the process."""
    if call_open:
        return failed(Check.DEVICES, "the engine still holds a call")
    return leftovers(Check.DEVICES, open_device_files, "device file(s) open")


@dataclass(frozen=True, slots=True)
class SettingsFound:
    """What the kiosk's screen and engine are set to now, against the kiosk's own defaults."""

    language: str | None = None  # None: not the one who knows (the engine knows only the volume)
    default_language: str | None = None
    larger_text: bool | None = None
    zoom: float | None = None
    volume: int | None = None
    default_volume: int | None = None


def settings_at_default(found: SettingsFound) -> CheckResult:
    wrong = []
    if found.language is not None and found.language != found.default_language:
        wrong.append(f"language {found.language} (default {found.default_language})")
    if found.larger_text:
        wrong.append("larger text")
    if found.zoom is not None and abs(found.zoom - 1.0) > 1e-6:
        wrong.append(f"form zoom {found.zoom:g}")
    if found.volume is not None and found.volume != found.default_volume:
        wrong.append(f"volume {found.volume} (default {found.default_volume})")
    return failed(Check.SETTINGS, "; ".join(wrong)) if wrong else passed(Check.SETTINGS)


def clipboard_empty(formats: Sequence[str]) -> CheckResult:
    """`formats`: the MIME types the clipboard holds (never its content)."""
    return leftovers(Check.CLIPBOARD, formats, "clipboard format(s)")


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One file in the outbox folder, as its probe found it (no content)."""

    name: str
    sealed: bool  # a document that authenticates under the kiosk's key (encrypted, whole)
    document_id: str | None = None
    appointment_id: str | None = None
    expires_at: float | None = None


def outbox_as_allowed(
    entries: Sequence[OutboxEntry],
    appointment_id: str | None,
    unconfirmed: frozenset[str],
    now: float,
) -> CheckResult:
    """What "only this appointment's unconfirmed documents (encrypted)" means, precisely:

    - every file is a sealed document: encrypted and authenticated under the kiosk's key (no plaintext,
      no half-written temporary, nothing else);
    - none is past its retention (the sweep destroys those and tells the central);
    - this appointment's documents are exactly among the ones its desk still waited for at the end
      (`unconfirmed`): a document the clerk confirmed, or refused, is gone;
    - documents of *earlier* appointments may remain until their retention ends: their call was cut
      before the clerk confirmed them and a rejoin of *that* appointment resumes the transfer (they are
      encrypted, never offered to anyone else, and counted in the finding).
    """
    wrong: list[str] = []
    earlier = 0
    for entry in entries:
        if not entry.sealed:
            wrong.append(f"{entry.name} (not a sealed document)")
        elif entry.expires_at is not None and entry.expires_at <= now:
            wrong.append(f"{entry.name} (past its retention)")
        elif entry.appointment_id == appointment_id and appointment_id is not None:
            if entry.document_id not in unconfirmed:
                wrong.append(f"{entry.name} (confirmed or refused, still kept)")
        else:
            earlier += 1
    if wrong:
        return leftovers(Check.OUTBOX, wrong, "outbox file(s) not allowed")
    mine = sum(1 for e in entries if e.appointment_id == appointment_id and appointment_id is not None)
    return passed(
        Check.OUTBOX, f"{mine} unconfirmed of this appointment, {earlier} of earlier appointments waiting"
    )


@dataclass(frozen=True, slots=True)
class OutOfService:
    """The kiosk failed a reset check: no appointment starts until a check passes (after staff act)."""

    since: float
    appointment_id: str | None
    failed_checks: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "since": self.since,
            "appointment_id": self.appointment_id,
            "failed_checks": list(self.failed_checks),
        }

    @classmethod
    def from_json(cls, document: object) -> OutOfService:
        if not isinstance(document, dict):
            raise ValueError("expected an object")
        since, appointment, checks = (
            document.get("since"),
            document.get("appointment_id"),
            document.get("failed_checks"),
        )
        if not isinstance(since, int | float) or not isinstance(appointment, str | None):
            raise ValueError("since or appointment_id")
        if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
            raise ValueError("failed_checks")
        return cls(float(since), appointment, tuple(checks))

    @classmethod
    def after(cls, report: ResetReport) -> OutOfService:
        return cls(report.checked_at, report.appointment_id, tuple(r.check.value for r in report.failures()))
