"""Fakes of the core's ports, for unit tests of the engine. Not used by the real kiosk."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import struct
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from ..core.commands import PNG_SIGNATURE, CommandRefused, CommandResult, KioskCommand
from ..core.control_protocol import InputMessage
from ..core.crash_loop import RunHistory
from ..core.document_desk import ExpiredDocument
from ..core.errors import CentralError, CentralRejected, MalformedResponse
from ..core.models import (
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
from ..core.ports import (
    CallConnected,
    CallConnectionLost,
    CallEvent,
    CallStats,
    DeviceCheckSink,
    InputOutcome,
    RelayUnavailable,
    RemoteMediaStarted,
)
from ..core.reset_check import SCREEN_CHECKS, CheckResult, OutOfService, passed


class FakeCentral:
    """An in-memory central. Set `failure` to make every call raise it; drive the clerk's side with
    `answer()` and `clerk_hang_up()`."""

    def __init__(self, schedule: Schedule | None = None, config: RemoteConfig | None = None) -> None:
        self.schedule = schedule
        self.config = config or RemoteConfig(poll_interval_s=0.05, join_before_s=1.0)
        self.failure: CentralError | None = None
        self.schedule_requests = 0
        self.config_requests = 0
        self.requests = 0
        self.offers: list[tuple[str, CallTicket]] = []
        self.hang_ups: list[tuple[str, str, str]] = []
        self.heartbeats: list[Heartbeat] = []
        self.expired_documents: list[ExpiredDocument] = []
        self.session_reports: list[dict[str, object]] = []
        # Walk-in codes a clerk gave: the appointment each opens (added to the schedule when used).
        self.walk_in_codes: dict[str, Appointment] = {}
        self.used_walk_in_codes: set[str] = set()
        # Walk-ins with a service: per service, the sessions its available clerks would open (one
        # each, first waited first); a service with an empty list is known but has nobody available.
        self.walk_in_clerks: dict[str, list[Appointment]] = {}
        self.uplink_kbps = 2000.0
        # Commands IT staff left: each answered to the next heartbeat (then gone), and their results.
        self.pending_commands: list[KioskCommand] = []
        self.command_results: list[CommandResult] = []
        self.results_posted = asyncio.Event()
        # Staged updates: the wheels it serves (version → bytes), and the versions downloaded.
        self.releases: dict[str, bytes] = {}
        self.software_downloads: list[str] = []
        self._ids = itertools.count(1)
        self._signals: dict[str, CallSignal] = {}
        self._changed = asyncio.Event()

    def _check(self) -> None:
        self.requests += 1
        if self.failure is not None:
            raise self.failure

    async def fetch_schedule(self, etag: str | None) -> Schedule | None:
        self.schedule_requests += 1
        self._check()
        if self.schedule is None or (etag is not None and etag == self.schedule.etag):
            return None
        return self.schedule

    async def fetch_config(self) -> RemoteConfig:
        self.config_requests += 1
        self._check()
        return self.config

    async def post_offer(self, appointment_id: str, offer: SessionDescription) -> CallTicket:
        self._check()
        previous = self._signals.get(appointment_id)
        version = (previous.version if previous else 0) + 1
        ticket = CallTicket(f"call-{next(self._ids)}", version)
        self._signals[appointment_id] = CallSignal(version, ticket.call_id)
        self.offers.append((appointment_id, ticket))
        self._notify()
        return ticket

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _update(self, appointment_id: str, **changes: object) -> None:
        old = self._signals[appointment_id]
        self._signals[appointment_id] = replace(old, version=old.version + 1, **changes)  # type: ignore[arg-type]
        self._notify()

    def answer(self, appointment_id: str) -> None:
        self._update(appointment_id, answer=SessionDescription("v=0 fake answer", "answer"))

    def clerk_hang_up(self, appointment_id: str) -> None:
        self._update(appointment_id, ended=True, ended_by="clerk", reason="done")

    async def wait_call(self, appointment_id: str, after_version: int, wait_s: float) -> CallSignal | None:
        self._check()
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            signal = self._signals.get(appointment_id)
            if signal is not None and signal.version > after_version:
                return signal
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return None

    async def hang_up(self, appointment_id: str, call_id: str, reason: str) -> None:
        self._check()
        self.hang_ups.append((appointment_id, call_id, reason))

    async def send_heartbeat(self, heartbeat: Heartbeat) -> tuple[KioskCommand, ...]:
        self._check()
        self.heartbeats.append(heartbeat)
        delivered, self.pending_commands = tuple(self.pending_commands), []
        return delivered

    async def post_command_result(self, result: CommandResult) -> None:
        self._check()
        self.command_results.append(result)
        self.results_posted.set()

    async def report_document_expired(self, expired: ExpiredDocument) -> None:
        self._check()
        self.expired_documents.append(expired)

    async def download_software(self, version: str, sha256: str, destination: Path) -> None:
        """From `releases` (version → wheel bytes); checked like the real adapter."""
        self.software_downloads.append(version)
        self._check()
        wheel = self.releases.get(version)
        if wheel is None:
            raise CentralRejected(404, "not_found", "this release was not uploaded")
        if hashlib.sha256(wheel).hexdigest() != sha256:
            raise MalformedResponse(f"{version}: the wheel's SHA-256 is not the one the config gave")
        await asyncio.to_thread(destination.write_bytes, wheel)

    async def measure_uplink(self, size_bytes: int) -> float:
        self._check()
        return self.uplink_kbps

    async def start_walk_in(self, code: str) -> Appointment:
        self._check()
        if code in self.used_walk_in_codes:
            raise CentralRejected(410, "walk_in_code_used", "this code was used")
        appointment = self.walk_in_codes.get(code)
        if appointment is None:
            raise CentralRejected(404, "walk_in_code_unknown", "no such code")
        self.used_walk_in_codes.add(code)
        old = self.schedule or Schedule("Borne", "France Services", ())
        self.schedule = Schedule(
            old.kiosk_name, old.site_name, (*old.appointments, appointment), etag=f'"walk-in-{code}"'
        )
        return appointment

    async def walk_in_services(self) -> tuple[WalkInService, ...]:
        self._check()
        return tuple(
            WalkInService(service, len(clerks))
            for service, clerks in sorted(self.walk_in_clerks.items())
            if clerks
        )

    async def start_walk_in_with_service(self, service: str) -> Appointment:
        self._check()
        if service not in self.walk_in_clerks:
            raise CentralRejected(404, "walk_in_service_unknown", "no clerk serves this service")
        if not self.walk_in_clerks[service]:
            raise CentralRejected(409, "no_clerk_available", "no clerk of this service is available now")
        appointment = self.walk_in_clerks[service].pop(0)
        old = self.schedule or Schedule("Borne", "France Services", ())
        self.schedule = Schedule(
            old.kiosk_name,
            old.site_name,
            (*old.appointments, appointment),
            etag=f'"walk-in-{appointment.id}"',
        )
        return appointment

    async def post_session_report(self, report: Mapping[str, object]) -> None:
        self._check()
        self.session_reports.append(dict(report))

    async def aclose(self) -> None:
        pass


class FakeCall:
    def __init__(
        self,
        on_event: Callable[[CallEvent], None],
        ice_servers: tuple[IceServer, ...] = (),
        relay_problem: RelayUnavailable | None = None,
    ) -> None:
        self.on_event = on_event
        self.ice_servers = ice_servers
        self.relay_problem = relay_problem  # reported while the offer is made, as the real adapter does
        self.connected_at: float | None = None
        self.answer: SessionDescription | None = None
        self.closed = False
        self.microphone = True
        self.camera = True
        self.sent_control: list[str] = []
        self.speaker_gain = 1.0
        self.ice_fails = False

    async def create_offer(self) -> SessionDescription:
        if self.relay_problem is not None:
            self.on_event(self.relay_problem)
        return SessionDescription("v=0 fake offer", "offer")

    async def accept_answer(self, answer: SessionDescription) -> None:
        self.answer = answer
        if self.ice_fails:
            self.on_event(CallConnectionLost("failed"))  # answered, but no candidate pair worked
            return
        self.connected_at = time.time()
        self.on_event(CallConnected())
        self.on_event(RemoteMediaStarted("video"))

    def set_microphone_enabled(self, enabled: bool) -> None:
        self.microphone = enabled

    def set_camera_enabled(self, enabled: bool) -> None:
        self.camera = enabled

    def set_speaker_gain(self, gain: float) -> None:
        self.speaker_gain = gain

    def stats(self) -> CallStats:
        return CallStats(remote_video_frames=1 if self.answer else 0, connected_at=self.connected_at)

    def send_control(self, text: str) -> None:
        self.sent_control.append(text)

    async def close(self) -> None:
        self.closed = True

    def drop(self) -> None:
        self.on_event(CallConnectionLost("failed"))


class FakeCallFactory:
    def __init__(self) -> None:
        self.calls: list[FakeCall] = []
        self.health = {"camera": "ok", "microphone": "ok", "speaker": "ok"}
        # What the next calls meet, one entry per call (then: a relay, and ICE that works).
        self.relay_problems: list[RelayUnavailable | None] = []
        self.ice_failures: list[bool] = []

    def new_call(self, ice_servers: tuple[IceServer, ...], on_event: Callable[[CallEvent], None]) -> FakeCall:
        call = FakeCall(on_event, ice_servers, self.relay_problems.pop(0) if self.relay_problems else None)
        call.ice_fails = self.ice_failures.pop(0) if self.ice_failures else False
        self.calls.append(call)
        return call

    async def probe(self) -> dict[str, str]:
        return dict(self.health)

    def device_health(self) -> dict[str, str]:
        return dict(self.health)


class FakeLiveDevices:
    """The LiveDevices port without hardware: a test card whose bright band moves (so a new picture
    shows), and a steady `level`, ten times a second to the sink while open. `devices` says what the
    next start finds; `is_open` whether the pretend devices are held."""

    WIDTH, HEIGHT = 160, 120

    def __init__(self, sink: DeviceCheckSink, fps: int = 10) -> None:
        self._sink = sink
        self._period = 1.0 / fps
        self.devices = {"camera": "ok", "microphone": "ok"}
        self.level: float | None = 0.05
        self.is_open = False
        self.starts = 0
        self.stops = 0
        self.frames_sent = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> dict[str, str]:
        await self.stop()
        self.starts += 1
        self.is_open = True
        self._task = asyncio.get_running_loop().create_task(self._run())
        return dict(self.devices)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.is_open:
            self.is_open = False
            self.stops += 1

    def picture(self, index: int) -> RgbImage:
        band = index * 8 % self.WIDTH
        row = b"".join(
            (b"\xf0\xf0\xf0" if band <= x < band + 20 else bytes((40, 60 + x % 100, 120)))
            for x in range(self.WIDTH)
        )
        return RgbImage(self.WIDTH, self.HEIGHT, row * self.HEIGHT)

    async def _run(self) -> None:
        camera = self.devices.get("camera") == "ok"
        microphone = self.devices.get("microphone") == "ok"
        if not camera:
            self._sink.check_frame(None)
        if not microphone:
            self._sink.check_level(None)
        for index in itertools.count():
            if camera:
                self._sink.check_frame(self.picture(index))
                self.frames_sent += 1
            if microphone:
                self._sink.check_level(self.level)
            await asyncio.sleep(self._period)


class MemoryCache:
    def __init__(self) -> None:
        self.schedule: Schedule | None = None
        self.config: RemoteConfig | None = None
        self.out_of_service: OutOfService | None = None
        self.pending_reports: list[dict[str, object]] = []
        self.run_history: RunHistory | None = None

    def load_schedule(self) -> Schedule | None:
        return self.schedule

    def save_schedule(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def load_remote_config(self) -> RemoteConfig | None:
        return self.config

    def save_remote_config(self, config: RemoteConfig) -> None:
        self.config = config

    def load_out_of_service(self) -> OutOfService | None:
        return self.out_of_service

    def save_out_of_service(self, state: OutOfService | None) -> None:
        self.out_of_service = state

    def load_pending_reports(self) -> list[dict[str, object]]:
        return list(self.pending_reports)

    def save_pending_reports(self, reports: list[dict[str, object]]) -> None:
        self.pending_reports = list(reports)

    def load_run_history(self) -> RunHistory | None:
        return self.run_history

    def save_run_history(self, history: RunHistory) -> None:
        self.run_history = history


class FakeResetScreen:
    """The screen's side of the reset check: `results` is what it reports; `calls` counts the wipes."""

    def __init__(self, results: list[CheckResult] | None = None) -> None:
        self.results = results
        self.calls: list[bool] = []

    async def wipe_and_check(self, start_up: bool) -> list[CheckResult]:
        self.calls.append(start_up)
        if self.results is None:
            return [passed(check) for check in sorted(SCREEN_CHECKS)]
        return list(self.results)


def tiny_png(width: int, height: int) -> bytes:
    """A valid PNG of one grey colour (no image library needed), as a fake screen grabs it."""
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class FakeKioskScreen:
    """The window as IT staff's commands see it: records what it was asked; `refuse_with` makes the
    screenshot refuse at the last moment, as the real window does when a session began meanwhile."""

    def __init__(self, size: tuple[int, int] = (64, 40)) -> None:
        self.size = size
        self.screenshots = 0
        self.reloads = 0
        self.restarts = 0
        self.refuse_with: str | None = None

    async def screenshot(self) -> bytes:
        if self.refuse_with is not None:
            raise CommandRefused(self.refuse_with)
        self.screenshots += 1
        return tiny_png(*self.size)

    async def reload(self) -> None:
        self.reloads += 1

    async def restart(self) -> None:
        self.restarts += 1


class FakeFormView:
    """Applies every input (or refuses with `refuse_with`), recording what it was given."""

    def __init__(self) -> None:
        self.applied: list[InputMessage] = []
        self.refuse_with: str | None = None
        self.busy: asyncio.Event | None = None  # while set and not yet fired: a busy page, inputs wait
        self.started = 0  # inputs handed to this form view

    async def apply(self, message: InputMessage, admitted: Callable[[], bool]) -> InputOutcome:
        self.started += 1
        if self.busy is not None:
            await self.busy.wait()
        if not admitted():  # checked at the moment of injection, as the real form view does
            return InputOutcome("not_granted", "the citizen took control back")
        if self.refuse_with is not None:
            return InputOutcome(self.refuse_with, "refused by the fake form view")
        self.applied.append(message)
        return InputOutcome(None)


class FakeDocumentLink:
    """A documents channel without a network: what the kiosk sends goes straight to `deliver`
    (a clerk-side receiver), on the next loop turn, as a data channel would. `capacity` bytes of
    chunks are delivered, then the link 'drops' (closes) — for resume tests."""

    def __init__(self, deliver: Callable[[str | bytes], None], capacity: int | None = None) -> None:
        self._deliver = deliver
        self._open = True
        self._capacity = capacity
        self.chunk_bytes = 0

    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        self._open = False

    def send_text(self, text: str) -> None:
        if self._open:
            asyncio.get_running_loop().call_soon(self._deliver, text)

    def send_bytes(self, data: bytes) -> None:
        if not self._open:
            raise ConnectionError("the fake documents link is closed")
        if self._capacity is not None and self.chunk_bytes >= self._capacity:
            self._open = False
            raise ConnectionError("the fake documents link dropped")
        self.chunk_bytes += len(data) - 40
        asyncio.get_running_loop().call_soon(self._deliver, data)

    def buffered_amount(self) -> int:
        return 0

    async def ready(self) -> None:
        return None  # no uplink to share

    async def drained(self, low: int) -> None:
        if not self._open:
            raise ConnectionError("the fake documents link is closed")


class FakeRelayProbe:
    """A TURN allocation's outcome, as the test says."""

    def __init__(self, outcome: str = "ok") -> None:
        self.outcome = outcome
        self.attempts = 0

    async def allocate(self, ice_servers: tuple[IceServer, ...]) -> str:
        self.attempts += 1
        return self.outcome
