"""A headless clerk: answers the kiosk's offers through the clerk side of the Central API, sends a
test pattern and a tone, and records what it receives. For tests, benchmarks and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import cv2
import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription

from ..adapters.media_tracks import PacedVideoTrack, ToneTrack, TrackReader, audio_level
from ..adapters.rtc_aiortc import describe_route, rtc_configuration
from ..core.control_protocol import FormIncident, parse_form_incident
from ..core.document_protocol import Manifest
from ..core.errors import MalformedResponse
from ..core.models import IceServer
from ..core.wire import parse_remote_config
from .document_receiver import DocumentReceiver

log = logging.getLogger(__name__)

PRINT_LOW_WATER = 256 * 1024  # a document to print: chunks go on once the SCTP buffer is below this


class ColourBars:
    """Colour bars with a moving stripe and a clock, so frozen video is obvious."""

    def __init__(self, width: int = 640, height: int = 480, label: str = "CLERK BOT") -> None:
        colours = [
            (192, 192, 192),
            (0, 192, 192),
            (192, 192, 0),
            (0, 192, 0),
            (192, 0, 192),
            (0, 0, 192),
            (192, 0, 0),
        ]
        self._base = np.zeros((height, width, 3), dtype=np.uint8)
        bar = width // len(colours)
        for i, colour in enumerate(colours):
            self._base[:, i * bar : (i + 1) * bar] = colour
        cv2.putText(self._base, label, (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (255, 255, 255), 3)
        self._start = time.monotonic()

    def latest(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        image = self._base.copy()
        t = time.monotonic() - self._start
        x = int((math.sin(t * 2) + 1) / 2 * (image.shape[1] - 40))
        image[:, x : x + 40] = 255
        cv2.putText(
            image, f"{t:8.2f}", (20, image.shape[0] - 30), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3
        )
        return image


@dataclass
class BotCallReport:
    appointment_id: str
    call_id: str
    scheduled_start: str
    answered_at: float | None = None
    first_video_at: float | None = None
    last_video_at: float | None = None  # kept up to date while the call lasts, as video_stalls
    video_stalls: list[tuple[float, float]] = field(default_factory=list)  # gaps > 0.2 s: (from, to)
    first_audio_at: float | None = None
    video_frames: int = 0
    audio_frames: int = 0
    audio_level_max: float = 0.0
    form_frames: int = 0
    first_form_at: float | None = None
    ended_by: str | None = None
    ended_at: float | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)  # manifests received and checked
    route: str | None = None  # the selected candidate pair, as the kiosk's CallStats.route

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def wait_for_offer(client: httpx.AsyncClient, appointment_id: str) -> dict[str, Any]:
    """Long-poll the appointment's call until the kiosk has an offer waiting for an answer."""
    version = 0
    while True:
        response = await client.get(
            f"/appointments/{appointment_id}/call", params={"after": version, "wait": 20}
        )
        response.raise_for_status()
        if response.status_code == 200:
            state: dict[str, Any] = response.json()
            version = state["version"]
            if state["has_offer"] and not state["ended"] and not state["has_answer"]:
                return state


async def answer_offer(
    client: httpx.AsyncClient, pc: RTCPeerConnection, appointment_id: str, state: dict[str, Any]
) -> int:
    """Answer the kiosk's waiting offer with `pc` and post the answer; returns the call's version."""
    await pc.setRemoteDescription(RTCSessionDescription(sdp=state["offer"]["sdp"], type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    response = await client.put(
        f"/appointments/{appointment_id}/answer",
        json={"type": "answer", "sdp": pc.localDescription.sdp, "call_id": state["call_id"]},
    )
    response.raise_for_status()
    version: int = response.json()["version"]
    return version


class ClerkBot:
    def __init__(
        self,
        central_url: str,
        clerk_token: str,
        *,
        hold_s: float = 5.0,
        answer_at_start: bool = True,
        fps: int = 20,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=central_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {clerk_token}"},
            timeout=40,
        )
        self._hold_s = hold_s
        self._answer_at_start = answer_at_start
        self._fps = fps
        self.reports: list[BotCallReport] = []
        # The kiosk's remote-control channel, per appointment, and what came back on it.
        self.control_channels: dict[str, Any] = {}
        self.control_received: list[dict[str, Any]] = []
        # form.incident messages, checked: the kiosk's form page was reloaded (or could not be).
        self.form_incidents: list[FormIncident] = []
        # Documents: one receiver per appointment, kept across a dropped call so transfers resume.
        self.receivers: dict[str, DocumentReceiver] = {}
        self.documents: list[tuple[Manifest, bytes]] = []
        self.document_channels: dict[str, Any] = {}

    def _on_control_message(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        self.control_received.append(message)
        if isinstance(message, dict) and message.get("type") == "form.incident":
            try:
                self.form_incidents.append(parse_form_incident(message))
            except ValueError as exc:
                log.warning("a malformed form.incident from the kiosk was ignored: %s", exc)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def appointments(self) -> list[dict[str, Any]]:
        response = await self._client.get("/clerk/appointments")
        response.raise_for_status()
        return list(response.json()["appointments"])

    async def create_walk_in_code(self) -> str:
        """A walk-in code, as the console's « Session sans rendez-vous » button makes one: six digits
        the kiosk's staff type in; the kiosk then has an appointment with this clerk starting now,
        which `serve_appointment` (or `serve_next`) answers like any other."""
        response = await self._client.post("/clerk/walk-in-codes", json={})
        response.raise_for_status()
        return str(response.json()["code"])

    async def set_walk_in_availability(self, available: bool = True) -> dict[str, Any]:
        """As the console's « Disponible pour l'accueil sans rendez-vous »: on (for this clerk's
        service), a kiosk's staff may start a walk-in session with it, which `serve_next` answers like
        any other. It lasts a minute (reference central) unless `keep_walk_in_availability` is called
        again within it, and ends once a kiosk took the bot or it answers a call. The central's
        state: {available, service, ended, appointment_id, ...}."""
        response = await self._client.put("/clerk/walk-in-availability", json={"available": available})
        response.raise_for_status()
        return dict(response.json())

    async def keep_walk_in_availability(self) -> dict[str, Any]:
        """The console's keep-alive: an availability still on goes on (one that ended stays ended)."""
        response = await self._client.post("/clerk/walk-in-availability/keep-alive", json={})
        response.raise_for_status()
        return dict(response.json())

    async def rate_session(self, appointment_id: str, face: int | None, remark: str | None = None) -> None:
        """As the console after a hang-up: the clerk's rating of the session (1 very bad … 5 very
        good, None to skip) and an optional remark."""
        body: dict[str, Any] = {"face": face, **({"remark": remark} if remark is not None else {})}
        response = await self._client.post(f"/clerk/appointments/{appointment_id}/rating", json=body)
        response.raise_for_status()

    async def ice_servers(self) -> tuple[IceServer, ...]:
        """The clerk's STUN/TURN servers, fetched before each answer as the console does (a TURN
        credential is made for the call). None configured, or an unreadable answer: host candidates."""
        try:
            response = await self._client.get("/clerk/config")
            response.raise_for_status()
            return parse_remote_config({"ice_servers": response.json().get("ice_servers", [])}).ice_servers
        except (httpx.HTTPError, ValueError, MalformedResponse) as exc:
            log.warning("no ICE servers from the central (%s): host candidates only", exc)
            return ()

    async def serve_appointment(self, appointment_id: str, start: datetime) -> BotCallReport:
        """Answer this appointment's call (at its start time unless told otherwise), hold it for
        `hold_s` after media flows both ways, then hang up. Returns what was measured."""
        state = await wait_for_offer(self._client, appointment_id)
        if self._answer_at_start:
            delay = (start - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
                # The kiosk may have offered again while we waited: answer the newest offer.
                newer = await self._client.get(f"/appointments/{appointment_id}/call", params={"after": 0})
                state = newer.json()
        report = BotCallReport(appointment_id, state["call_id"], start.isoformat())
        self.reports.append(report)
        configuration = rtc_configuration(await self.ice_servers())
        pc = RTCPeerConnection(configuration)
        readers: dict[str, TrackReader] = {}

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected":
                report.route = describe_route(pc, configuration)

        def on_audio(frame: Any) -> None:
            report.audio_level_max = max(report.audio_level_max, audio_level(frame))

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            if channel.label == "control":
                self.control_channels[appointment_id] = channel
                channel.on("message", self._on_control_message)
            elif channel.label == "documents":
                receiver = self.receiver(appointment_id)
                receiver.send_text = channel.send
                printing = receiver.printing
                printing.send_text = printing.send_bytes = channel.send
                printing.buffered_amount = lambda: int(channel.bufferedAmount)
                printing.drained = self._drained(channel)
                self.document_channels[appointment_id] = channel
                channel.on("message", receiver.on_message)

        @pc.on("track")
        def on_track(track: Any) -> None:
            # Tracks arrive in the offer's order: audio, the camera, then the live form view.
            key = track.kind if track.kind not in readers else "form"
            reader = TrackReader(track, on_audio if track.kind == "audio" else None)
            readers[key] = reader
            reader.start()

        pc.addTrack(ToneTrack(523.25))
        pc.addTrack(PacedVideoTrack(ColourBars(), self._fps))
        try:
            version = await answer_offer(self._client, pc, appointment_id, state)
            report.answered_at = time.time()
            ended = await self._hold(appointment_id, version, readers, report)
            if not ended:
                await self._client.post(
                    f"/appointments/{appointment_id}/hangup",
                    json={"call_id": state["call_id"], "reason": "done"},
                )
                report.ended_by = "clerk"
            report.ended_at = time.time()
        finally:
            self._collect(readers, report)
            for reader in readers.values():
                await reader.stop()
            await pc.close()
        return report

    def receiver(self, appointment_id: str) -> DocumentReceiver:
        if appointment_id not in self.receivers:
            self.receivers[appointment_id] = DocumentReceiver(
                lambda text: None, lambda manifest, data: self.documents.append((manifest, data))
            )
        return self.receivers[appointment_id]

    @staticmethod
    def _drained(channel: Any) -> Callable[[], Awaitable[None]]:
        """Waits for aiortc's "bufferedamountlow" (chunks must not pile up in its SCTP buffer)."""
        low = asyncio.Event()
        channel.bufferedAmountLowThreshold = PRINT_LOW_WATER
        channel.on("bufferedamountlow", low.set)
        channel.on("close", low.set)  # never wait for a channel that is gone

        async def drained() -> None:
            low.clear()
            if channel.bufferedAmount > PRINT_LOW_WATER and channel.readyState == "open":
                await low.wait()

        return drained

    def send_print(self, appointment_id: str, data: bytes, name: str) -> str:
        """Send a PDF to show and print on the kiosk, as the console's « Envoyer un document à
        imprimer » does; follow it with `receiver(appointment_id).printing.wait_for(id, state)`."""
        return self.receiver(appointment_id).printing.offer(data, name)

    def request_document(self, appointment_id: str, label: str) -> None:
        """Ask the citizen for a paper, as the clerk console's button does."""
        self.receiver(appointment_id).request(label)

    async def send_control(self, appointment_id: str, **message: Any) -> None:
        """Send one remote-control message as a clerk would (the bot adds "v")."""
        self.control_channels[appointment_id].send(json.dumps({"v": 1, **message}))

    def _collect(self, readers: dict[str, TrackReader], report: BotCallReport) -> None:
        receiver = self.receivers.get(report.appointment_id)
        if receiver is not None:
            report.documents = [
                {"name": m.name, "size": m.size, "pages": m.pages, "sha256": m.sha256}
                for m, _ in self.documents
                if m.id in receiver.received
            ]
        if (video := readers.get("video")) is not None:
            report.video_frames, report.first_video_at = video.frames, video.first_at
            report.last_video_at, report.video_stalls = video.last_at, list(video.stalls)
        if (audio := readers.get("audio")) is not None:
            report.audio_frames, report.first_audio_at = audio.frames, audio.first_at
        if (form := readers.get("form")) is not None:
            report.form_frames, report.first_form_at = form.frames, form.first_at

    async def _hold(
        self, appointment_id: str, version: int, readers: dict[str, TrackReader], report: BotCallReport
    ) -> bool:
        """Keep the call until `hold_s` after the first video frame; True if the kiosk ended it first."""
        deadline: float | None = None
        while True:
            video = readers.get("video")
            if deadline is None and video is not None and video.first_at is not None:
                deadline = time.monotonic() + self._hold_s
                report.first_video_at = video.first_at  # known now, for whoever watches the call live
            if video is not None:  # live too: a test sees whether the picture still moves
                report.video_frames, report.last_video_at = video.frames, video.last_at
                report.video_stalls = list(video.stalls)
            if deadline is not None and time.monotonic() >= deadline:
                return False
            wait = 0.2
            response = await self._client.get(
                f"/appointments/{appointment_id}/call", params={"after": version, "wait": wait}
            )
            if response.status_code == 200:
                state = response.json()
                version = state["version"]
                if state["ended"]:
                    report.ended_by = state["ended_by"]
                    return True
                if state["call_id"] != report.call_id:
                    report.ended_by = "kiosk_reoffered"
                    return True

    async def serve_next(self, count: int = 1) -> list[BotCallReport]:
        """Serve the next `count` appointments of this clerk, in order of start."""
        reports: list[BotCallReport] = []
        served: set[str] = set()
        while len(reports) < count:
            pending = [a for a in await self.appointments() if a["id"] not in served]
            if not pending:
                await asyncio.sleep(0.5)
                continue
            appointment = min(pending, key=lambda a: a["start"])
            served.add(appointment["id"])
            reports.append(
                await self.serve_appointment(appointment["id"], datetime.fromisoformat(appointment["start"]))
            )
        return reports


async def run_bot(central_url: str, token: str, count: int, hold_s: float) -> list[BotCallReport]:
    bot = ClerkBot(central_url, token, hold_s=hold_s)
    try:
        return await bot.serve_next(count)
    finally:
        with contextlib.suppress(Exception):
            await bot.aclose()
