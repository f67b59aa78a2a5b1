"""Commands from IT staff to a kiosk (reload, restart, screenshot), heard in the heartbeat's answer.

Each command carries how long it stays valid, in seconds from the moment the central answered (a
kiosk's wall clock may be wrong; its monotonic clock measures a duration well): past that, it is never
run. Each runs at most once (the engine remembers the ids it has seen) and its result goes back once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import KioskError, MalformedResponse
from .wire import Reader

MAX_COMMANDS = 20  # in one heartbeat answer; the reference central never has that many pending
MAX_EXPIRY_S = 3600.0
MAX_SCREENSHOT_BYTES = 3 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class CommandKind(StrEnum):
    RELOAD = "reload"  # fetch the config and the schedule again, redraw the idle screen
    RESTART = "restart"  # a clean exit: the service manager starts the kiosk again
    SCREENSHOT = "screenshot"  # a PNG of the kiosk's own window, never during a session


class Outcome(StrEnum):
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"


# Why a command was refused: stable codes the fleet page words.
IN_SESSION = "in_session"  # a citizen's session is under way (or just ended: the goodbye screen)
RESETTING = "resetting"  # the reset check between citizens is running
STAFF_PANEL = "staff_panel"  # the staff panel is open: the camera's live picture, a walk-in code typed
EXPIRED = "expired"  # heard after its expiry: not run
UNSUPPORTED = "unsupported"  # a kind this kiosk does not know (a newer central), or it has no screen


class CommandRefused(KioskError):
    """The kiosk's screen refused a command at the last moment (`reason`: one of the codes above)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KioskCommand:
    id: str
    kind: CommandKind | None  # None: a kind this kiosk does not know (refused: unsupported)
    expires_in_s: float  # from when the heartbeat's answer arrived
    name: str = ""  # the kind as the central sent it, for the logs

    @property
    def label(self) -> str:
        return self.kind.value if self.kind is not None else f"unknown {self.name!r}"


@dataclass(frozen=True, slots=True)
class CommandResult:
    command_id: str
    outcome: Outcome
    reason: str | None = None  # why it was refused or failed
    screenshot: bytes | None = None  # a screenshot's PNG (outcome DONE)

    def __repr__(self) -> str:
        size = "-" if self.screenshot is None else f"{len(self.screenshot)} bytes"
        return f"CommandResult({self.command_id!r}, {self.outcome.value}, {self.reason!r}, png={size})"


def parse_commands(document: object) -> tuple[KioskCommand, ...]:
    """The heartbeat's answer (200): {"commands": [{id, kind, expires_in_seconds, …}]}. Strict: any
    malformed item makes the whole list unreadable (MalformedResponse); unknown fields are ignored, and
    a kind this kiosk does not know (a newer central's) is kept as None, to be refused."""
    r = Reader(document)
    commands = []
    for index, item in enumerate(r.array("commands", max_items=MAX_COMMANDS)):
        c = Reader(item, f"$.commands[{index}]")
        ident = c.text("id", max_len=64)
        if not ident or not all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in ident):
            raise MalformedResponse(f"{c.path}.id: expected letters, digits, _ or -")
        raw_kind = c.text("kind", max_len=32)
        kind = CommandKind(raw_kind) if raw_kind in {k.value for k in CommandKind} else None
        if item.get("expires_in_seconds") is None:
            raise MalformedResponse(f"{c.path}.expires_in_seconds: missing")
        # Zero or less: expired on its way (the kiosk says so, and runs nothing).
        expires_in = c.number("expires_in_seconds", 0.0, minimum=-1e9, maximum=MAX_EXPIRY_S)
        commands.append(KioskCommand(ident, kind, expires_in, raw_kind))
    return tuple(commands)


def is_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)
