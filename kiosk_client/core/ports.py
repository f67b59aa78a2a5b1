"""The ports the engine needs; adapters implement them (real ones and fakes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from .commands import CommandResult, KioskCommand
from .control_protocol import InputMessage
from .crash_loop import RunHistory
from .document_desk import ExpiredDocument
from .document_transfer import DocumentLink
from .models import (
    Appointment,
    CallSignal,
    CallTicket,
    Heartbeat,
    IceServer,
    RemoteConfig,
    RgbImage,
    Schedule,
    SessionDescription,
    WalkInService,
)
from .reset_check import CheckResult, OutOfService
from .updates import InstallRequest, UpdaterReport


class SecretStore(Protocol):
    """Where the kiosk's secrets live: the device token and the document outbox's key. Adapters: the OS
    keyring, systemd's sealed credentials (both refuse what they cannot keep safe), memory for tests."""

    def device_token(self) -> str | None:
        """None: this kiosk is not enrolled."""
        ...

    def store_device_token(self, token: str) -> None: ...

    def outbox_key(self) -> bytes:
        """The outbox's AES-256 key (32 bytes)."""
        ...


class CentralPort(Protocol):
    async def fetch_schedule(self, etag: str | None) -> Schedule | None:
        """The schedule, or None when it did not change since `etag` (HTTP 304)."""

    async def fetch_config(self) -> RemoteConfig: ...

    async def post_offer(self, appointment_id: str, offer: SessionDescription) -> CallTicket: ...

    async def wait_call(self, appointment_id: str, after_version: int, wait_s: float) -> CallSignal | None:
        """Long-poll the call's signalling state; None when nothing changed within `wait_s`."""

    async def hang_up(self, appointment_id: str, call_id: str, reason: str) -> None: ...

    async def send_heartbeat(self, heartbeat: Heartbeat) -> tuple[KioskCommand, ...]:
        """The commands IT staff left for this kiosk, heard in the answer (none: 204, or a list the
        adapter could not read, which it logs)."""
        ...

    async def post_command_result(self, result: CommandResult) -> None:
        """A command's result, once (POST /kiosk/commands/{id}/result; sent again, it changes nothing)."""
        ...

    async def report_document_expired(self, expired: ExpiredDocument) -> None:
        """Tell the central a document was destroyed before the clerk confirmed it."""
        ...

    async def post_session_report(self, report: Mapping[str, object]) -> None:
        """The session's record and the reset check's report (core/session_report.py)."""
        ...

    async def start_walk_in(self, code: str) -> Appointment:
        """A walk-in session from a code a clerk gave (POST /kiosk/walk-ins): the appointment it opened,
        now in this kiosk's schedule. CentralRejected with the central's code when refused
        (walk_in_code_unknown, walk_in_code_expired, walk_in_code_used, too_many_attempts)."""
        ...

    async def walk_in_services(self) -> tuple[WalkInService, ...]:
        """The services with a clerk available for a walk-in session now (GET
        /kiosk/walk-in-services), by name; empty when nobody is."""
        ...

    async def start_walk_in_with_service(self, service: str) -> Appointment:
        """A walk-in session with the available clerk of `service` who waited longest (POST
        /kiosk/walk-ins with the service): the appointment it opened, as start_walk_in. CentralRejected
        with the central's code when refused (no_clerk_available, walk_in_service_unknown,
        too_many_attempts)."""
        ...

    async def measure_uplink(self, size_bytes: int) -> float:
        """kbit/s of one upload of `size_bytes` to the central (POST /kiosk/uplink-probe)."""
        ...

    async def download_software(self, version: str, sha256: str, destination: Path) -> None:
        """The release's wheel (GET /kiosk/software/{version}) into `destination`, streamed and
        size-capped; written there only once its SHA-256 is `sha256` (MalformedResponse otherwise,
        and nothing is left behind)."""
        ...

    async def aclose(self) -> None: ...


class UpdatesPort(Protocol):
    """The kiosk's side of staged updates (adapters/update_spool.py): its spool, where it downloads
    wheels and writes install requests for the privileged updater, the updater's status, and the
    health mark that tells the updater a new version came up. Small local files: called on the
    engine's loop."""

    def wheel_path(self, version: str) -> Path: ...

    def has_wheel(self, version: str, sha256: str) -> bool:
        """The wheel of `version` is in the spool, with this hash (other versions' wheels are removed)."""
        ...

    def request_pending(self) -> bool:
        """An install request is written and the updater has not taken it yet."""
        ...

    def write_request(self, request: InstallRequest) -> None:
        """Atomically: the updater never reads half a request."""
        ...

    def updater_report(self) -> UpdaterReport | None: ...

    def mark_healthy(self, version: str) -> None:
        """This version's window is up and it reached the central: the updater may keep it."""
        ...

    def set_busy(self, reason: str | None) -> None:
        """Why the kiosk must not be restarted now (core/updates.install_blocker), or None: idle. The
        updater reads it right before it switches releases."""
        ...


@dataclass(frozen=True, slots=True)
class CallStats:
    remote_video_frames: int = 0
    remote_audio_frames: int = 0
    first_remote_video_at: float | None = None  # wall-clock seconds (time.time())
    first_remote_audio_at: float | None = None
    local_video_frames_sent: int = 0
    connected_at: float | None = None
    # The candidate pair ICE selected, "<local> -> <remote>": host, srflx, prflx or relay, the local
    # relay with how it reaches its TURN server (e.g. "relay/tcp -> host"); None until connected.
    route: str | None = None


@dataclass(frozen=True, slots=True)
class CallConnected:
    route: str | None = None  # as in CallStats.route


@dataclass(frozen=True, slots=True)
class RelayUnavailable:
    """The connection's TURN server gave it no relay candidate (reported once gathering is over,
    before the offer is returned): `refused` when the server refused the credentials (expired, or a
    secret that differs from coturn's), otherwise it could not be reached or did not answer."""

    url: str
    refused: bool
    detail: str


@dataclass(frozen=True, slots=True)
class RemoteMediaStarted:
    kind: str  # "video" or "audio"


@dataclass(frozen=True, slots=True)
class CallConnectionLost:
    detail: str


@dataclass(frozen=True, slots=True)
class ControlChannelOpened:
    pass


@dataclass(frozen=True, slots=True)
class ControlMessageReceived:
    raw: str | bytes


@dataclass(frozen=True, slots=True)
class DocumentsChannelOpened:
    link: DocumentLink


@dataclass(frozen=True, slots=True)
class DocumentsChannelClosed:
    link: DocumentLink


@dataclass(frozen=True, slots=True)
class DocumentsMessageReceived:
    raw: str | bytes


CallEvent = (
    CallConnected
    | RelayUnavailable
    | RemoteMediaStarted
    | CallConnectionLost
    | ControlChannelOpened
    | ControlMessageReceived
    | DocumentsChannelOpened
    | DocumentsChannelClosed
    | DocumentsMessageReceived
)


class Call(Protocol):
    async def create_offer(self) -> SessionDescription:
        """Gather candidates and return a complete offer (no trickle ICE)."""

    async def accept_answer(self, answer: SessionDescription) -> None: ...

    def set_microphone_enabled(self, enabled: bool) -> None: ...

    def set_camera_enabled(self, enabled: bool) -> None: ...

    def set_speaker_gain(self, gain: float) -> None:
        """The gain applied to the clerk's voice before the speaker (1.0: as received)."""

    def stats(self) -> CallStats: ...

    def send_control(self, text: str) -> None:
        """Send one message on the control data channel (dropped if it is not open)."""

    async def close(self) -> None: ...


class CallFactory(Protocol):
    def new_call(self, ice_servers: tuple[IceServer, ...], on_event: Callable[[CallEvent], None]) -> Call: ...

    async def probe(self) -> dict[str, str]:
        """Check the devices once (at start-up), so a missing one is known before a call."""

    def device_health(self) -> dict[str, str]:
        """Device name → "ok", "missing" or a short reason; reported in heartbeats."""


class VideoSink(Protocol):
    """Where decoded frames go to be drawn (the UI); called from the engine's thread."""

    def remote_frame(self, image: RgbImage) -> None: ...

    def local_frame(self, image: RgbImage) -> None: ...


@runtime_checkable
class MicrophoneMeter(Protocol):
    """Where the microphone's level goes while the citizen waits for the clerk (the UI's « Vous
    m'entendez ? » bar); called from the engine's thread."""

    def microphone_level(self, level: float | None) -> None:
        """0.0 (silence) to 1.0 (full scale); None: this kiosk has no working microphone."""


@runtime_checkable
class DeviceCheckSink(Protocol):
    """Where the staff's live device check goes (the staff panel's preview and level bar); called from
    the engine's thread. Nothing of it is kept: each picture and level replaces the last."""

    def check_frame(self, image: RgbImage | None) -> None:
        """The camera's newest picture (≈10 a second), or None: no picture (no camera, stopped)."""

    def check_level(self, level: float | None) -> None:
        """The microphone's RMS level, 0.0 to 1.0 (≈10 a second), or None: no working microphone."""


class LiveDevices(Protocol):
    """The camera and the microphone a call would open, opened for the staff's live check alone
    (frames and levels go to a DeviceCheckSink). Never open during a call: the engine sees to it."""

    async def start(self) -> dict[str, str]:
        """Opens both; "camera" and "microphone" → "ok", "missing", "disabled" or a short reason."""

    async def stop(self) -> None:
        """Releases both devices (the camera's light goes off); idempotent."""


class LocalCache(Protocol):
    """What survives a restart: the last good schedule and remote config, whether the kiosk is out of
    service, the session reports the central has not had yet, its recent crashes (nothing about
    citizens)."""

    def load_schedule(self) -> Schedule | None: ...

    def save_schedule(self, schedule: Schedule) -> None: ...

    def load_remote_config(self) -> RemoteConfig | None: ...

    def save_remote_config(self, config: RemoteConfig) -> None: ...

    def load_out_of_service(self) -> OutOfService | None: ...

    def save_out_of_service(self, state: OutOfService | None) -> None: ...

    def load_pending_reports(self) -> list[dict[str, object]]: ...

    def save_pending_reports(self, reports: list[dict[str, object]]) -> None: ...

    def load_run_history(self) -> RunHistory | None: ...

    def save_run_history(self, history: RunHistory) -> None: ...


@dataclass(frozen=True, slots=True)
class InputOutcome:
    code: str | None  # None: applied; otherwise why it was refused
    reason: str = ""


class FormViewPort(Protocol):
    """The form view, as the engine sees it: it applies the clerk's accepted inputs."""

    async def apply(self, message: InputMessage, admitted: Callable[[], bool]) -> InputOutcome:
        """Apply one input if `admitted()` still holds at the moment of injection (checked on the thread
        that injects, right before it does)."""
        ...


class ResetScreenPort(Protocol):
    """The kiosk's screen, as the reset check sees it: it wipes what the screen holds of the session
    (on the Qt thread) and reports its own checks (core/reset_check.py SCREEN_CHECKS)."""

    async def wipe_and_check(self, start_up: bool) -> list[CheckResult]:
        """`start_up`: also wipe what only a restart may wipe (the web engine's storage folders)."""
        ...


class RelayProbe(Protocol):
    async def allocate(self, ice_servers: tuple[IceServer, ...]) -> str:
        """Tries a TURN allocation with these servers: "ok", "not_configured" (no TURN server), or why
        it failed."""
        ...


class KioskScreenPort(Protocol):
    """The kiosk's window, as IT staff's commands (core/commands.py) reach it. The engine calls these
    only when no citizen's session is under way."""

    async def screenshot(self) -> bytes:
        """Shows the citizen a calm notice (« Le service d'assistance regarde l'écran de la borne »)
        for a few seconds, grabs the kiosk's own window (never the desktop) and returns it as PNG."""
        ...

    async def reload(self) -> None:
        """Draws the idle screen afresh (after the engine fetched the config and the schedule again)."""
        ...

    async def restart(self) -> None:
        """Exits cleanly (the service manager starts the kiosk again); returns once the exit is asked."""
        ...
