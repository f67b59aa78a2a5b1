"""The kiosk engine: polls the schedule, runs the session state machine and the call's signalling.

It lives on the engine's asyncio loop (its own thread when there is a UI) and talks to the outside
only through ports. The UI sees it through the events it publishes and drives it with the public
coroutines (citizen_hang_up, set_microphone, set_camera).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any, Literal

from .backoff import Backoff
from .clock import CentralClock
from .commands import (
    EXPIRED,
    IN_SESSION,
    MAX_SCREENSHOT_BYTES,
    RESETTING,
    STAFF_PANEL,
    UNSUPPORTED,
    CommandKind,
    CommandRefused,
    CommandResult,
    KioskCommand,
    Outcome,
    is_png,
)
from .consent_gate import ConsentGate
from .control_protocol import InputMessage, kiosk_screen
from .control_protocol import error as control_error
from .crash_loop import CRASH_LOOP, CRASH_WINDOW_S, RunHistory, on_clean_stop, on_start
from .document_desk import DocumentDesk, DocumentPorts, ExpiredDocument
from .document_transfer import TransferStatus
from .errors import (
    AuthenticationFailed,
    CallError,
    CentralError,
    CentralRejected,
    CentralUnavailable,
    MalformedResponse,
    ScannerError,
)
from .events import (
    KioskEvent,
    KioskSnapshot,
    LiveCheckEnded,
    Notice,
    SessionDocument,
    SessionFinished,
    SessionRecord,
    StateChanged,
)
from .ice_paths import IcePath, ice_paths
from .input_queue import InputQueue, QueuedInput
from .models import Appointment, CallSignal, CallTicket, Heartbeat, RemoteConfig, Schedule, WalkInService
from .navigation import NavigationPolicy
from .ports import (
    Call,
    CallConnected,
    CallConnectionLost,
    CallEvent,
    CallFactory,
    CallStats,
    CentralPort,
    ControlChannelOpened,
    ControlMessageReceived,
    DocumentsChannelClosed,
    DocumentsChannelOpened,
    DocumentsMessageReceived,
    FormViewPort,
    InputOutcome,
    KioskScreenPort,
    LiveDevices,
    LocalCache,
    RelayProbe,
    RelayUnavailable,
    RemoteMediaStarted,
    ResetScreenPort,
    UpdatesPort,
)
from .preflight import NOT_CONFIGURED, OK, PreflightResult, due
from .print_protocol import is_print_message
from .printing import PrintDesk, PrintPorts
from .remote_control import (
    ApplyInput,
    AskCitizen,
    ControlChanged,
    ControlState,
    Effect,
    RemoteControl,
    SendToClerk,
)
from .reset_check import OutOfService, Trigger
from .reset_service import EngineFacts, ResetService
from .scanning import RawPage, ScanRequest, ScanSource
from .session import (
    IDLE,
    EndReason,
    Phase,
    Session,
    Timing,
    advance,
    call_dropped,
    clerk_answered,
    ended_by_staff,
    finished_earlier,
    hung_up,
    rated,
    upcoming_today,
)
from .staff_access import Attempt, StaffAccess
from .staff_pin import pin_matches
from .updates import (
    DOWNLOAD_FAILED,
    DOWNLOADING,
    REQUESTED,
    WAITING_IDLE,
    InstallRequest,
    KioskActivity,
    UpdateStatus,
    install_blocker,
    pending_appointments,
    settled_status,
)
from .volume import DEFAULT_LEVEL, clamp_level, gain

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StaffDeviceCheck:
    devices: dict[str, str]  # camera, microphone, speaker: "ok" or what is wrong
    scanner: str  # "ok", "missing", "not_configured", "in_use", "blank_page", "error: …"
    scanner_preview: bytes | None = None  # a JPEG of the test page


@dataclass(frozen=True, slots=True)
class StaffReport:
    """What the staff panel shows besides the snapshot (nothing about citizens)."""

    software_version: str
    central_reachable: bool
    pin_configured: bool
    devices: dict[str, str]
    notices: tuple[str, ...]
    out_of_service: tuple[str, ...]  # the causes, empty when in service
    crashes: int  # unclean ends in the last minutes
    preflight: tuple[str, ...] | None = None  # the last pre-flight's problems; None: none ran yet


@dataclass(frozen=True, slots=True)
class WalkInServices:
    """The services the staff panel's walk-in page offers (a clerk of each is available now), or why
    there are none to offer: "panel_closed", "out_of_service", "central_unreachable"."""

    services: tuple[WalkInService, ...] = ()
    problem: str | None = None


LIVE_CHECK_S = 60.0  # the staff's live camera and microphone check stops by itself after this


@dataclass(frozen=True, slots=True)
class LiveCheck:
    """The answer to the staff's live device check (the picture and the level go to the panel)."""

    devices: dict[str, str]  # camera, microphone: "ok", "missing", "disabled" or a short reason
    # Why it is not running: "panel_closed", "in_use" (a session or the reset check needs the
    # devices), "unavailable" (this kiosk has no live check), "failed"; None: running
    refused: str | None = None
    seconds: float = LIVE_CHECK_S  # it stops by itself (and releases both devices) after this


STAFF_OUT_OF_SERVICE = "staff"  # the out-of-service cause when the staff panel says so
UPLINK_PROBE_BYTES = 200_000  # ≈2 s at 800 kbit/s: long enough to measure, short enough not to hurt
PREFLIGHT_EVERY_S = 20.0
WALK_IN_CODE_DIGITS = 6  # as the central makes them (POST /clerk/walk-in-codes)


def _control_used(audit: dict[str, object] | None) -> bool:
    """The citizen let the clerk fill in the form at least once (the audit's events, or its inputs
    should the events have overflowed)."""
    if not audit:
        return False
    events = audit.get("events")
    inputs = audit.get("inputs")
    granted = isinstance(events, list) and any(
        isinstance(e, dict) and e.get("event") == "granted" for e in events
    )
    return granted or (isinstance(inputs, dict) and any(inputs.values()))


class _NoFormView:
    async def apply(self, message: InputMessage, admitted: Callable[[], bool]) -> InputOutcome:
        return InputOutcome("no_form", "this kiosk has no form view")


@dataclass(frozen=True, slots=True)
class ScreenFacts:
    """What the kiosk's screen shows that only the UI knows."""

    language: str
    documents_open: bool
    zoom: float


ACTIVE = (Phase.WAITING_FOR_CLERK, Phase.IN_CALL)
LONG_POLL_S = 20.0
HANG_UP_GRACE_S = 2.5
LIVE_RETRY_BASE_S = 0.5
LIVE_RETRY_CAP_S = 1.0
CONFIG_REFRESH_S = 600.0
CONFIG_BEFORE_CALL_S = 5.0  # a slow central delays an offer by this much at most
HEARTBEAT_S = 30.0
DOWNLOAD_RETRY_S = 300.0  # a release's download that failed is tried again this much later
EVALUATION_LINK_FOR = timedelta(seconds=20)  # the « Je donne mon avis » QR code after the rating
COMMAND_IDS_KEPT = 500  # the ids of commands already run (each runs at most once)
SCREENSHOT_TIMEOUT_S = 15.0


class KioskEngine:
    def __init__(
        self,
        central: CentralPort,
        calls: CallFactory,
        cache: LocalCache,
        clock: CentralClock,
        publish: Callable[[KioskEvent], None],
        *,
        software_version: str = "",
        local_timing: Timing | None = None,
        tick_s: float = 0.2,
        rng: random.Random | None = None,
        form: FormViewPort | None = None,
        default_origins: tuple[str, ...] = (),
        documents: DocumentPorts | None = None,
        consent: ConsentGate | None = None,
        device_files: Callable[[], list[str]] | None = None,
        relay_probe: RelayProbe | None = None,
        preflight_every_s: float = PREFLIGHT_EVERY_S,
        live_devices: LiveDevices | None = None,
        live_check_s: float = LIVE_CHECK_S,
        printing: PrintPorts | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        updates: UpdatesPort | None = None,
    ) -> None:
        self._central = central
        self._calls = calls
        self._cache = cache
        self._clock = clock
        self._publish = publish
        self._version = software_version
        self._local_timing = local_timing or Timing()
        self._tick_s = tick_s
        self._preflight_every_s = preflight_every_s
        self._rng = rng or random.Random()

        self._schedule: Schedule | None = None
        self._config = RemoteConfig()
        self._config_fetched_at: float | None = None
        self._session: Session = IDLE
        self._done: set[str] = set()
        self._central_ok = False
        self._notices: set[Notice] = set()
        self._mic_on = True
        self._cam_on = True
        self._volume = DEFAULT_LEVEL
        self._media_flowing = False
        self._last_snapshot: KioskSnapshot | None = None

        self._call: Call | None = None
        self._call_task: asyncio.Task[None] | None = None
        self._call_ticket: CallTicket | None = None
        self._lost: asyncio.Event | None = None
        self._offer_posted_at: float | None = None
        self._answer_at: float | None = None
        self._first_answer_at: float | None = None  # for the usage figures: the session's length
        self._connections = 0  # how many times the clerk answered in this session
        self._stats = CallStats()
        # Which of the ICE paths (core/ice_paths.py) the next connection of this session tries, and
        # what the current connection's TURN server said if it gave no relay candidate.
        self._path_index = 0
        self._relay_problem: RelayUnavailable | None = None

        self._form: FormViewPort = form or _NoFormView()
        self._default_origins = default_origins
        self._control: RemoteControl | None = None
        self._inputs: InputQueue | None = None
        # Shared with the form view's thread, which checks it at the moment of injection.
        self.consent = consent or ConsentGate()
        self._input_worker: asyncio.Task[None] | None = None

        self._document_ports = documents
        self._desk: DocumentDesk | None = None
        self._desk_closing: asyncio.Task[None] | None = None
        self._call_closing: asyncio.Task[None] | None = None
        self._unconfirmed: tuple[str, frozenset[str]] | None = (
            None  # the ended session's, for the reset check
        )
        self._unreported_expired: list[ExpiredDocument] = []
        # What the clerk sends to be shown and printed (core/printing.py): one desk per session.
        self._print_ports = printing
        self._print_desk: PrintDesk | None = None
        self._print_closing: asyncio.Task[None] | None = None
        self._printer_health: str | None = None  # after the last printing: "ok" or its error code
        # One sweep at a time (the expiry round's and the reset check's), and the reset check's finds
        # wake the round that reports them rather than waiting for the next one, minutes away.
        self._sweep_lock = asyncio.Lock()
        self._expired_found = asyncio.Event()

        self.staff = StaffAccess(time.monotonic)
        # The staff's live device check (the camera's picture, the microphone's level): one at a time,
        # never beside a call or a reset check, released when it ends (see staff_live_check).
        self._live = live_devices
        self._live_check_s = live_check_s
        self._live_lock = asyncio.Lock()
        self._live_on = False
        self._live_devices: dict[str, str] = {}
        self._live_deadline = 0.0
        self._live_watch: asyncio.Task[None] | None = None
        self._live_blocked = False  # a reset check is running: the devices must stay closed
        self._relay_probe = relay_probe
        self.preflight: PreflightResult | None = None
        self._preflighted: set[str] = set()
        self._run_history = RunHistory()
        # The reset check between citizens (core/reset_service.py): until one passes, no call is offered.
        store = documents.store if documents is not None else None
        self.reset = ResetService(
            central,
            cache,
            self._reset_changed,
            device_files=device_files or (lambda: []),
            outbox=store.inventory if store is not None else None,
            rng=self._rng,
            print_files=printing.renderer.leftovers if printing is not None else None,
        )
        self._ended_record: SessionRecord | None = None

        # What the kiosk's screen shows that only the UI knows (language, documents panel, zoom);
        # None for a kiosk without a screen, which then tells the clerk nothing about it.
        self._screen: ScreenFacts | None = None
        self._screen_sent: tuple[Call, str] | None = None  # the last kiosk.screen, and on which call
        # The call whose control channel is open (None between calls and after a drop), and the form
        # view's incident that no open channel has heard yet: a renderer may die while the call is
        # reconnecting, and the clerk must still hear of it on the next channel.
        self._control_open_on: Call | None = None
        self._incident_unsent: str | None = None

        self._tasks: set[asyncio.Task[None]] = set()
        self._wake_poll = asyncio.Event()
        self._heartbeat_due = asyncio.Event()
        self._heartbeat_s = heartbeat_s

        # Commands from IT staff (core/commands.py): one at a time, each id at most once.
        self._command_screen: KioskScreenPort | None = None
        self._commands_seen: dict[str, None] = {}  # insertion-ordered: the oldest are forgotten first
        self._command_lock = asyncio.Lock()

        # Staged updates (core/updates.py): the spool and the updater's status; None: not on a
        # terminal with an updater (tests, demo), where the target is only logged.
        self._updates = updates
        self._update_status: UpdateStatus | None = None
        self._update_task: asyncio.Task[None] | None = None
        self._window_up = False
        self._healthy_marked = False
        self._busy_told: str | None = ""  # "": not told yet
        self._download_again_at = 0.0  # after a failed download (monotonic): a rural link is not hammered

    # ----------------------------------------------------------------- lifecycle

    @property
    def session(self) -> Session:
        return self._session

    def call_stats(self) -> CallStats:
        """The current call's media counters (or the last call's, once it ended)."""
        return self._call.stats() if self._call is not None else self._stats

    @property
    def timing(self) -> Timing:
        timing = replace(
            self._local_timing,
            join_before=timedelta(seconds=self._config.join_before_s),
            no_show_after=timedelta(seconds=self._config.no_show_after_s),
        )
        if self._config.evaluation_url:  # the « Merci » screen shows a QR code: time to take a phone out
            timing = replace(timing, rating_thanks=max(timing.rating_thanks, EVALUATION_LINK_FOR))
        return timing

    def attach_screen(self, screen: ResetScreenPort) -> None:
        """The kiosk's window, for the screen's side of the reset check (before `run`)."""
        self.reset.screen = screen

    async def run(self) -> None:
        """Run until cancelled."""
        self._schedule = self._safe_load(self._cache.load_schedule)
        cached_config = self._safe_load(self._cache.load_remote_config)
        if cached_config is not None:
            self._config = cached_config
        self.reset.load()
        self._count_the_start()
        self._publish_state()
        # A restart wipes again and checks before any appointment: after a crash mid-session, and the
        # way staff bring a kiosk that failed its check back (until the staff panel has a button).
        self._spawn(self._verify_reset("start_up"))
        loops = [
            self._poll_loop,
            self._tick_loop,
            self._heartbeat_loop,
            self.reset.report_loop,
            self._preflight_loop,
        ]
        if self._document_ports is not None:
            loops.append(self._expiry_loop)
        try:
            async with asyncio.TaskGroup() as group:
                for loop in loops:
                    group.create_task(self._supervised(loop))
        finally:
            await self._shutdown()
            # Stopped cleanly (not killed, not crashed): this run does not count towards a crash loop.
            self._save_quietly(lambda: self._cache.save_run_history(on_clean_stop()))

    async def _supervised(self, loop: Callable[[], Awaitable[None]]) -> None:
        """A kiosk must not freeze on a bug: log it, wait a little, start the loop again."""
        backoff = Backoff(base_s=1.0, cap_s=30.0, rng=self._rng)
        while True:
            try:
                await loop()
            except Exception:
                log.exception("%s failed; restarting it", loop.__name__)
                await asyncio.sleep(backoff.next_delay())

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self._end_live_check("stopped")
        if self._call_task is not None:
            self._call_task.cancel()
        if self._call is not None:
            with contextlib.suppress(Exception):
                await self._call.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await self._central.aclose()

    def _count_the_start(self) -> None:
        history, looping = on_start(
            self._safe_load(self._cache.load_run_history) or RunHistory(), time.time()
        )
        self._save_quietly(lambda: self._cache.save_run_history(history))
        if looping:
            log.error(
                "%d unclean ends within %.0f min: out of service until the staff act",
                len(history.crashes),
                CRASH_WINDOW_S / 60,
            )
            self.reset.hold(OutOfService(time.time(), None, (CRASH_LOOP,)))

    @staticmethod
    def _save_quietly(save: Callable[[], None]) -> None:
        try:
            save()
        except OSError:
            log.exception("the local cache could not be written")

    @staticmethod
    def _safe_load[T](load: Callable[[], T | None]) -> T | None:
        try:
            return load()
        except Exception:
            log.exception("the local cache could not be read; starting without it")
            return None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ----------------------------------------------------------------- commands from the UI

    # ----------------------------------------------------------------- pre-flight

    async def _preflight_loop(self) -> None:
        while True:
            appointment = due(
                self._clock.now(), self._schedule, frozenset(self._done), frozenset(self._preflighted)
            )
            if appointment is not None and self._session.phase not in ACTIVE and not self.reset.checking:
                self._preflighted.add(appointment.id)
                self.preflight = await self._run_preflight(appointment)
                at_risk = self.preflight.at_risk
                if at_risk:
                    log.warning(
                        "appointment %s at risk: %s", appointment.id, "; ".join(self.preflight.problems)
                    )
                else:
                    log.info("pre-flight for %s: all clear", appointment.id)
                self._set_notice(Notice.APPOINTMENT_AT_RISK, at_risk)
                self._heartbeat_due.set()
                self._publish_state()
            await asyncio.sleep(self._preflight_every_s)

    async def _run_preflight(self, appointment: Appointment) -> PreflightResult:
        try:
            devices = {**self._calls.device_health(), **await self._calls.probe()}
        except Exception as exc:
            log.exception("pre-flight: the device probe failed")
            devices = {"camera": f"error: {type(exc).__name__}"}
        ports = self._document_ports
        if ports is None:
            devices["scanner"] = NOT_CONFIGURED
        else:
            try:
                devices["scanner"] = OK if await ports.scanner.devices() else "missing"
            except Exception as exc:
                devices["scanner"] = f"error: {type(exc).__name__}"
        central, uplink = OK, None
        try:
            self._config = await self._central.fetch_config()  # fresh TURN credentials too
            uplink = await self._central.measure_uplink(UPLINK_PROBE_BYTES)
        except CentralError as exc:
            central = f"unreachable ({type(exc).__name__})"
        relay = "not_checked"
        if self._relay_probe is not None:
            try:
                relay = await self._relay_probe.allocate(self._config.ice_servers)
            except Exception as exc:
                log.exception("pre-flight: the TURN check failed")
                relay = f"failed: {type(exc).__name__}"
        return PreflightResult(appointment.id, time.time(), devices, central, relay, uplink)

    # ----------------------------------------------------------------- the staff panel

    async def staff_unlock(self, pin: str) -> Attempt:
        early = self.staff.before_check(self._config.staff_pin_hash is not None)
        if early is not None:
            return early
        assert self._config.staff_pin_hash is not None
        matched = await asyncio.to_thread(pin_matches, pin, self._config.staff_pin_hash)  # ≈0.1 s of PBKDF2
        attempt = self.staff.record(matched)
        log.warning("staff panel: %s", attempt.verdict.value)  # who tried is not known; that it happened is
        return attempt

    async def staff_close(self) -> None:
        self.staff.close()
        await self._end_live_check("panel_closed")

    async def staff_touch(self) -> bool:
        """Someone uses the open panel; False once it has closed by itself."""
        self.staff.touch()
        return self.staff.is_open

    async def staff_status(self) -> StaffReport:
        return self.staff_report()

    def _staff_only(self, what: str) -> bool:
        if not self.staff.is_open:
            log.error("staff command refused, the panel is not open: %s", what)
            return False
        self.staff.touch()
        return True

    async def staff_walk_in(self, code: str) -> str | None:
        """Starts a walk-in session from the clerk's code: None once the appointment is in the
        schedule (the kiosk joins it as any other), else why not (the central's code, or
        "busy", "out_of_service", "central_unreachable", "malformed_code")."""
        if not self._staff_only("walk-in"):
            return "panel_closed"
        digits = "".join(code.split())
        if not (digits.isascii() and digits.isdigit() and len(digits) == WALK_IN_CODE_DIGITS):
            return "malformed_code"
        return await self._walk_in(partial(self._central.start_walk_in, digits))

    async def staff_walk_in_service(self, service: str) -> str | None:
        """Starts a walk-in session with the available clerk of `service` (one of
        staff_walk_in_services'): None once the appointment is in the schedule, else why not (the
        central's code: no_clerk_available, walk_in_service_unknown, too_many_attempts; or "busy",
        "out_of_service", "central_unreachable", "panel_closed")."""
        if not self._staff_only("walk-in with a service"):
            return "panel_closed"
        return await self._walk_in(partial(self._central.start_walk_in_with_service, service))

    async def staff_walk_in_services(self) -> WalkInServices:
        """The services with a clerk available now, for the walk-in page (which asks again every few
        seconds while it is open). Not a touch: the page left open still closes after the idle limit."""
        if not self.staff.is_open:
            return WalkInServices(problem="panel_closed")
        if self.reset.blocks_sessions:
            return WalkInServices(problem="out_of_service")
        try:
            return WalkInServices(await self._central.walk_in_services())
        except CentralError as exc:
            log.warning("walk-in services: the central is unreachable or refused: %s", exc)
            return WalkInServices(problem="central_unreachable")

    async def _walk_in(self, ask: Callable[[], Awaitable[Appointment]]) -> str | None:
        if self._session.phase in ACTIVE:
            return "busy"
        if self.reset.blocks_sessions:
            return "out_of_service"
        try:
            appointment = await ask()
        except CentralRejected as exc:
            log.warning("walk-in refused: %s", exc.code)
            return exc.code
        except CentralError as exc:
            log.warning("walk-in: the central is unreachable: %s", exc)
            return "central_unreachable"
        old = self._schedule or Schedule("", "", ())
        others = tuple(a for a in old.appointments if a.id != appointment.id)
        # No ETag: the next poll fetches the central's own schedule, which has it too.
        self._schedule = Schedule(old.kiosk_name, old.site_name, (*others, appointment), etag=None)
        log.info(
            "walk-in session %s with %s (%s)", appointment.id, appointment.clerk_name, appointment.service
        )
        self._wake_poll.set()
        self._step()
        return None

    async def staff_end_session(self) -> bool:
        if not self._staff_only("end session") or self._session.phase not in ACTIVE:
            return False
        self._set_session(ended_by_staff(self._session, self._clock.now()))
        return True

    async def staff_rejoin(self) -> bool:
        """A new connection for the current session (a frozen picture, a lost sound)."""
        if not self._staff_only("rejoin") or self._session.phase not in ACTIVE or self._lost is None:
            return False
        log.warning("staff asked for a new connection")
        self._lost.set()
        return True

    async def staff_out_of_service(self, out: bool) -> bool:
        if not self._staff_only("out of service" if out else "back in service"):
            return False
        if out:
            if self._session.phase in ACTIVE:
                self._set_session(ended_by_staff(self._session, self._clock.now()))
            self.reset.hold(OutOfService(time.time(), None, (STAFF_OUT_OF_SERVICE,)))
            self._save_quietly(lambda: self._cache.save_out_of_service(self.reset.out_of_service))
        else:
            # Back only through a reset check that passes: staff cannot wave a dirty kiosk through.
            self.reset.hold(None)
            self._save_quietly(lambda: self._cache.save_run_history(on_clean_stop()))
            await self._verify_reset("start_up")
        self._heartbeat_due.set()
        self._step()
        return True

    async def staff_device_check(self) -> StaffDeviceCheck:
        """Camera and microphone as the call would find them, and a test page from the scanner
        (75 dpi, shown to the staff, kept nowhere)."""
        if not self._staff_only("device check"):
            return StaffDeviceCheck({}, "panel_closed")
        try:
            health = {**self._calls.device_health(), **await self._calls.probe()}
        except Exception as exc:
            log.exception("the device probe failed")
            health = {"camera": f"error: {type(exc).__name__}"}
        ports = self._document_ports
        if ports is None:
            return StaffDeviceCheck(health, "not_configured")
        if self._desk is not None:
            return StaffDeviceCheck(health, "in_use")  # a citizen's session holds it
        pages: list[RawPage] = []
        try:
            if not await ports.scanner.devices():
                return StaffDeviceCheck(health, "missing")
            await ports.scanner.scan(ScanRequest(dpi=75), lambda page: pages.append(page))
            processed = await asyncio.to_thread(ports.processor.process, pages[0]) if pages else None
        except ScannerError as exc:
            return StaffDeviceCheck(health, f"error: {exc}")
        except Exception as exc:
            log.exception("the scanner test failed")
            return StaffDeviceCheck(health, f"error: {type(exc).__name__}")
        if processed is None:
            return StaffDeviceCheck(health, "blank_page" if pages else "no_page")
        return StaffDeviceCheck(health, "ok", processed.preview)

    async def staff_live_check(self) -> LiveCheck:
        """Opens the camera and the microphone a call would use, for the staff panel's device check:
        the picture and the level go to the panel (never stored) until staff_stop_live_check, the
        panel closes, a session or a reset check needs the devices, or `live_check_s` passes; then
        both are released and LiveCheckEnded is published. Asked again while running: a fresh limit."""
        if not self._staff_only("live device check"):
            return LiveCheck({}, "panel_closed")
        if self._live is None:
            return LiveCheck({}, "unavailable")
        async with self._live_lock:
            if self._session.phase in (*ACTIVE, Phase.ENDED) or self.reset.checking or self._live_blocked:
                return LiveCheck({}, "in_use")
            if self._live_on:
                self._live_deadline = time.monotonic() + self._live_check_s
                return LiveCheck(dict(self._live_devices), None, self._live_check_s)
            try:
                devices = await self._live.start()
            except Exception as exc:
                log.exception("the live device check could not start")
                with contextlib.suppress(Exception):
                    await self._live.stop()
                return LiveCheck({"camera": f"error: {type(exc).__name__}"}, "failed")
            self._live_on = True
            self._live_devices = dict(devices)
            self._live_deadline = time.monotonic() + self._live_check_s
            self._live_watch = self._spawn(self._watch_live_check())
            log.info("live device check started: %s", devices)
            return LiveCheck(dict(devices), None, self._live_check_s)

    async def staff_stop_live_check(self) -> None:
        """The device check page closed: camera and microphone released."""
        await self._end_live_check("stopped")

    @property
    def live_check_running(self) -> bool:
        return self._live_on

    async def _watch_live_check(self) -> None:
        while True:
            if not self.staff.is_open:  # closed by itself, nobody touching it
                reason = "panel_closed"
                break
            left = self._live_deadline - time.monotonic()
            if left <= 0:
                reason = "time_limit"
                break
            await asyncio.sleep(min(left, 0.5))
        await self._end_live_check(reason)

    async def _end_live_check(self, reason: str) -> None:
        if self._live is None:
            return
        async with self._live_lock:  # waits for a start under way, then stops what it started
            if not self._live_on or self._live is None:
                return
            self._live_on = False
            self._live_devices = {}
            watch, self._live_watch = self._live_watch, None
            if watch is not None and watch is not asyncio.current_task():
                watch.cancel()
            try:
                await self._live.stop()
            except Exception:
                log.exception("the live device check did not stop cleanly")
            log.info("live device check stopped (%s): camera and microphone released", reason)
            self._publish(LiveCheckEnded(reason))

    def staff_report(self) -> StaffReport:
        return StaffReport(
            software_version=self._version,
            central_reachable=self._central_ok,
            pin_configured=self._config.staff_pin_hash is not None,
            devices=self._calls.device_health(),
            notices=tuple(sorted(n.value for n in self._notices)),
            out_of_service=self.reset.out_of_service.failed_checks if self.reset.out_of_service else (),
            crashes=len(self._run_history.crashes),
            preflight=self.preflight.problems if self.preflight is not None else None,
        )

    async def rate_session(self, face: int | None) -> None:
        """The citizen's one touch on the ended screen: a face (1 very bad … 5 very good) or « Passer »
        (None). Anything else, or a second touch, changes nothing."""
        self._set_session(rated(self._session, face, self._clock.now()))

    async def citizen_hang_up(self) -> None:
        self._set_session(hung_up(self._session, by_clerk=False, now=self._clock.now()))

    async def set_microphone(self, on: bool) -> None:
        self._mic_on = on
        if self._call is not None:
            self._call.set_microphone_enabled(on)
        self._publish_state()

    async def set_camera(self, on: bool) -> None:
        self._cam_on = on
        if self._call is not None:
            self._call.set_camera_enabled(on)
        self._publish_state()

    async def change_volume(self, steps: int) -> None:
        """« Son + » / « Son − »: the clerk's voice louder or softer, for this session only."""
        self._volume = clamp_level(self._volume + steps)
        if self._call is not None:
            self._call.set_speaker_gain(gain(self._volume))
        self._publish_state()

    async def refresh_now(self) -> None:
        self._wake_poll.set()

    async def answer_control(self, accept: bool) -> None:
        """The citizen's (or animateur's) answer, from a touch on the kiosk: never from the network."""
        if self._control is not None:
            self._run(self._control.citizen_answer(accept))

    async def take_back_control(self) -> None:
        if self._control is not None:
            self._run(self._control.citizen_takes_back())

    async def form_page_changed(self, url: str, title: str, width: int, height: int) -> None:
        if self._control is not None:
            self._run(self._control.page_changed(url, title, width, height))

    async def form_view_resized(self, width: int, height: int) -> None:
        if self._control is not None:
            self._run(self._control.view_resized(width, height))

    async def form_refused(self, what: str, detail: str) -> None:
        if self._control is not None and what in ("navigation", "popup", "download"):
            self._control.navigation_refused(what, detail)

    async def form_page_incident(self, cause: str, outcome: str, attempts: int) -> None:
        """The form view's page died or stayed blank and was reloaded (`reloaded`), or the form view
        gave up after `attempts` reloads (`failed`): the clerk is told on the control channel (a
        `form.incident`), now or as soon as a control channel is open again."""
        control = self._control
        if control is None:
            return
        for effect in control.page_incident(cause, outcome, attempts):
            if not isinstance(effect, SendToClerk):
                continue
            call = self._call
            if call is not None and self._control_open_on is call:
                call.send_control(effect.text)
                self._incident_unsent = None
            else:
                self._incident_unsent = effect.text  # only the latest: it says how things stand now

    async def screen_shown(self, language: str, documents_open: bool, zoom: float) -> None:
        """What the UI shows now (sent by it on every change): the clerk's console shows it in words."""
        self._screen = ScreenFacts(language, documents_open, zoom)
        self._send_screen()

    def _send_screen(self) -> None:
        """kiosk.screen on the control channel, whenever what the citizen sees changed (and once when
        the channel opens). States and a count only: never an address, a field or a name."""
        call, facts = self._call, self._screen
        if call is None or facts is None or self._control is None or self._session.phase is not Phase.IN_CALL:
            return
        desk = self._desk.state if self._desk is not None else None
        if desk is not None and desk.scanner == "scanning":
            documents = "scanning"
        elif desk is not None and any(t.status is TransferStatus.SENDING for t in desk.transfers):
            documents = "sending"
        else:
            documents = "open" if facts.documents_open else "closed"
        try:
            text = kiosk_screen(
                documents=documents,
                pages=len(desk.pages) if desk is not None else 0,
                language=facts.language,
                zoom=facts.zoom,
                microphone=self._mic_on,
                camera=self._cam_on,
            )
        except ValueError:
            log.exception("the kiosk's screen could not be described")
            return
        if self._screen_sent == (call, text):
            return
        self._screen_sent = (call, text)
        call.send_control(text)

    async def scan_document(self, source: str = "flatbed", colour: bool = True) -> bool:
        """The citizen or the animateur starts a scan (pages are added to the session's desk)."""
        if self._desk is None:
            return False
        try:
            chosen = ScanSource(source)
        except ValueError:
            return False
        return self._desk.scan(chosen, colour)

    async def remove_page(self, number: int) -> None:
        if self._desk is not None:
            self._desk.remove_page(number)

    async def clear_pages(self) -> None:
        if self._desk is not None:
            self._desk.clear_pages()

    async def send_document(self, name: str | None = None) -> bool:
        """The citizen touched "send to the clerk": one PDF of the pages, into the outbox, then out."""
        if self._desk is None:
            return False
        return await self._desk.send(name) is not None

    async def print_document(self) -> bool:
        """The citizen touched « Imprimer » on the document the clerk sent."""
        return self._print_desk is not None and self._print_desk.print()

    async def close_print(self) -> None:
        """The citizen touched « Fermer »: the clerk's document goes, from the screen and from memory."""
        if self._print_desk is not None:
            self._print_desk.close()

    def _start_printing(self) -> None:
        if self._print_ports is not None and self._print_desk is None:
            self._print_desk = PrintDesk(
                self._print_ports, lambda state: self._publish_state(), self._printer_outcome
            )

    def _printer_outcome(self, error: str | None) -> None:
        """The staff and the central hear of a printer that failed a citizen, until it prints again."""
        self._printer_health = error or "ok"
        self._set_notice(Notice.PRINTER_PROBLEM, error is not None)
        self._heartbeat_due.set()
        self._publish_state()

    def _devices(self) -> dict[str, str]:
        devices = self._calls.device_health()
        if self._printer_health is not None:
            devices = {**devices, "printer": self._printer_health}
        return devices

    def _end_printing(self) -> None:
        desk, self._print_desk = self._print_desk, None
        if desk is not None:
            self._print_closing = self._spawn(desk.end())

    # ----------------------------------------------------------------- the session's papers

    def _start_documents(self, appointment: Appointment) -> None:
        ports = self._document_ports
        if ports is None or self._desk is not None:
            return
        try:
            self._desk = DocumentDesk(
                appointment.id,
                ports.scanner,
                ports.processor,
                ports.store,
                lambda state: self._publish_state(),
                lambda name, data: self._publish(SessionDocument(name, data)),
                dpi=ports.dpi,
                camera=ports.camera,
            )
        except Exception:
            log.exception("the documents desk could not start; scanning is off for this session")
            self._desk = None

    def _end_documents(self, appointment_id: str) -> None:
        desk, self._desk = self._desk, None
        self._unconfirmed = None
        if desk is not None:
            unconfirmed = desk.unconfirmed()
            if unconfirmed:
                log.warning("%d document(s) not confirmed by the clerk stay in the outbox", len(unconfirmed))
            self._unconfirmed = (appointment_id, frozenset(m.id for m in unconfirmed))
            self._desk_closing = self._spawn(desk.close())

    async def _expiry_loop(self) -> None:
        """Documents never confirmed are destroyed after their retention, and the central is told
        (a report that cannot go now is tried again next round)."""
        assert self._document_ports is not None
        while True:
            self._expired_found.clear()
            try:
                await self._sweep_outbox()
            except Exception:
                log.exception("the outbox sweep failed")
            await self._report_expired()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._expired_found.wait(), self._document_ports.sweep_every_s)

    async def _sweep_outbox(self) -> None:
        assert self._document_ports is not None
        async with self._sweep_lock:
            found = await asyncio.to_thread(self._document_ports.store.expire)
        if found:
            self._unreported_expired += found
            self._expired_found.set()

    async def _report_expired(self) -> None:
        for expired in list(self._unreported_expired):
            log.warning("document %s destroyed unconfirmed (%s)", expired.document_id, expired.reason)
            try:
                await self._central.report_document_expired(expired)
            except CentralError as exc:
                log.warning("could not report the destroyed document yet: %s", exc)
                return
            self._unreported_expired.remove(expired)

    # ----------------------------------------------------------------- remote control of the form view

    def _start_control(self, appointment: Appointment) -> None:
        if self._control is not None and self._control.audit.appointment_id == appointment.id:
            return  # a reconnect within the same session keeps the citizen's consent state
        policy = NavigationPolicy((*appointment.allowed_origins, *self._default_origins))
        self._control = RemoteControl(
            appointment.id, appointment.clerk_name, appointment.service, policy, self._clock.now
        )
        self.consent.close()
        self._inputs = InputQueue()
        self._input_worker = asyncio.get_running_loop().create_task(
            self._apply_inputs(self._control, self._inputs)
        )

    def _end_control(self) -> dict[str, object] | None:
        control, self._control = self._control, None
        if control is not None:  # one answer per clerk message, even at the end
            self._drop_waiting_inputs(control, "the session ended")
        if self._input_worker is not None:
            self._input_worker.cancel()
            self._input_worker = None
        self._inputs = None
        self.consent.close()
        if control is None:
            return None
        self._run_with(control, control.end())
        audit = control.audit.to_json()
        log.info("remote-control audit: %s", audit)
        return audit

    def _run(self, effects: list[Effect]) -> None:
        if self._control is not None:
            self._run_with(self._control, effects)

    def _run_with(self, control: RemoteControl, effects: list[Effect]) -> None:
        changed = False
        for effect in effects:
            if isinstance(effect, SendToClerk):
                if self._call is not None:
                    self._call.send_control(effect.text)
            elif isinstance(effect, ApplyInput):
                if self._inputs is not None:
                    self._queue_input(control, self._inputs, effect.message)
            elif isinstance(effect, ControlChanged):
                changed = True
                if effect.state is ControlState.GRANTED:
                    self.consent.open()
                else:
                    self.consent.close()
                    self._drop_waiting_inputs(control)
            elif isinstance(effect, AskCitizen):
                changed = True
        if changed:
            self._publish_state()

    def _queue_input(self, control: RemoteControl, inputs: InputQueue, message: InputMessage) -> None:
        merged, refused = inputs.put(QueuedInput(message, self.consent.epoch))
        for item in merged:  # superseded by a newer position: the pointer ends where the clerk put it
            self._run_with(control, control.input_applied(item.message))
        for item in refused:
            self._run_with(
                control, control.input_refused(item.message, "busy", "too many inputs are waiting")
            )

    def _drop_waiting_inputs(
        self, control: RemoteControl, why: str = "the citizen took control back"
    ) -> None:
        if self._inputs is None:
            return
        for item in self._inputs.drain():
            self._run_with(control, control.input_refused(item.message, "not_granted", why))

    async def _apply_inputs(self, control: RemoteControl, inputs: InputQueue) -> None:
        """One input at a time, in the order the clerk sent them."""
        gate = self.consent
        while True:
            item = await inputs.get()
            message, epoch = item.message, item.epoch
            if not gate.admits(epoch):
                # Taken back while this input waited: it must not reach the page.
                self._run_with(
                    control, control.input_refused(message, "not_granted", "the citizen took control back")
                )
                continue
            try:
                outcome = await asyncio.wait_for(self._form.apply(message, partial(gate.admits, epoch)), 5.0)
            except TimeoutError:
                outcome = InputOutcome("timeout", "the form view did not respond")
            if outcome.code is None:
                self._run_with(control, control.input_applied(message))
            else:
                self._run_with(control, control.input_refused(message, outcome.code, outcome.reason))

    # ----------------------------------------------------------------- schedule polling

    async def _poll_loop(self) -> None:
        backoff = Backoff(base_s=2.0, cap_s=120.0, rng=self._rng)
        while True:
            delay: float | None = None  # None: the (possibly just fetched) config's interval
            try:
                now_m = time.monotonic()
                if self._config_fetched_at is None or now_m - self._config_fetched_at > CONFIG_REFRESH_S:
                    self._config = await self._central.fetch_config()
                    self._config_fetched_at = now_m
                    self._cache.save_remote_config(self._config)
                    target = self._config.software_target
                    if target is not None and self._version and target != self._version:
                        log.warning(
                            "IT staff want software %s here; this kiosk runs %s", target, self._version
                        )
                schedule = await self._central.fetch_schedule(self._schedule.etag if self._schedule else None)
                if schedule is not None:
                    self._accept_schedule(schedule)
                self._central_ok = True
                self._mark_healthy_once()
                self._consider_update()
                self.reset.central_is_back()  # the session reports that waited for it
                self._notices -= {Notice.CENTRAL_UNREACHABLE, Notice.NOT_ENROLLED, Notice.SCHEDULE_UNREADABLE}
                backoff.reset()
            except AuthenticationFailed as exc:
                log.error("the central refused this kiosk's token: %s", exc)
                self._central_ok = False
                self._notices.add(Notice.NOT_ENROLLED)
                delay = backoff.next_delay()
            except MalformedResponse as exc:
                log.error(
                    "the central sent an unreadable schedule or config; keeping the last good one: %s", exc
                )
                self._notices.add(Notice.SCHEDULE_UNREADABLE)
                delay = backoff.next_delay()
            except CentralError as exc:
                log.warning("central unreachable, keeping the last good schedule: %s", exc)
                self._central_ok = False
                self._notices.add(Notice.CENTRAL_UNREACHABLE)
                delay = backoff.next_delay()
            except OSError:
                log.exception("the local cache could not be written")
            self._publish_state()
            self._wake_poll.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_poll.wait(), timeout=delay or self._config.poll_interval_s)

    def _accept_schedule(self, schedule: Schedule) -> None:
        for ident, reason in schedule.rejected:
            log.error("appointment %s set aside: %s", ident, reason)
        if schedule.rejected:
            self._notices.add(Notice.APPOINTMENTS_SKIPPED)
        else:
            self._notices.discard(Notice.APPOINTMENTS_SKIPPED)
        self._schedule = schedule
        self._cache.save_schedule(schedule)
        self._step()

    # ----------------------------------------------------------------- the clock tick

    async def _tick_loop(self) -> None:
        while True:
            self._step()
            self._tell_updater_if_busy()
            await asyncio.sleep(self._tick_s)

    def _step(self) -> None:
        if self._session.phase is Phase.IDLE and self.reset.blocks_sessions:
            # Checking, or out of service: no appointment starts, no call is offered.
            self._publish_state()
            return
        self._set_session(
            advance(self._session, self._clock.now(), self._schedule, frozenset(self._done), self.timing)
        )
        self._publish_state()

    # ----------------------------------------------------------------- session effects

    def _set_session(self, new: Session) -> None:
        old = self._session
        if new == old:
            return
        self._session = new
        log.info(
            "session: %s → %s (%s)", old.phase, new.phase, new.appointment.id if new.appointment else "-"
        )
        if new.phase is Phase.WAITING_FOR_CLERK and old.phase not in ACTIVE:
            assert new.appointment is not None
            self._start_call(new.appointment)
        elif new.phase is Phase.ENDED and old.phase in ACTIVE:
            self._finish_call(new)
        if new.phase is Phase.IN_CALL and new.appointment is not None:
            self._start_control(new.appointment)
        elif new.phase is Phase.IDLE and old.phase is Phase.ENDED:
            record = self._ended_record
            if (
                record is not None
                and old.rating is not None
                and old.appointment is not None
                and (record.appointment_id == old.appointment.id)
            ):
                # The citizen's one touch (or none) goes with the session's report; nothing else of it.
                self._ended_record = replace(record, citizen_rating=old.rating.wire_value())
            self._forget_session()
        self._heartbeat_due.set()
        self._publish_state()

    def _start_call(self, appointment: Appointment) -> None:
        self._start_documents(appointment)
        self._start_printing()
        self._offer_posted_at = None
        self._answer_at = None
        self._first_answer_at = None
        self._connections = 0
        self._stats = CallStats()
        self._path_index = 0  # every session starts with the most direct path
        self._call_task = asyncio.get_running_loop().create_task(self._call_loop(appointment))

    def _finish_call(self, ended: Session) -> None:
        assert ended.appointment is not None and ended.end_reason is not None
        self._done.add(ended.appointment.id)
        call, ticket, task = self._call, self._call_ticket, self._call_task
        if call is not None:
            self._stats = call.stats()
        audit = self._end_control()  # before the call closes, so the clerk hears that control ended
        if self._desk is not None and self._desk.refused:
            audit = {**(audit or {}), "documents_refused": self._desk.refused}
        documents_sent = (
            sum(t.status is TransferStatus.RECEIVED for t in self._desk.state.transfers)
            if self._desk is not None
            else 0
        )
        if self._print_desk is not None and self._print_desk.refused:
            audit = {**(audit or {}), "print_refused": dict(self._print_desk.refused)}
        self._end_documents(ended.appointment.id)
        self._end_printing()
        self._call = None
        self._call_ticket = None
        self._call_task = None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._call_closing = self._spawn(self._close_call(call))
        self._spawn(self._tear_down(ended.appointment.id, self._call_closing, ticket, ended.end_reason))
        self._ended_record = self._record(ended, audit, documents_sent)
        self._publish(SessionFinished(self._ended_record))

    def _record(
        self, ended: Session, audit: dict[str, object] | None = None, documents_sent: int = 0
    ) -> SessionRecord:
        assert ended.appointment is not None and ended.end_reason is not None
        s = self._stats
        return SessionRecord(
            appointment_id=ended.appointment.id,
            scheduled_start=ended.appointment.start,
            offer_posted_at=self._offer_posted_at,
            answer_received_at=self._answer_at,
            first_remote_video_at=s.first_remote_video_at,
            first_remote_audio_at=s.first_remote_audio_at,
            remote_video_frames=s.remote_video_frames,
            remote_audio_frames=s.remote_audio_frames,
            local_video_frames_sent=s.local_video_frames_sent,
            end_reason=ended.end_reason,
            ended_at=time.time(),
            control_audit=audit,
            first_answer_at=self._first_answer_at,
            connections=self._connections,
            documents_sent=documents_sent,
            control_used=_control_used(audit),
        )

    async def _close_call(self, call: Call | None) -> None:
        if call is not None:
            try:
                await call.close()
            except Exception:
                log.exception("closing the call failed")

    async def _tear_down(
        self, appointment_id: str, closing: asyncio.Task[None], ticket: CallTicket | None, reason: EndReason
    ) -> None:
        await asyncio.shield(closing)  # the call closes first, as the clerk's side expects
        if ticket is None or reason is EndReason.CLERK_HUNG_UP:
            return
        # Tell the clerk's side; a few tries, then give up (the central also expires calls).
        for attempt in range(3):
            try:
                await self._central.hang_up(appointment_id, ticket.call_id, reason.value)
                return
            except CentralError as exc:
                log.warning("could not tell the central about the hang-up (try %d): %s", attempt + 1, exc)
                await asyncio.sleep(1.0 + attempt)

    def _forget_session(self) -> None:
        """Back to a clean idle screen: nothing of this citizen's session stays in the engine."""
        self._mic_on = True
        self._cam_on = True
        self._volume = DEFAULT_LEVEL  # the next citizen hears the clerk at the kiosk's own loudness
        self._media_flowing = False
        self._offer_posted_at = None
        self._answer_at = None
        self._first_answer_at = None
        self._connections = 0
        self._stats = CallStats()
        self._incident_unsent = None  # the last citizen's page: not for the next clerk
        self._notices -= {Notice.CALL_SETUP_FAILING, Notice.RELAY_UNREACHABLE, Notice.RELAY_REFUSED}
        self.reset.checking = True  # from this instant: no next appointment before the check passed
        self._spawn(self._verify_reset("session_end"))

    # ----------------------------------------------------------------- the reset check between citizens

    async def _verify_reset(self, trigger: Trigger) -> None:
        # The check finds no device file open: the staff's live check is closed and kept closed.
        self._live_blocked = True
        try:
            await self._end_live_check("reset")
            await self._verify_reset_now(trigger)
        finally:
            self._live_blocked = False

    async def _verify_reset_now(self, trigger: Trigger) -> None:
        record, self._ended_record = self._ended_record, None
        # Torn down first: the call closed, the desk's pages dropped, expired documents swept (and
        # queued for the central) — so the check judges the kiosk as the next citizen would find it.
        for waiting in (self._desk_closing, self._call_closing, self._print_closing):
            if waiting is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(waiting), timeout=10.0)
        if self._print_ports is not None and trigger == "start_up":
            # A crash may have left a document being read: a restart removes it, the check proves it.
            await asyncio.to_thread(self._print_ports.renderer.wipe)
        if self._document_ports is not None:
            try:
                await self._sweep_outbox()
            except Exception:
                log.exception("the outbox sweep before the reset check failed")
        ended = self._unconfirmed
        facts = EngineFacts(
            call_open=self._call is not None or self._call_task is not None,
            volume=self._volume,
            default_volume=DEFAULT_LEVEL,
            desk_open=self._desk is not None,
            print_open=self._print_desk is not None,
            appointment_id=record.appointment_id if record is not None else None,
            unconfirmed=ended[1]
            if ended is not None and self._same_session(record, ended[0])
            else frozenset(),
        )
        try:
            await self.reset.verify(trigger, record, facts)
        except Exception:
            # A bug in the check itself: unproven is not clean.
            log.exception("the reset check could not run; staying out of service")
            failed = OutOfService(time.time(), facts.appointment_id, ("reset_check",))
            self.reset.out_of_service = self.reset.out_of_service or failed
            self.reset.checking = False
            self._reset_changed()
        self._step()

    @staticmethod
    def _same_session(record: SessionRecord | None, appointment_id: str) -> bool:
        return record is not None and record.appointment_id == appointment_id

    def _reset_changed(self) -> None:
        self._heartbeat_due.set()
        self._publish_state()

    # ----------------------------------------------------------------- the call and its signalling

    def _on_call_event(self, event: CallEvent) -> None:
        match event:
            case CallConnected(route=route):
                log.info("call connected (%s)", route or "route unknown")
            case RelayUnavailable() as problem:
                self._relay_problem = problem
            case RemoteMediaStarted(kind=kind):
                log.info("remote %s is flowing", kind)
                self._media_flowing = True
                self._publish_state()
            case CallConnectionLost(detail=detail):
                log.warning("call connection lost: %s", detail)
                self._control_open_on = None
                if self._control is not None:
                    self._run(self._control.connection_lost())
                if self._desk is not None:
                    self._desk.detach()
                if self._print_desk is not None:
                    self._print_desk.detach()
                if self._lost is not None:
                    self._lost.set()
            case DocumentsChannelOpened(link=link):
                if self._desk is not None:
                    self._desk.attach(link)
                if self._print_desk is not None:
                    self._print_desk.attach(link)
            case DocumentsChannelClosed(link=link):
                if self._desk is not None:
                    self._desk.detach(link)
                if self._print_desk is not None:
                    self._print_desk.detach(link)
            case DocumentsMessageReceived(raw=raw) if self._print_desk is not None and is_print_message(raw):
                self._print_desk.on_message(raw)  # answers print.status / print.error itself
            case DocumentsMessageReceived(raw=raw):
                if self._desk is not None:
                    self._desk.on_message(raw)  # contains its own failures, answering doc.error
            case ControlChannelOpened():
                self._control_open_on = self._call
                if self._control is not None and self._call is not None:
                    self._call.send_control(self._control.state_message())
                    self._screen_sent = None  # a new channel: tell it what the screen shows
                    self._send_screen()
                    if self._incident_unsent is not None:
                        self._call.send_control(self._incident_unsent)
                        self._incident_unsent = None
            case ControlMessageReceived(raw=raw):
                self._on_control_message(raw)

    def _on_control_message(self, raw: str | bytes) -> None:
        # Runs inside the call's receive path: whatever goes wrong is answered and counted here, never
        # raised into the channel (that would end the citizen's call).
        try:
            if self._control is not None:
                self._run(self._control.receive(raw))
            elif self._call is not None:
                self._call.send_control(control_error("not_in_session", "no session is in progress", None))
        except Exception:
            log.exception("a control message could not be handled")
            if self._control is not None:
                self._control.audit.count_refusal("internal_error", "message")
            if self._call is not None:
                with contextlib.suppress(Exception):
                    self._call.send_control(
                        control_error("internal_error", "the kiosk could not handle this message", None)
                    )

    async def _call_loop(self, appointment: Appointment) -> None:
        await self._end_live_check("session")  # the call opens the camera and the microphone itself
        backoff = self._live_backoff()
        while True:
            lost = asyncio.Event()
            self._lost = lost
            await self._refresh_config_for_call()
            paths = ice_paths(self._config.ice_servers)
            path = paths[self._path_index % len(paths)]
            self._relay_problem = None
            log.info(
                "connecting: path %d of %d, %s",
                self._path_index % len(paths) + 1,
                len(paths),
                path.describe(),
            )
            call = self._calls.new_call(path.servers, self._on_call_event)
            self._call = call
            call.set_microphone_enabled(self._mic_on)
            call.set_camera_enabled(self._cam_on)
            call.set_speaker_gain(gain(self._volume))
            outcome: Literal["ended", "retry"] = "retry"
            try:
                offer = await call.create_offer()
                if self._relay_unusable(path, paths):
                    # No relay on this path and another one left: try it now, before any clerk answers
                    # an offer that could only connect directly.
                    self._path_index += 1
                    self._call = None
                    with contextlib.suppress(Exception):
                        await call.close()
                    continue
                ticket = await self._retrying(partial(self._central.post_offer, appointment.id, offer))
                self._call_ticket = ticket
                if self._offer_posted_at is None:
                    self._offer_posted_at = time.time()
                log.info("offer posted for %s (call %s)", appointment.id, ticket.call_id)
                outcome = await self._follow_signal(appointment, call, ticket, lost)
                self._notices.discard(Notice.CALL_SETUP_FAILING)
            except CallError as exc:
                log.error("call setup failed: %s", exc)
                self._notices.add(Notice.CALL_SETUP_FAILING)
                self._publish_state()
            except CentralRejected as exc:
                if isinstance(exc, AuthenticationFailed):
                    log.error("the central refused this kiosk's token during the call: %s", exc)
                    self._notices.add(Notice.NOT_ENROLLED)
                    self._publish_state()
                elif exc.code == "appointment_finished":
                    # Hung up earlier (before a restart of this kiosk): offering again would only keep
                    # the citizen's screen waiting for a clerk who will never come.
                    log.info("appointment %s has already finished; not calling again", appointment.id)
                    self._set_session(finished_earlier(self._session, self._clock.now()))
                    return
                else:
                    log.warning("signalling refused, offering again: %s", exc)
            except CentralError as exc:
                log.warning("signalling failed, offering again: %s", exc)
            except Exception:
                # Whatever went wrong, the citizen is still waiting: start over with a new connection.
                log.exception("the call failed unexpectedly; offering again")
                self._notices.add(Notice.CALL_SETUP_FAILING)
                self._publish_state()
            if outcome == "ended":
                return
            if lost.is_set() and call.stats().connected_at is None and len(paths) > 1:
                # ICE failed on this path: the next connection tries the next one (after the last, the
                # first again: networks change, and a relay that failed may be back).
                self._path_index = (self._path_index + 1) % len(paths)
                log.warning(
                    "could not connect with %s; next: %s",
                    path.describe(),
                    paths[self._path_index].describe(),
                )
            self._stats = call.stats()
            self._media_flowing = False
            self._call = None
            with contextlib.suppress(Exception):
                await call.close()
            await asyncio.sleep(backoff.next_delay())

    def _live_backoff(self) -> Backoff:
        """While an appointment is live a citizen is waiting: a new call within a second or so of the
        central answering again (at most about one request a second from each kiosk in a call)."""
        return Backoff(base_s=LIVE_RETRY_BASE_S, cap_s=LIVE_RETRY_CAP_S, rng=self._rng)

    async def _refresh_config_for_call(self) -> None:
        """The config again right before connecting: its TURN credential is made for this call (it
        expires, see the central's openapi.yaml). The last one is kept if the central is slow or down."""
        try:
            async with asyncio.timeout(CONFIG_BEFORE_CALL_S):
                config = await self._central.fetch_config()
        except (CentralError, TimeoutError) as exc:
            log.warning("config not refreshed before the call, using the last one: %s", exc)
            return
        self._config = config
        self._config_fetched_at = time.monotonic()
        try:
            self._cache.save_remote_config(config)
        except OSError:
            log.exception("the local cache could not be written")

    def _relay_unusable(self, path: IcePath, paths: tuple[IcePath, ...]) -> bool:
        """After gathering: tell the staff when the TURN server gave no relay, and whether to skip to
        the next path at once (it was unreachable and another transport is left; refused credentials
        would be refused on every transport, so the offer goes on with the direct candidates)."""
        problem = self._relay_problem
        self._set_notice(Notice.RELAY_UNREACHABLE, problem is not None and not problem.refused)
        self._set_notice(Notice.RELAY_REFUSED, problem is not None and problem.refused)
        self._publish_state()
        if problem is None:
            return False
        if problem.refused:
            log.error(
                "the TURN server %s refused the kiosk's credentials (%s): check that the central's TURN "
                "secret is coturn's static-auth-secret and that both clocks are right; offering with "
                "direct candidates only",
                problem.url,
                problem.detail,
            )
            return False
        if self._path_index % len(paths) + 1 < len(paths):
            log.warning("%s gave no relay (%s); trying the next path now", path.describe(), problem.detail)
            return True
        log.warning(
            "%s gave no relay (%s); offering with direct candidates only", path.describe(), problem.detail
        )
        return False

    async def _retrying[T](self, request: Callable[[], Awaitable[T]]) -> T:
        backoff = self._live_backoff()
        while True:
            try:
                return await request()
            except (CentralUnavailable, MalformedResponse) as exc:
                log.warning("signalling request failed, retrying: %s", exc)
                await asyncio.sleep(backoff.next_delay())

    async def _follow_signal(
        self, appointment: Appointment, call: Call, ticket: CallTicket, lost: asyncio.Event
    ) -> Literal["ended", "retry"]:
        version = ticket.version
        answered = False
        backoff = self._live_backoff()
        lost_wait = asyncio.ensure_future(lost.wait())
        poll: asyncio.Future[CallSignal | None] | None = None
        try:
            while True:
                poll = asyncio.ensure_future(self._central.wait_call(appointment.id, version, LONG_POLL_S))
                await asyncio.wait({poll, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
                if lost_wait.done():
                    # A hang-up often closes the peer connection a moment before the signal arrives:
                    # give signalling a short grace period to explain the loss before reconnecting.
                    await asyncio.wait({poll}, timeout=HANG_UP_GRACE_S)
                    explained = poll.done() and not poll.cancelled() and poll.exception() is None
                    signal = poll.result() if explained else None
                    poll.cancel()
                    if signal is not None and signal.ended and signal.call_id == ticket.call_id:
                        by_clerk = signal.ended_by != "kiosk"
                        self._set_session(hung_up(self._session, by_clerk=by_clerk, now=self._clock.now()))
                        return "ended"
                    self._set_session(call_dropped(self._session, self._clock.now()))
                    return "retry" if self._session.phase is Phase.WAITING_FOR_CLERK else "ended"
                try:
                    signal = poll.result()
                except AuthenticationFailed:
                    raise
                except CentralError as exc:
                    log.warning("waiting for the clerk: central error, retrying: %s", exc)
                    await asyncio.sleep(backoff.next_delay())
                    continue
                backoff.reset()
                if signal is None:
                    continue
                version = signal.version
                if signal.call_id != ticket.call_id:
                    log.warning(
                        "the central holds another call (%s) for this appointment; offering again",
                        signal.call_id,
                    )
                    return "retry"
                if signal.ended:
                    by_clerk = signal.ended_by != "kiosk"
                    self._set_session(hung_up(self._session, by_clerk=by_clerk, now=self._clock.now()))
                    return "ended"
                if signal.answer is not None and not answered:
                    await call.accept_answer(signal.answer)
                    answered = True
                    self._answer_at = time.time()
                    self._first_answer_at = self._first_answer_at or self._answer_at
                    self._connections += 1
                    self._set_session(clerk_answered(self._session))
        finally:
            lost_wait.cancel()
            # Cancelled from outside (the call ended another way, the kiosk stops): the long poll
            # must not outlive it, holding a connection and failing unheard once the central goes.
            if poll is not None:
                poll.cancel()

    # ----------------------------------------------------------------- commands from IT staff

    def attach_command_screen(self, screen: KioskScreenPort) -> None:
        """The kiosk's window, for IT staff's screenshot, reload and restart commands (before `run`)."""
        self._command_screen = screen

    def _receive_commands(self, commands: tuple[KioskCommand, ...]) -> None:
        heard_at = self._clock.monotonic()
        for command in commands:
            if command.id in self._commands_seen:
                log.warning("command %s (%s) heard again: it runs only once", command.id, command.label)
                continue
            self._commands_seen[command.id] = None
            while len(self._commands_seen) > COMMAND_IDS_KEPT:
                del self._commands_seen[next(iter(self._commands_seen))]
            self._spawn(self._run_command(command, heard_at + command.expires_in_s))

    def _command_refusal(self, kind: CommandKind) -> str | None:
        """Why `kind` may not run now, or None. A citizen's session (from the waiting screen to the
        goodbye) is never captured, reloaded or cut."""
        if self._session.phase is not Phase.IDLE:
            return IN_SESSION
        if kind is CommandKind.RESTART:
            return None  # a restart wipes and checks again at start-up
        if self.reset.checking:
            return RESETTING
        if kind is CommandKind.SCREENSHOT and (self.staff.is_open or self._live_on):
            return STAFF_PANEL  # someone is at the kiosk: the camera's live picture, a walk-in code…
        return None

    async def _run_command(self, command: KioskCommand, deadline: float) -> None:
        async with self._command_lock:  # one at a time, in the order they were heard
            then: Callable[[], Awaitable[None]] | None = None
            if self._clock.monotonic() >= deadline:
                result = CommandResult(command.id, Outcome.REFUSED, EXPIRED)  # never run
            elif command.kind is None:
                result = CommandResult(command.id, Outcome.REFUSED, UNSUPPORTED)
            elif (refusal := self._command_refusal(command.kind)) is not None:
                result = CommandResult(command.id, Outcome.REFUSED, refusal)
            else:
                result, then = await self._execute(command, command.kind)
            log.warning("command %s from IT staff (%s): %r", command.id, command.label, result)
            await self._report_command(result)
            if then is not None:
                await then()

    async def _execute(
        self, command: KioskCommand, kind: CommandKind
    ) -> tuple[CommandResult, Callable[[], Awaitable[None]] | None]:
        screen = self._command_screen
        if kind is CommandKind.RESTART:
            if screen is None:
                return CommandResult(command.id, Outcome.REFUSED, UNSUPPORTED), None
            return CommandResult(command.id, Outcome.DONE), screen.restart  # once the central knows
        if kind is CommandKind.RELOAD:
            try:
                self._config = await self._central.fetch_config()
                self._config_fetched_at = time.monotonic()
                self._save_quietly(lambda: self._cache.save_remote_config(self._config))
                schedule = await self._central.fetch_schedule(None)  # the whole schedule, not "unchanged"
                if schedule is not None:
                    self._accept_schedule(schedule)
            except MalformedResponse as exc:
                return CommandResult(command.id, Outcome.FAILED, f"central_unreadable: {exc}"[:200]), None
            except CentralError as exc:
                return CommandResult(command.id, Outcome.FAILED, f"central: {type(exc).__name__}"), None
            except OSError:
                log.exception("the local cache could not be written")
            self._publish_state()
            if screen is not None and self._session.phase is Phase.IDLE:  # not if the schedule began one
                try:
                    await screen.reload()
                except Exception as exc:
                    log.exception("the screen could not be reloaded")
                    return CommandResult(command.id, Outcome.FAILED, f"screen: {type(exc).__name__}"), None
            return CommandResult(command.id, Outcome.DONE), None
        if screen is None:
            return CommandResult(command.id, Outcome.REFUSED, UNSUPPORTED), None
        try:
            png = await asyncio.wait_for(screen.screenshot(), timeout=SCREENSHOT_TIMEOUT_S)
        except CommandRefused as exc:  # the window saw a session begin before it grabbed
            return CommandResult(command.id, Outcome.REFUSED, exc.reason), None
        except Exception as exc:
            log.exception("the screenshot failed")
            return CommandResult(command.id, Outcome.FAILED, f"screen: {type(exc).__name__}"), None
        if not is_png(png):
            return CommandResult(command.id, Outcome.FAILED, "not_png"), None
        if len(png) > MAX_SCREENSHOT_BYTES:
            return CommandResult(command.id, Outcome.FAILED, "too_large"), None
        return CommandResult(command.id, Outcome.DONE, screenshot=png), None

    async def _report_command(self, result: CommandResult) -> None:
        """The result, to the central: a few tries (the route is idempotent), then given up."""
        for attempt in range(3):
            try:
                await self._central.post_command_result(result)
                return
            except CentralRejected as exc:
                log.error("the central refused command %s's result: %s", result.command_id, exc)
                return
            except CentralError as exc:
                log.warning(
                    "command %s's result not delivered (try %d): %s", result.command_id, attempt + 1, exc
                )
                await asyncio.sleep(1.0 + attempt)

    # ----------------------------------------------------------------- staged updates

    def window_shown(self) -> None:
        """The kiosk's window is up (the UI says so, on the engine's thread, with READY=1)."""
        self._window_up = True
        self._mark_healthy_once()

    def _mark_healthy_once(self) -> None:
        """The updater keeps a new version only once its window came up and it reached the central:
        both, so a release that cannot draw, or cannot talk to the central, is rolled back."""
        if self._updates is None or self._healthy_marked or not (self._window_up and self._central_ok):
            return
        self._healthy_marked = True
        self._updates.mark_healthy(self._version)

    def _tell_updater_if_busy(self) -> None:
        """The updater checks this mark right before it restarts the kiosk: a request written while
        idle may be acted on minutes later, when a walk-in or the staff panel has begun."""
        if self._updates is None:
            return
        busy = install_blocker(self.update_activity(), self._clock.now())
        if busy != self._busy_told:
            try:
                self._updates.set_busy(busy)
                self._busy_told = busy
            except OSError as exc:
                log.warning("the busy mark could not be written: %s", exc)

    def _consider_update(self) -> None:
        if self._updates is None or (self._update_task is not None and not self._update_task.done()):
            return
        self._update_task = self._spawn(self._update_step(self._updates))

    def _set_update_status(self, status: UpdateStatus | None) -> None:
        if status != self._update_status:
            self._update_status = status
            log.warning("staged update: %r", status)
            self._heartbeat_due.set()

    def update_activity(self) -> KioskActivity:
        schedule = self._schedule
        appointments = schedule.appointments if schedule is not None else ()
        return KioskActivity(
            session_idle=self._session.phase is Phase.IDLE,
            staff_panel_open=self.staff.is_open or self._live_on,
            resetting=self.reset.checking,
            appointments=pending_appointments(
                ((a.id, a.start, a.end) for a in appointments), frozenset(self._done)
            ),
        )

    async def _update_step(self, updates: UpdatesPort) -> None:
        """One look at the staged update, after each good poll: download the target's wheel if it is
        not in the spool, then ask the updater for it once the kiosk is idle. Every step is checked
        again each time, so nothing here needs to survive a restart."""
        target, sha256 = self._config.software_target, self._config.software_target_sha256
        if target is None or sha256 is None or not self._version:
            self._set_update_status(None)
            return
        try:
            status, go_on = settled_status(target, self._version, updates.updater_report(), self._clock.now())
            if not go_on:
                self._set_update_status(status)
                return
            if updates.request_pending():
                self._set_update_status(UpdateStatus(REQUESTED, target))
                return
            if not await asyncio.to_thread(updates.has_wheel, target, sha256):
                if time.monotonic() < self._download_again_at:
                    return  # the last try failed: the status still says so
                self._set_update_status(UpdateStatus(DOWNLOADING, target))
                try:
                    await self._central.download_software(target, sha256, updates.wheel_path(target))
                except CentralError as exc:
                    log.error("software %s could not be downloaded: %s", target, exc)
                    self._download_again_at = time.monotonic() + DOWNLOAD_RETRY_S
                    self._set_update_status(UpdateStatus(DOWNLOAD_FAILED, target, str(exc)[:300]))
                    return
            blocker = install_blocker(self.update_activity(), self._clock.now())
            if blocker is not None:
                self._set_update_status(UpdateStatus(WAITING_IDLE, target, None))
                log.info("software %s waits: %s", target, blocker)
                return
            self._tell_updater_if_busy()  # the mark says "idle" before the updater can read the request
            updates.write_request(InstallRequest(target, sha256, updates.wheel_path(target).name))
            log.warning("software %s: install requested from the updater", target)
            self._set_update_status(UpdateStatus(REQUESTED, target))
        except OSError as exc:
            log.error("the update spool failed: %s", exc)
            self._set_update_status(UpdateStatus(DOWNLOAD_FAILED, target, f"spool: {exc}"[:300]))

    # ----------------------------------------------------------------- heartbeat and state publication

    async def _heartbeat_loop(self) -> None:
        try:
            await self._calls.probe()
        except Exception:
            log.exception("probing the devices failed")
        while True:
            # Cleared before sending: a change while the heartbeat is on its way gets one more.
            self._heartbeat_due.clear()
            commands: tuple[KioskCommand, ...] = ()
            try:
                commands = await self._central.send_heartbeat(
                    Heartbeat(
                        state="out_of_service" if self.reset.out_of_service else self._session.phase.value,
                        appointment_id=self._session.appointment.id if self._session.appointment else None,
                        devices=self._devices(),
                        software_version=self._version,
                        preflight=self.preflight.to_json() if self.preflight is not None else None,
                        update=self._update_status.to_json() if self._update_status is not None else None,
                    )
                )
            except CentralError as exc:
                log.debug("heartbeat not delivered: %s", exc)
            self._receive_commands(commands)
            health = self._calls.device_health()
            self._set_notice(Notice.CAMERA_MISSING, health.get("camera", "ok") != "ok")
            self._set_notice(Notice.MICROPHONE_MISSING, health.get("microphone", "ok") != "ok")
            self._publish_state()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._heartbeat_due.wait(), timeout=self._heartbeat_s)

    def _set_notice(self, notice: Notice, on: bool) -> None:
        if on:
            self._notices.add(notice)
        else:
            self._notices.discard(notice)

    def snapshot(self) -> KioskSnapshot:
        schedule = self._schedule
        return KioskSnapshot(
            site_name=schedule.site_name if schedule else "",
            kiosk_name=schedule.kiosk_name if schedule else "",
            session=self._session,
            today=upcoming_today(schedule, self._clock.now(), frozenset(self._done)),
            central_reachable=self._central_ok,
            schedule_known=schedule is not None,
            notices=frozenset(self._notices),
            microphone_on=self._mic_on,
            camera_on=self._cam_on,
            media_flowing=self._media_flowing,
            clock_offset_s=round(self._clock.applied_offset().total_seconds(), 1),
            control=self._control.state.value if self._control else ControlState.NONE.value,
            form_origins=tuple(sorted(self._control.policy.origins)) if self._control else (),
            documents=self._desk.state if self._desk else None,
            printing=self._print_desk.state if self._print_desk else None,
            volume=self._volume,
            out_of_service=self.reset.out_of_service is not None,
            evaluation_url=self._config.evaluation_url,
        )

    def _publish_state(self) -> None:
        snapshot = self.snapshot()
        if snapshot != self._last_snapshot:
            self._last_snapshot = snapshot
            self._publish(StateChanged(snapshot))
            self._send_screen()  # scanning, pages, microphone and camera are the engine's to know
